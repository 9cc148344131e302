//! JWTs of other parties: client_secret_jwt and private_key_jwt at every client-authenticated
//! endpoint, key sets inline and from a jwks_uri (slow, too large, garbage, rotated), the
//! password grant and the JWT bearer grant. Assertions are built with `jsonwebtoken`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tessera_core::admin::ClientSpec;
use tessera_core::model::{AuthMethod, ClientType, GrantType, JwtBearerSubject, TrustedIssuer};
use tessera_core::secret::b64url;

use crate::flow::{enc, PASSWORD};
use crate::support::{now, Harness, TestClient, ISSUER};

const TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A P-256 key: its PEM private key and its public JWK.
pub struct TestKey {
    pub pem: String,
    pub jwk: Value,
}

pub fn key_pair(kid: &str) -> TestKey {
    key(kid)
}

pub fn sign_with(k: &TestKey, claims: &Value) -> String {
    sign(k, claims)
}

fn key(kid: &str) -> TestKey {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let raw = kp.public_key_raw();
    TestKey {
        pem: kp.serialize_pem(),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": b64url(&raw[1..33]), "y": b64url(&raw[33..65])}),
    }
}

fn sign(k: &TestKey, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = k.jwk["kid"].as_str().map(str::to_owned);
    jsonwebtoken::encode(
        &h,
        claims,
        &EncodingKey::from_ec_pem(k.pem.as_bytes()).expect("pem"),
    )
    .expect("sign")
}

fn claims(iss: &str, sub: &str, jti: &str) -> Value {
    json!({"iss": iss, "sub": sub, "aud": format!("{ISSUER}/token"), "exp": now() + 60, "iat": now(), "jti": jti})
}

fn with_assertion(body: &str, jwt: &str) -> String {
    format!(
        "{body}&{}",
        enc(&[("client_assertion_type", TYPE), ("client_assertion", jwt)])
    )
}

/// A client_credentials request authenticated by `jwt` alone.
async fn client_credentials_with(h: &Harness, jwt: &str) -> crate::support::Reply {
    h.post(
        "/token",
        None,
        &with_assertion("grant_type=client_credentials", jwt),
    )
    .await
}

async fn key_client(h: &Harness, tweak: impl FnOnce(&mut ClientSpec)) -> TestClient {
    let mut spec = Harness::spec("keyed");
    spec.auth_method = Some(AuthMethod::PrivateKeyJwt);
    spec.introspection_allowed = Some(true);
    tweak(&mut spec);
    h.client_with(spec).await
}

