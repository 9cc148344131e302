//! Codes and refresh tokens of signed-in users: PKCE, single use with replay revocation, ID token
//! claims, rotation with reuse detection and an application's opt-in grace window, blocked
//! users, userinfo.

use http::StatusCode;
use serde_json::json;
use tessera_core::model::{ConsentMode, JwsAlg};

use crate::flow::{code_request, enc, sign_in, Browser, RP};
use crate::support::{Harness, TestClient, ISSUER};

/// A signed-in user's code for `app`, with its verifier.
async fn code(
    h: &Harness,
    b: &Browser<'_>,
    app: &TestClient,
    user: &str,
    scope: &str,
) -> (String, String) {
    let (path, verifier) = code_request(app, scope, "");
    let p = sign_in(b, &path, user).await;
    let _ = h;
    (p["code"].clone(), verifier)
}

async fn auto_app(h: &Harness) -> TestClient {
    h.web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await
}

#[tokio::test]
async fn id_token_claims_and_signature() {
    let h = Harness::new().await;
    let uid = h.user("alice").await;
    let app = h
        .web_app(|s| s.additional_audiences = vec!["https://other.example".into()])
        .await;
    let b = Browser::new(&h);
    let (c, v) = code(&h, &b, &app, "alice", "openid profile").await;
    let r = h.exchange(&app, &c, Some(&v)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.header("cache-control"), "no-store");
    let id_token = r.json["id_token"].as_str().unwrap();
    // Verified against the published JWKS, as a relying party would.
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(h.get("/jwks").await.json).unwrap();
    let kid = jsonwebtoken::decode_header(id_token).unwrap().kid.unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[app.id.as_str()]);
    validation.set_issuer(&[ISSUER]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(id_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], uid.as_str());
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["azp"], app.id.as_str(), "several audiences");
    assert_eq!(claims["aud"], json!([app.id, "https://other.example"]));
    assert_eq!(claims["amr"], json!(["pwd"]));
    for c in ["auth_time", "iat", "exp", "sid", "acr", "at_hash"] {
        assert!(claims.get(c).is_some(), "{c}");
    }
    assert_eq!(
        claims["at_hash"],
        tessera_core::id_token::half_hash(
            JwsAlg::Key(tessera_core::model::Alg::RS256),
            r.json["access_token"].as_str().unwrap()
        )
    );
}

#[tokio::test]
async fn hs256_id_tokens_use_the_client_secret_and_subjects_follow_the_attribute() {
    let h = Harness::new().await;
    h.user("bea").await;
    let app = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.id_token_alg = Some(JwsAlg::HS256);
            s.subject_attribute = Some("email".into());
        })
        .await;
    let b = Browser::new(&h);
    let (c, v) = code(&h, &b, &app, "bea", "openid").await;
    let r = h.exchange(&app, &c, Some(&v)).await;
    let id_token = r.json["id_token"].as_str().unwrap();
    let key = jsonwebtoken::DecodingKey::from_secret(app.secret.as_bytes());
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&[app.id.as_str()]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(id_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "bea@example.com");
}

#[tokio::test]
async fn pkce_verifier_must_match_and_must_be_sent() {
    let h = Harness::new().await;
    h.user("cy").await;
    let app = auto_app(&h).await;
    let b = Browser::new(&h);
    let (c, _) = code(&h, &b, &app, "cy", "openid").await;
    let wrong = "x".repeat(43);
    let r = h.exchange(&app, &c, Some(&wrong)).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (c, _) = code(&h, &b, &app, "cy", "openid").await;
    let r = h.exchange(&app, &c, None).await;
    assert_eq!(r.error(), "invalid_grant");
    assert!(r.json["error_description"]
        .as_str()
        .unwrap()
        .contains("code_verifier"));
}

#[tokio::test]
async fn code_replay_fails_and_revokes_what_the_code_gave() {
    let h = Harness::new().await;
    h.user("dan").await;
    let app = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.introspection_allowed = Some(true);
            s.token_format = Some(tessera_core::model::TokenFormat::Opaque);
        })
        .await;
    let b = Browser::new(&h);
    let (c, v) = code(&h, &b, &app, "dan", "openid").await;
    let first = h.exchange(&app, &c, Some(&v)).await;
    assert_eq!(first.status, StatusCode::OK);
    let at = first.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(h.introspect(&app, &at).await["active"], true);
    let replay = h.exchange(&app, &c, Some(&v)).await;
    assert_eq!(replay.error(), "invalid_grant");
    assert_eq!(
        h.introspect(&app, &at).await["active"],
        false,
        "the replay revoked the grant"
    );
    let rt = first.json["refresh_token"].as_str().unwrap();
    let r = h
        .post(
            "/token",
            Some(&app.basic()),
            &enc(&[("grant_type", "refresh_token"), ("refresh_token", rt)]),
        )
        .await;
    assert_eq!(r.error(), "invalid_grant");
}

