//! Dynamic client registration (RFC 7591) and management (RFC 7592): off by default; with an
//! initial access token (single-use or counted, its own limits) or open; clamped to the
//! registration policy; software statements of trusted issuers; the registration access token
//! reads, replaces and deletes; every registration audited.

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{json, Value};
use tessera_core::admin::Caller;
use tessera_core::model::{GrantType, TrustedIssuer};
use tessera_core::registration::InitialTokenSpec;

use crate::flow::{code_request, sign_in, Browser, RP};
use crate::support::{basic, Harness, Reply, TestClient, ISSUER};

async fn harness(open: bool) -> Harness {
    Harness::with_settings(ISSUER, |s| {
        s.registration.enabled = true;
        s.registration.open = open;
    })
    .await
}

async fn send(
    h: &Harness,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    };
    h.send(req.expect("request")).await
}

async fn initial_token(h: &Harness, spec: InitialTokenSpec) -> String {
    h.provider
        .admin(Caller::local())
        .create_initial_token(&spec)
        .await
        .expect("initial token")
        .token
}

fn web_metadata(name: &str) -> Value {
    json!({"client_name": name, "redirect_uris": [RP], "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile", "software_id": "sw-1"})
}

#[tokio::test]
async fn a_client_registers_with_an_initial_token_and_manages_its_registration() {
    let off = Harness::new().await;
    let r = send(&off, "POST", "/register", None, Some(web_metadata("x"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(off
        .get("/.well-known/openid-configuration")
        .await
        .json
        .get("registration_endpoint")
        .is_none());

    let h = harness(false).await;
    h.user("alice").await;
    assert_eq!(
        h.get("/.well-known/openid-configuration").await.json["registration_endpoint"],
        format!("{ISSUER}/register")
    );
    let r = send(&h, "POST", "/register", None, Some(web_metadata("x"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let token = initial_token(&h, InitialTokenSpec::default()).await;
    let r = send(
        &h,
        "POST",
        "/register",
        Some(&token),
        Some(web_metadata("Partner App")),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let reg = r.json.clone();
    let (id, secret) = (
        reg["client_id"].as_str().unwrap(),
        reg["client_secret"].as_str().unwrap(),
    );
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(reg["client_secret_expires_at"], 0);
    assert_eq!(reg["software_id"], "sw-1");
    let rat = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = reg["registration_client_uri"]
        .as_str()
        .unwrap()
        .replace(ISSUER, "");
    // The token was for one registration.
    let r = send(
        &h,
        "POST",
        "/register",
        Some(&token),
        Some(web_metadata("again")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // An ordinary application now: the user is asked for consent; the code exchange works.
    let app = TestClient {
        id: id.to_owned(),
        secret: secret.to_owned(),
    };
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&app, "openid profile", "");
    let p = sign_in(&b, &path, "alice").await;
    let t = h.exchange(&app, &p["code"], Some(&verifier)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let view = h
        .provider
        .admin(Caller::local())
        .application(id)
        .await
        .unwrap();
    assert_eq!(
        view.browser.consent,
        tessera_core::model::ConsentMode::Explicit
    );

    // RFC 7592: read, replace, delete with the registration access token only.
    let r = send(&h, "GET", &uri, Some(&rat), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["client_name"], "Partner App");
    assert!(r.json.get("client_secret").is_none());
    assert_eq!(
        send(&h, "GET", &uri, Some(&token), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&h, "GET", &uri, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut changed = web_metadata("Partner App 2");
    changed["redirect_uris"] = json!([RP, "https://rp.example.com/other"]);
    // RFC 7592 §2.2: the client_id comes along.
    let r = send(&h, "PUT", &uri, Some(&rat), Some(changed.clone())).await;
    assert_eq!(r.error(), "invalid_request", "{}", r.text);
    changed["client_id"] = json!(id);
    let r = send(&h, "PUT", &uri, Some(&rat), Some(changed)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["client_name"], "Partner App 2");
    assert_eq!(r.json["registration_access_token"], rat.as_str());
    assert_eq!(r.json["redirect_uris"].as_array().unwrap().len(), 2);
    let r = send(&h, "DELETE", &uri, Some(&rat), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .post(
            "/token",
            Some(&basic(id, secret)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(r.error(), "invalid_client");
    assert_eq!(
        send(&h, "GET", &uri, Some(&rat), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A client made again under the same id is not the registrant's: the old token is void.
    h.provider
        .admin(Caller::local())
        .create_client(&tessera_core::admin::ClientSpec {
            client_id: Some(id.to_owned()),
            redirect_uris: vec![RP.into()],
            ..tessera_core::admin::ClientSpec::new("again", tessera_core::model::ClientType::Web)
        })
        .await
        .unwrap();
    let mut takeover = web_metadata("mine");
    takeover["client_id"] = json!(id);
    let r = send(&h, "PUT", &uri, Some(&rat), Some(takeover)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    // Audited.
    let events = h
        .provider
        .admin(Caller::local())
        .audit_events(&tessera_core::audit::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    for a in [
        "client.registered",
        "client.registration.updated",
        "client.registration.deleted",
        "registration.initial_token.created",
    ] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
}

#[tokio::test]
async fn registrations_are_clamped_to_the_policy_and_the_tokens_limits() {
    let h = harness(true).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "password grant",
            json!({"grant_types": ["password"], "redirect_uris": [RP]}),
            "invalid_client_metadata",
        ),
        (
            "token exchange",
            json!({"grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"]}),
            "invalid_client_metadata",
        ),
        (
            "client credentials (not in the policy)",
            json!({"grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            "a scope outside the policy",
            json!({"redirect_uris": [RP], "scope": "openid read:things"}),
            "invalid_client_metadata",
        ),
        (
            "an unknown grant",
            json!({"grant_types": ["urn:example:magic"]}),
            "invalid_client_metadata",
        ),
        (
            "a certificate method",
            json!({"redirect_uris": [RP], "token_endpoint_auth_method": "tls_client_auth"}),
            "invalid_client_metadata",
        ),
        (
            "a plain-http redirect",
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            "a fragment in the redirect",
            json!({"redirect_uris": ["https://rp.example.com/cb#x"]}),
            "invalid_redirect_uri",
        ),
        ("not an object", json!(["x"]), "invalid_client_metadata"),
        (
            "an implicit response type",
            json!({"redirect_uris": [RP], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            "a hybrid response type",
            json!({"redirect_uris": [RP], "response_types": ["code id_token token"]}),
            "invalid_client_metadata",
        ),
    ];
    for (what, body, error) in cases {
        let r = send(&h, "POST", "/register", None, Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        assert_eq!(r.error(), error, "{what}: {}", r.text);
    }
    let r = h
        .send(
            Request::post("/register")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("client_name=x"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.error(), "invalid_client_metadata");
    // A public (native) client: no secret, auth method none.
    let r = send(
        &h,
        "POST",
        "/register",
        None,
        Some(json!({"redirect_uris": ["http://127.0.0.1/cb"],
        "token_endpoint_auth_method": "none", "application_type": "native"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(r.json.get("client_secret").is_none());
    // A token narrower than the policy: openid only.
    let narrow = initial_token(
        &h,
        InitialTokenSpec {
            scopes: Some(vec!["openid".into()]),
            uses: Some(2),
            ..Default::default()
        },
    )
    .await;
    let r = send(
        &h,
        "POST",
        "/register",
        Some(&narrow),
        Some(json!({"redirect_uris": [RP], "scope": "openid profile"})),
    )
    .await;
    assert_eq!(r.error(), "invalid_client_metadata", "{}", r.text);
    let r = send(
        &h,
        "POST",
        "/register",
        Some(&narrow),
        Some(json!({"redirect_uris": [RP], "scope": "openid"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The token's limits hold for the registration's changes too.
    let (nid, nrat) = (
        r.json["client_id"].as_str().unwrap().to_owned(),
        r.json["registration_access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let r = send(&h, "PUT", &format!("/register/{nid}"), Some(&nrat), Some(json!({"client_id": nid,
        "redirect_uris": [RP], "grant_types": ["authorization_code", "refresh_token"], "scope": "openid profile"}))).await;
    assert_eq!(r.error(), "invalid_client_metadata", "{}", r.text);
    // Initial tokens never open the grants that assert users.
    let e = h
        .provider
        .admin(Caller::local())
        .create_initial_token(&InitialTokenSpec {
            grant_types: Some(vec![GrantType::JwtBearer]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("grant_types"));
    // The admin API makes them with config:write only.
    crate::admin_api::setup_admin_api(&h).await;
    let reader = crate::admin_api::automation(&h, &["config:read"]).await;
    let r =
        crate::admin_api::call(&h, "POST", "/registration-tokens", &reader, Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let writer = crate::admin_api::automation(&h, &["config:write"]).await;
    let r = crate::admin_api::call(
        &h,
        "POST",
        "/registration-tokens",
        &writer,
        Some(json!({"uses": 3})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["uses"], 3);
    // Open registration is throttled per address.
    let mut throttled = false;
    for _ in 0..25 {
        let r = send(
            &h,
            "POST",
            "/register",
            None,
            Some(json!({"redirect_uris": [RP]})),
        )
        .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = true;
            break;
        }
    }
    assert!(throttled);
}

#[tokio::test]
async fn software_statements_of_trusted_issuers_take_precedence() {
    let issuer_key = crate::assertions::key_pair("ss-1");
    let jwks = json!({"keys": [issuer_key.jwk.clone()]});
    let h = Harness::with_settings(ISSUER, |s| {
        s.registration.enabled = true;
        s.registration.open = true;
        s.registration.require_software_statement = true;
        s.registration.software_statement_issuers = vec![TrustedIssuer {
            issuer: "https://directory.example".into(),
            jwks: Some(jwks),
            jwks_uri: None,
        }];
    })
    .await;
    let r = send(
        &h,
        "POST",
        "/register",
        None,
        Some(web_metadata("no statement")),
    )
    .await;
    assert_eq!(r.error(), "unapproved_software_statement", "{}", r.text);
    let claims = json!({"iss": "https://directory.example", "software_id": "partner-42",
        "client_name": "Name From The Directory", "redirect_uris": [RP]});
    let forged = crate::assertions::sign_with(&crate::assertions::key_pair("ss-1"), &claims);
    let mut body = web_metadata("Self-Declared");
    body["software_statement"] = json!(forged);
    let r = send(&h, "POST", "/register", None, Some(body.clone())).await;
    assert_eq!(r.error(), "invalid_software_statement", "{}", r.text);
    body["software_statement"] = json!(crate::assertions::sign_with(&issuer_key, &claims));
    let r = send(&h, "POST", "/register", None, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["client_name"], "Name From The Directory");
    assert_eq!(r.json["software_id"], "partner-42");
    assert!(r.json["software_statement"].is_string());
    // The statement's values stay what the registration is held to when it is changed.
    let (sid, srat) = (
        r.json["client_id"].as_str().unwrap().to_owned(),
        r.json["registration_access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let r = send(
        &h,
        "PUT",
        &format!("/register/{sid}"),
        Some(&srat),
        Some(json!({"client_id": sid,
        "client_name": "Renamed", "redirect_uris": ["https://elsewhere.example/cb"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["client_name"], "Name From The Directory");
    assert_eq!(r.json["redirect_uris"], json!([RP]));
}