#[tokio::test]
async fn private_key_jwt_authenticates_at_token_introspection_and_revocation() {
    let h = Harness::new().await;
    let k = key("k1");
    let c = key_client(&h, |s| s.jwks = Some(json!({"keys": [k.jwk.clone()]}))).await;
    let r = h
        .post(
            "/token",
            None,
            &with_assertion(
                "grant_type=client_credentials",
                &sign(&k, &claims(&c.id, &c.id, "a1")),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let at = r.json["access_token"].as_str().unwrap().to_owned();
    let mut issuer_aud = claims(&c.id, &c.id, "a2");
    issuer_aud["aud"] = json!(ISSUER);
    let i = h
        .post(
            "/introspect",
            None,
            &with_assertion(&format!("token={at}"), &sign(&k, &issuer_aud)),
        )
        .await;
    assert_eq!(
        i.json["active"], true,
        "the issuer is an accepted audience too: {}",
        i.json
    );
    let v = h
        .post(
            "/revoke",
            None,
            &with_assertion(
                &format!("token={at}"),
                &sign(&k, &claims(&c.id, &c.id, "a3")),
            ),
        )
        .await;
    assert_eq!(v.status, StatusCode::OK);

    // Each rejection is invalid_client (401).
    let other = key("k1");
    let mut cases: Vec<(&str, String)> = Vec::new();
    // Against Tessera's clock, which the harness holds still since it started (the machine's
    // would let the expired one through once two seconds had passed).
    let t = h.clock.now().0;
    let mut expired = claims(&c.id, &c.id, "e1");
    expired["exp"] = json!(t - 301);
    cases.push(("expired", sign(&k, &expired)));
    let mut far = claims(&c.id, &c.id, "e2");
    far["exp"] = json!(t + 3_600);
    cases.push(("exp too far ahead", sign(&k, &far)));
    let mut no_exp = claims(&c.id, &c.id, "e3");
    no_exp.as_object_mut().unwrap().remove("exp");
    cases.push(("no exp", sign(&k, &no_exp)));
    let mut aud = claims(&c.id, &c.id, "e4");
    aud["aud"] = json!("https://elsewhere.example/token");
    cases.push(("wrong audience", sign(&k, &aud)));
    let mut injected = claims(&c.id, &c.id, "e4b");
    injected["aud"] = json!([format!("{ISSUER}/token"), "https://other-as.example/token"]);
    cases.push(("an audience array naming others too", sign(&k, &injected)));
    cases.push((
        "sub differs from iss",
        sign(&k, &claims(&c.id, "someone-else", "e5")),
    ));
    let mut no_jti = claims(&c.id, &c.id, "");
    no_jti.as_object_mut().unwrap().remove("jti");
    cases.push(("no jti", sign(&k, &no_jti)));
    cases.push(("replayed jti", sign(&k, &claims(&c.id, &c.id, "a1"))));
    cases.push((
        "another key with the same kid",
        sign(&other, &claims(&c.id, &c.id, "e6")),
    ));
    let mut unknown = key("k9");
    unknown.jwk["kid"] = json!("k9");
    cases.push(("unknown kid", sign(&unknown, &claims(&c.id, &c.id, "e7"))));
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(claims(&c.id, &c.id, "e8").to_string().as_bytes())
    );
    cases.push(("alg none", none));
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&c.id, &c.id, "e9"),
        &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    cases.push(("HS256 for a private_key_jwt client", hs));
    for (what, jwt) in cases {
        let r = client_credentials_with(&h, &jwt).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::UNAUTHORIZED, "invalid_client"),
            "{what}: {}",
            r.json
        );
    }
    // Two methods at once is invalid_request.
    let both = with_assertion(
        &format!(
            "grant_type=client_credentials&client_secret=x&client_id={}",
            c.id
        ),
        &sign(&k, &claims(&c.id, &c.id, "b1")),
    );
    assert_eq!(
        h.post("/token", None, &both).await.error(),
        "invalid_request"
    );
}

/// Seed 003: incoming JWTs are judged with the `clock_skew` setting's leeway (300 s by default)
/// on `exp`, `nbf` and `iat`, and with none when it is 0.
#[tokio::test]
async fn client_assertions_are_judged_with_the_configured_clock_skew() {
    let k = key("k1");
    let jwks = json!({"keys": [k.jwk.clone()]});
    // Times relative to Tessera's clock (the harness holds it still).
    let at = |h: &Harness, exp: i64, iat: i64, jti: &str, id: &str| {
        let t = h.clock.now().0;
        let mut c = claims(id, id, jti);
        c["exp"] = json!(t + exp);
        c["iat"] = json!(t + iat);
        c["nbf"] = json!(t + iat);
        sign(&k, &c)
    };
    let h = Harness::new().await;
    let c = key_client(&h, |s| s.jwks = Some(jwks.clone())).await;
    for (what, exp, iat, ok) in [
        ("expired 290 s ago", -290, -400, true),
        ("issued 290 s ahead (a fast clock)", 400, 290, true),
        ("expired 310 s ago", -310, -400, false),
        ("issued 310 s ahead", 400, 310, false),
        ("exp beyond the lifetime and the skew", 610, 0, false),
    ] {
        let r = client_credentials_with(&h, &at(&h, exp, iat, what, &c.id)).await;
        assert_eq!(r.status == StatusCode::OK, ok, "{what}: {}", r.json);
    }
    // The jti of an assertion accepted late is still remembered (until exp plus the skew).
    let late = at(&h, -290, -400, "late", &c.id);
    assert_eq!(
        client_credentials_with(&h, &late).await.status,
        StatusCode::OK
    );
    assert_eq!(
        client_credentials_with(&h, &late).await.error(),
        "invalid_client"
    );
    // Review regression: the record outlives a purge while the skew still accepts the JWT.
    let past = at(&h, -100, -400, "past", &c.id);
    assert_eq!(
        client_credentials_with(&h, &past).await.status,
        StatusCode::OK
    );
    h.clock.advance(60);
    h.provider
        .store
        .purge_expired(h.clock.now(), i64::MAX)
        .await
        .expect("purge");
    let r = client_credentials_with(&h, &past).await;
    assert_eq!(
        r.error(),
        "invalid_client",
        "replayed after a purge: {}",
        r.json
    );

    let strict = Harness::with_settings(ISSUER, |s| s.clock_skew = 0).await;
    let c = key_client(&strict, |s| s.jwks = Some(jwks.clone())).await;
    for (what, exp, iat, ok) in [
        ("current", 60, 0, true),
        ("expired 5 s ago", -5, -60, false),
        ("issued 5 s ahead", 60, 5, false),
    ] {
        let r = client_credentials_with(&strict, &at(&strict, exp, iat, what, &c.id)).await;
        assert_eq!(
            r.status == StatusCode::OK,
            ok,
            "{what} with no skew: {}",
            r.json
        );
    }
}