#[tokio::test]
async fn codes_are_bound_to_client_redirect_uri_and_lifetime() {
    let h = Harness::new().await;
    h.user("eve").await;
    let app = auto_app(&h).await;
    let other = auto_app(&h).await;
    let b = Browser::new(&h);
    let (c, v) = code(&h, &b, &app, "eve", "openid").await;
    assert_eq!(
        h.exchange(&other, &c, Some(&v)).await.error(),
        "invalid_grant",
        "another client"
    );
    assert_eq!(
        h.exchange(&app, &c, Some(&v)).await.status,
        StatusCode::OK,
        "another client cannot use the code up"
    );
    let (c, v) = code(&h, &b, &app, "eve", "openid").await;
    let body = enc(&[
        ("grant_type", "authorization_code"),
        ("code", &c),
        ("redirect_uri", "https://rp.example.com/other"),
        ("code_verifier", &v),
    ]);
    assert_eq!(
        h.post("/token", Some(&app.basic()), &body).await.error(),
        "invalid_grant",
        "redirect_uri"
    );
    let (c, v) = code(&h, &b, &app, "eve", "openid").await;
    h.clock.advance(61);
    assert_eq!(
        h.exchange(&app, &c, Some(&v)).await.error(),
        "invalid_grant",
        "60 s lifetime"
    );
}

async fn refresh(
    h: &Harness,
    app: &TestClient,
    rt: &str,
    scope: Option<&str>,
) -> crate::support::Reply {
    let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    if let Some(s) = scope {
        pairs.push(("scope", s));
    }
    h.post("/token", Some(&app.basic()), &enc(&pairs)).await
}

#[tokio::test]
async fn refresh_rotates_narrows_and_detects_reuse() {
    let h = Harness::new().await;
    h.user("fay").await;
    // An application that opted into a grace window for retries.
    let app = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.refresh_grace_secs = Some(10);
        })
        .await;
    let b = Browser::new(&h);
    let (c, v) = code(&h, &b, &app, "fay", "openid email profile").await;
    let first = h.exchange(&app, &c, Some(&v)).await;
    let rt1 = first.json["refresh_token"].as_str().unwrap().to_owned();

    let second = refresh(&h, &app, &rt1, Some("openid email")).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.json);
    assert_eq!(second.json["scope"], "openid email", "scope may narrow");
    let rt2 = second.json["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "rotated");
    assert_eq!(
        refresh(&h, &app, &rt2, Some("openid phone")).await.error(),
        "invalid_scope",
        "never widen"
    );

    // A retry within the grace window gets the very same pair.
    let retry = refresh(&h, &app, &rt1, Some("openid email")).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.json, second.json);

    // After the window, reuse revokes the whole grant, the newest token included.
    h.clock.advance(11);
    assert_eq!(refresh(&h, &app, &rt1, None).await.error(), "invalid_grant");
    assert_eq!(refresh(&h, &app, &rt2, None).await.error(), "invalid_grant");
}