#[tokio::test]
async fn client_secret_jwt_uses_the_client_secret() {
    let h = Harness::new().await;
    let mut spec = Harness::spec("hmac");
    spec.auth_method = Some(AuthMethod::ClientSecretJwt);
    let c = h.client_with(spec).await;
    let jwt = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&c.id, &c.id, "h1"),
        &EncodingKey::from_secret(c.secret.as_bytes()),
    )
    .unwrap();
    let r = client_credentials_with(&h, &jwt).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let wrong = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&c.id, &c.id, "h2"),
        &EncodingKey::from_secret(b"not the secret of this client!!!"),
    )
    .unwrap();
    assert_eq!(
        client_credentials_with(&h, &wrong).await.error(),
        "invalid_client"
    );
    let k = key("k1");
    let rsa_like = sign(&k, &claims(&c.id, &c.id, "h3"));
    assert_eq!(
        client_credentials_with(&h, &rsa_like).await.error(),
        "invalid_client",
        "ES256 for a client_secret_jwt client"
    );
    let basic = h
        .post("/token", Some(&c.basic()), "grant_type=client_credentials")
        .await;
    assert_eq!(
        basic.error(),
        "invalid_client",
        "registered for client_secret_jwt, not Basic"
    );
}

/// A key server on loopback whose answers the test changes.
async fn key_server(body: Arc<Mutex<Value>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = axum::Router::new()
        .route(
            "/jwks",
            get(move || {
                let body = body.clone();
                async move { axum::Json(body.lock().expect("lock").clone()) }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "{}"
            }),
        )
        .route(
            "/large",
            get(|| async { format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(200_000)) }),
        )
        .route("/garbage", get(|| async { "<html>not json</html>" }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

#[tokio::test]
async fn jwks_uri_is_fetched_cached_refetched_and_guarded() {
    let h = Harness::new().await;
    let k1 = key("k1");
    let k2 = key("k2");
    let served = Arc::new(Mutex::new(json!({"keys": [k1.jwk.clone()]})));
    let base = key_server(served.clone()).await;
    let c = key_client(&h, |s| s.jwks_uri = Some(format!("{base}/jwks"))).await;
    let token = |k: &TestKey, jti: &str| {
        with_assertion(
            "grant_type=client_credentials",
            &sign(k, &claims(&c.id, &c.id, jti)),
        )
    };
    assert_eq!(
        h.post("/token", None, &token(&k1, "j1")).await.status,
        StatusCode::OK
    );
    // The client rotates to k2: an unknown kid refetches, but not more often than every 10 s.
    *served.lock().unwrap() = json!({"keys": [k1.jwk.clone(), k2.jwk.clone()]});
    assert_eq!(
        h.post("/token", None, &token(&k2, "j2")).await.error(),
        "invalid_client",
        "fetched a moment ago"
    );
    h.clock.advance(11);
    assert_eq!(
        h.post("/token", None, &token(&k2, "j3")).await.status,
        StatusCode::OK,
        "refetched for the new kid"
    );

    for path in ["slow", "large", "garbage"] {
        let bad = key_client(&h, |s| s.jwks_uri = Some(format!("{base}/{path}"))).await;
        let jwt = sign(&k1, &claims(&bad.id, &bad.id, path));
        let r = client_credentials_with(&h, &jwt).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::UNAUTHORIZED, "invalid_client"),
            "{path}: {}",
            r.json
        );
    }

    // Without allow_private_addresses, loopback key servers are refused outright.
    let guarded = tessera_server::outbound::HttpOutbound {
        timeout: Duration::from_secs(1),
        max_bytes: 64 * 1024,
        allow_private: false,
    };
    use tessera_core::outbound::{Outbound, OutboundError};
    assert!(matches!(
        guarded.get_json(&format!("{base}/jwks")).await,
        Err(OutboundError::Refused(_))
    ));
    assert!(matches!(
        guarded
            .get_json("http://169.254.169.254/latest/meta-data")
            .await,
        Err(OutboundError::Refused(_))
    ));
}

#[tokio::test]
async fn password_grant_only_when_enabled_and_with_the_login_rules() {
    let h = Harness::new().await;
    h.user("alice").await;
    let off = h.web_app(|_| {}).await;
    let body = |u: &str, p: &str| {
        enc(&[
            ("grant_type", "password"),
            ("username", u),
            ("password", p),
            ("scope", "openid email"),
        ])
    };
    assert_eq!(
        h.post("/token", Some(&off.basic()), &body("alice", PASSWORD))
            .await
            .error(),
        "unauthorized_client"
    );
    let on = h
        .web_app(|s| {
            s.grant_types = Some(vec![
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
                GrantType::Password,
            ])
        })
        .await;
    let r = h
        .post("/token", Some(&on.basic()), &body("alice", PASSWORD))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert!(r.json["id_token"].is_string() && r.json["refresh_token"].is_string());
    let claims = crate::flow::jwt_claims(r.json["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(claims.get("sid").is_none(), "no browser session");
    for _ in 0..5 {
        assert_eq!(
            h.post("/token", Some(&on.basic()), &body("alice", "wrong one"))
                .await
                .error(),
            "invalid_grant"
        );
    }
    let throttled = h
        .post("/token", Some(&on.basic()), &body("alice", PASSWORD))
        .await;
    assert_eq!(
        (throttled.status, throttled.error()),
        (StatusCode::TOO_MANY_REQUESTS, "invalid_grant")
    );
    assert_eq!(throttled.header("retry-after"), "900");
    assert!(throttled.json["error_description"]
        .as_str()
        .unwrap()
        .contains("too many"));
    let staff_only = h
        .web_app(|s| {
            s.grant_types = Some(vec![GrantType::Password]);
            s.redirect_uris = vec![];
            s.post_logout_redirect_uris = vec![];
            s.response_types = Some(vec![]);
            s.allowed_groups = vec!["admins".into()];
        })
        .await;
    h.user("bob").await;
    assert_eq!(
        h.post("/token", Some(&staff_only.basic()), &body("bob", PASSWORD))
            .await
            .error(),
        "invalid_grant",
        "policy"
    );
}

#[tokio::test]
async fn jwt_bearer_grant_trusts_only_configured_issuers() {
    let h = Harness::new().await;
    let uid = h.user("carol").await;
    let idp = key("idp-1");
    let trusted = TrustedIssuer {
        issuer: "https://idp.example.com".into(),
        jwks: Some(json!({"keys": [idp.jwk.clone()]})),
        jwks_uri: None,
    };
    let app = h
        .client_with(ClientSpec {
            client_type: ClientType::M2m,
            grant_types: Some(vec![GrantType::JwtBearer]),
            trusted_issuers: vec![trusted.clone()],
            scopes: vec!["read:things".into()],
            ..ClientSpec::new("bearer", ClientType::M2m)
        })
        .await;
    let grant = |jwt: &str| {
        enc(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", jwt),
            ("scope", "openid"),
        ])
    };
    let assertion = |sub: &str, jti: &str| claims("https://idp.example.com", sub, jti);
    let r = h
        .post(
            "/token",
            Some(&app.basic()),
            &grant(&sign(&idp, &assertion("carol", "b1"))),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        crate::flow::jwt_claims(r.json["access_token"].as_str().unwrap())["sub"],
        uid.as_str()
    );
    let replay = h
        .post(
            "/token",
            Some(&app.basic()),
            &grant(&sign(&idp, &assertion("carol", "b1"))),
        )
        .await;
    assert_eq!(replay.error(), "invalid_grant");
    let stranger = key("idp-1");
    let mut untrusted = assertion("carol", "b2");
    untrusted["iss"] = json!("https://evil.example.com");
    assert_eq!(
        h.post(
            "/token",
            Some(&app.basic()),
            &grant(&sign(&idp, &untrusted))
        )
        .await
        .error(),
        "invalid_grant"
    );
    assert_eq!(
        h.post(
            "/token",
            Some(&app.basic()),
            &grant(&sign(&stranger, &assertion("carol", "b3")))
        )
        .await
        .error(),
        "invalid_grant",
        "forged signature"
    );
    let mut aud = assertion("carol", "b4");
    aud["aud"] = json!("https://other.example/token");
    assert_eq!(
        h.post("/token", Some(&app.basic()), &grant(&sign(&idp, &aud)))
            .await
            .error(),
        "invalid_grant"
    );
    assert_eq!(
        h.post(
            "/token",
            Some(&app.basic()),
            &grant(&sign(&idp, &assertion("nobody", "b5")))
        )
        .await
        .error(),
        "invalid_grant"
    );

    let machine = h
        .client_with(ClientSpec {
            grant_types: Some(vec![GrantType::JwtBearer]),
            trusted_issuers: vec![trusted],
            jwt_bearer_subject: Some(JwtBearerSubject::Client),
            scopes: vec!["read:things".into()],
            apis: vec![crate::support::API.into()],
            ..ClientSpec::new("bearer-machine", ClientType::M2m)
        })
        .await;
    let body = enc(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", &sign(&idp, &assertion(&machine.id, "m1"))),
    ]);
    let r = h.post("/token", Some(&machine.basic()), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        crate::flow::jwt_claims(r.json["access_token"].as_str().unwrap())["sub"],
        machine.id.as_str()
    );
}