#[tokio::test]
async fn blocked_users_cannot_refresh_and_their_tokens_are_inactive() {
    let h = Harness::new().await;
    h.user("gus").await;
    let app = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.introspection_allowed = Some(true);
        })
        .await;
    let b = Browser::new(&h);
    let (c, v) = code(&h, &b, &app, "gus", "openid").await;
    let t = h.exchange(&app, &c, Some(&v)).await;
    let at = t.json["access_token"].as_str().unwrap();
    assert_eq!(h.introspect(&app, at).await["active"], true);
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .update_user(
            "gus",
            &tessera_core::admin::UserPatch {
                blocked: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(h.introspect(&app, at).await["active"], false);
    let rt = t.json["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&h, &app, rt, None).await.error(), "invalid_grant");
    let u = h.get_with_bearer("/userinfo", at).await;
    assert_eq!(u.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn userinfo_releases_claims_by_scope_and_custom_mappings() {
    let h = Harness::new().await;
    let uid = h.user("hal").await;
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .create_scope(&tessera_core::admin::ScopeSpec {
            name: "org".into(),
            claims: [
                ("department".to_owned(), "department".to_owned()),
                ("groups".to_owned(), "groups".to_owned()),
            ]
            .into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let app = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.scopes = vec!["org".into()];
        })
        .await;
    let b = Browser::new(&h);
    let (c, v) = code(&h, &b, &app, "hal", "openid email org").await;
    let t = h.exchange(&app, &c, Some(&v)).await;
    let at = t.json["access_token"].as_str().unwrap();

    let r = h.get_with_bearer("/userinfo", at).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["sub"], uid.as_str());
    assert_eq!(r.json["email"], "hal@example.com");
    assert_eq!(r.json["email_verified"], true);
    assert_eq!(r.json["department"], "R&D");
    assert_eq!(r.json["groups"], json!(["staff"]));
    assert!(r.json.get("name").is_none(), "no profile scope, no name");
    assert!(r.json.get("phone_number").is_none());

    let post = h
        .post("/userinfo", None, &format!("access_token={at}"))
        .await;
    assert_eq!(post.json, r.json, "the form body works too");
    let both = h
        .post(
            "/userinfo",
            Some(&format!("Bearer {at}")),
            &format!("access_token={at}"),
        )
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);

    let none = h.get("/userinfo").await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.header("www-authenticate"),
        format!("Bearer realm=\"{ISSUER}\"")
    );
    let bad = h.get_with_bearer("/userinfo", "not-a-token").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad
        .header("www-authenticate")
        .contains("error=\"invalid_token\""));

    let (c, v) = code(&h, &b, &app, "hal", "email").await;
    let t = h.exchange(&app, &c, Some(&v)).await;
    let r = h
        .get_with_bearer("/userinfo", t.json["access_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.header("www-authenticate").contains("insufficient_scope"));
}

#[tokio::test]
async fn browser_applications_get_cors_for_their_origins() {
    let h = Harness::new().await;
    h.web_app(|s| s.allowed_origins = vec!["https://*.example.com".into()])
        .await;
    let preflight = |origin: &'static str| {
        http::Request::builder()
            .method("OPTIONS")
            .uri("/token")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let ok = h.send(preflight("https://app.example.com")).await;
    assert_eq!(
        ok.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    let no = h.send(preflight("https://evil.example.org")).await;
    assert_eq!(no.header("access-control-allow-origin"), "");
    let _ = RP;
}

#[tokio::test]
async fn pairwise_subjects_differ_per_sector_and_match_userinfo() {
    let h = Harness::new().await;
    let uid = h.user("ida").await;
    let pairwise = |host: &'static str| {
        move |s: &mut tessera_core::admin::ClientSpec| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.subject_type = Some(tessera_core::model::SubjectType::Pairwise);
            s.redirect_uris = vec![format!("https://{host}/cb")];
        }
    };
    let a = h.web_app(pairwise("rp.example.com")).await;
    let b2 = h.web_app(pairwise("other.example.net")).await;
    let b = Browser::new(&h);
    let mut subs = Vec::new();
    for (app, redirect) in [
        (&a, "https://rp.example.com/cb"),
        (&b2, "https://other.example.net/cb"),
    ] {
        let (verifier, challenge) = crate::flow::pkce();
        let q = enc(&[
            ("response_type", "code"),
            ("client_id", &app.id),
            ("redirect_uri", redirect),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        let p = sign_in(&b, &format!("/authorize?{q}"), "ida").await;
        let body = enc(&[
            ("grant_type", "authorization_code"),
            ("code", &p["code"]),
            ("redirect_uri", redirect),
            ("code_verifier", &verifier),
        ]);
        let t = h.post("/token", Some(&app.basic()), &body).await;
        let sub = crate::flow::jwt_claims(t.json["id_token"].as_str().unwrap())["sub"]
            .as_str()
            .unwrap()
            .to_owned();
        let info = h
            .get_with_bearer("/userinfo", t.json["access_token"].as_str().unwrap())
            .await;
        assert_eq!(
            info.json["sub"],
            sub.as_str(),
            "userinfo sub = ID token sub"
        );
        subs.push(sub);
    }
    assert_ne!(subs[0], subs[1]);
    assert!(!subs.contains(&uid));
}

#[tokio::test]
async fn check_session_iframe_may_be_framed_by_relying_parties() {
    let h = Harness::new().await;
    let r = h.get("/check_session").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("postMessage"));
    assert!(!r
        .header("content-security-policy")
        .contains("frame-ancestors"));
    assert_eq!(r.header("x-frame-options"), "");
}

#[tokio::test]
async fn the_claims_parameter_moves_consented_claims_but_never_adds_any() {
    let h = Harness::new().await;
    h.user("kim").await;
    let app = auto_app(&h).await;
    let b = Browser::new(&h);
    let claims = r#"{"id_token":{"email":null},"userinfo":{"phone_number":null,"address":null}}"#;
    let (path, verifier) = code_request(
        &app,
        "openid email",
        &format!("&{}", enc(&[("claims", claims)])),
    );
    let p = sign_in(&b, &path, "kim").await;
    let t = h.exchange(&app, &p["code"], Some(&verifier)).await;
    let id = crate::flow::jwt_claims(t.json["id_token"].as_str().unwrap());
    assert_eq!(
        id["email"], "kim@example.com",
        "asked for in the ID token, covered by the email scope"
    );
    let info = h
        .get_with_bearer("/userinfo", t.json["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info.json["email"], "kim@example.com");
    assert!(
        info.json.get("phone_number").is_none(),
        "not consented: {}",
        info.json
    );
    assert!(info.json.get("address").is_none());
}