#[tokio::test]
async fn hs256_access_tokens_are_signed_with_the_client_secret() {
    let h = Harness::new().await;
    let c = h
        .client_with(ClientSpec {
            signing_alg: Some(tessera_core::model::JwsAlg::HS256),
            introspection_allowed: Some(true),
            ..Harness::spec("hs256")
        })
        .await;
    let at = h.access_token(&c).await;
    let header = jsonwebtoken::decode_header(&at).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let mut v = jsonwebtoken::Validation::new(Algorithm::HS256);
    v.set_audience(&[crate::support::API]);
    let claims = jsonwebtoken::decode::<Value>(
        &at,
        &jsonwebtoken::DecodingKey::from_secret(c.secret.as_bytes()),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["client_id"], c.id.as_str());
    assert_eq!(h.introspect(&c, &at).await["active"], true);
    // The client holds the key, so only the client itself may rely on such a token at Tessera.
    let other = h
        .client_with(ClientSpec {
            introspection_allowed: Some(true),
            ..Harness::spec("other rs")
        })
        .await;
    assert_eq!(h.introspect(&other, &at).await["active"], false);
    // A token signed with another secret under the same client_id is not ours.
    let forged = jsonwebtoken::encode(
        &Header {
            typ: Some("at+jwt".into()),
            ..Header::new(Algorithm::HS256)
        },
        &claims,
        &EncodingKey::from_secret(b"guessed secret guessed secret 12"),
    )
    .unwrap();
    assert_eq!(h.introspect(&c, &forged).await["active"], false);
    let public = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .create_client(&ClientSpec {
            signing_alg: Some(tessera_core::model::JwsAlg::HS256),
            redirect_uris: vec!["https://spa.example.com/cb".into()],
            ..ClientSpec::new("spa", ClientType::Spa)
        })
        .await;
    assert!(
        public.is_err(),
        "a public client has no secret to sign with"
    );
}

/// `key`'s signature over `claims` with `crit` in the protected header.
fn sign_critical(k: &TestKey, claims: &Value, crit: &[&str]) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = k.jwk["kid"].as_str().map(str::to_owned);
    h.crit = Some(crit.iter().map(|c| c.to_string()).collect());
    jsonwebtoken::encode(
        &h,
        claims,
        &EncodingKey::from_ec_pem(k.pem.as_bytes()).expect("pem"),
    )
    .expect("sign")
}

/// RFC 7515 §4.1.11: a JWS whose `crit` names an extension the recipient does not understand
/// MUST be rejected; Tessera understands none. Client assertions, JWT bearer assertions and
/// trusted issuers' tokens alike.
#[tokio::test]
async fn a_critical_header_tessera_does_not_understand_is_refused() {
    let h = Harness::new().await;
    h.user("carol").await;
    let k = key("k1");
    let c = key_client(&h, |s| s.jwks = Some(json!({"keys": [k.jwk.clone()]}))).await;
    for crit in [vec!["x-unknown"], vec!["exp"], vec![]] {
        let jwt = sign_critical(
            &k,
            &claims(&c.id, &c.id, &format!("c-{}", crit.len())),
            &crit,
        );
        let r = client_credentials_with(&h, &jwt).await;
        assert_eq!(r.error(), "invalid_client", "{crit:?}: {}", r.text);
    }
    let ok = client_credentials_with(&h, &sign(&k, &claims(&c.id, &c.id, "c-ok"))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);

    let idp = key("idp-1");
    let app = h
        .client_with(ClientSpec {
            grant_types: Some(vec![GrantType::JwtBearer]),
            trusted_issuers: vec![TrustedIssuer {
                issuer: "https://idp.example.com".into(),
                jwks: Some(json!({"keys": [idp.jwk.clone()]})),
                jwks_uri: None,
            }],
            scopes: vec!["read:things".into()],
            ..ClientSpec::new("bearer", ClientType::M2m)
        })
        .await;
    let assertion = sign_critical(
        &idp,
        &claims("https://idp.example.com", "carol", "b-crit"),
        &["x-unknown"],
    );
    let r = h
        .post(
            "/token",
            Some(&app.basic()),
            &enc(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &assertion),
            ]),
        )
        .await;
    assert_eq!(r.error(), "invalid_grant", "{}", r.text);
}

/// Until its signature verifies, a client assertion proves nothing: an unknown client, a wrong
/// algorithm, an unknown key and a wrong key all read the same.
#[tokio::test]
async fn client_assertion_refusals_tell_nothing_about_the_client() {
    let h = Harness::new().await;
    let k = key("k1");
    let c = key_client(&h, |s| s.jwks = Some(json!({"keys": [k.jwk.clone()]}))).await;
    let other = key("k1");
    let unknown_kid = key("k9");
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let hmac = jsonwebtoken::encode(
        &hs,
        &claims(&c.id, &c.id, "h1"),
        &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
    )
    .expect("sign");
    let mut answers = Vec::new();
    for jwt in [
        sign(&k, &claims("no-such-client-id", "no-such-client-id", "u1")),
        sign(&other, &claims(&c.id, &c.id, "w1")),
        sign(&unknown_kid, &claims(&c.id, &c.id, "k1")),
        hmac,
    ] {
        let r = client_credentials_with(&h, &jwt).await;
        assert_eq!(r.error(), "invalid_client");
        answers.push(
            r.json["error_description"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
}
