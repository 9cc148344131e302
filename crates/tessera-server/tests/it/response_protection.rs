//! Signed and encrypted responses per application: ID tokens, userinfo and JWT introspection
//! encrypted (JWE) to the application's own keys; userinfo as a signed JWT; JWT-secured
//! authorization responses (JARM) in every mode, signed and encrypted; the settings refused when
//! they cannot work.

use aws_lc_rs::agreement::{self, PrivateKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey, PublicKeyComponents,
};
use http::StatusCode;
use serde_json::{json, Value};
use tessera_core::admin::{Caller, ClientPatch, ClientSpec, ProtectionPatch};
use tessera_core::jwe::{decrypt, Decrypter};
use tessera_core::model::{
    Alg, ConsentMode, ContentEncryption, JwsAlg, KeyManagement, ResponseProtection,
};
use tessera_core::secret::b64url;

use crate::flow::{code_request, enc, hidden, redirect_params, sign_in, Browser};
use crate::support::{Harness, TestClient, ISSUER};

/// An application's encryption keys: an EC P-256 key and an RSA key, with their public JWK Set.
struct AppKeys {
    ec: PrivateKey,
    rsa: OaepPrivateDecryptingKey,
    jwks: Value,
}

fn app_keys() -> AppKeys {
    let ec = PrivateKey::generate(&agreement::ECDH_P256).expect("ec");
    let p = ec.compute_public_key().expect("public");
    let p = p.as_ref();
    let kp = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).expect("rsa");
    let c = PublicKeyComponents::<Vec<u8>>::from(aws_lc_rs::signature::KeyPair::public_key(&kp));
    let pkcs8 = kp.as_der().expect("pkcs8");
    let rsa = OaepPrivateDecryptingKey::new(
        PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref()).expect("rsa key"),
    )
    .expect("oaep");
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "app-ec", "use": "enc",
         "x": b64url(&p[1..33]), "y": b64url(&p[33..])},
        {"kty": "RSA", "kid": "app-rsa", "use": "enc", "n": b64url(&c.n), "e": b64url(&c.e)},
    ]});
    AppKeys { ec, rsa, jwks }
}

impl AppKeys {
    /// Decrypts a JWE for the application; the header and the plaintext.
    fn open(&self, jwe: &str) -> (Value, String) {
        let key = if jwt_header(jwe)["alg"] == "RSA-OAEP-256" {
            Decrypter::Rsa(&self.rsa)
        } else {
            Decrypter::Ec(&self.ec)
        };
        let (h, plain) = decrypt(jwe, key, &KeyManagement::ALL, &ContentEncryption::ALL)
            .expect("the application can decrypt it");
        (Value::Object(h), String::from_utf8(plain).expect("utf-8"))
    }
}

fn jwt_header(token: &str) -> Value {
    let h = token.split('.').next().expect("header");
    serde_json::from_slice(&tessera_core::secret::b64url_decode(h).expect("b64")).expect("json")
}

fn protected(keys: &AppKeys, p: ResponseProtection) -> impl FnOnce(&mut ClientSpec) + '_ {
    move |s| {
        s.consent = Some(ConsentMode::AutoAccept);
        s.jwks = Some(keys.jwks.clone());
        s.protection = p;
    }
}

/// Signs alice in with the code flow and exchanges the code; the token response.
async fn tokens(h: &Harness, c: &TestClient) -> Value {
    let (path, verifier) = code_request(c, "openid profile email", "");
    let p = sign_in(&Browser::new(h), &path, "alice").await;
    let t = h.exchange(c, &p["code"], Some(&verifier)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    t.json
}

#[tokio::test]
async fn id_tokens_and_userinfo_are_encrypted_to_the_application() {
    let h = Harness::new().await;
    h.user("alice").await;
    let keys = app_keys();
    for (alg, enc) in [
        (KeyManagement::RsaOaep256, ContentEncryption::A256Gcm),
        (KeyManagement::EcdhEs, ContentEncryption::A128CbcHs256),
        (KeyManagement::EcdhEsA128Kw, ContentEncryption::A128Gcm),
        (KeyManagement::EcdhEsA256Kw, ContentEncryption::A256CbcHs512),
    ] {
        let c = h
            .web_app(protected(
                &keys,
                ResponseProtection {
                    id_token_encrypted_response_alg: Some(alg),
                    id_token_encrypted_response_enc: Some(enc),
                    userinfo_signed_response_alg: Some(JwsAlg::Key(Alg::ES256)),
                    userinfo_encrypted_response_alg: Some(alg),
                    ..ResponseProtection::default()
                },
            ))
            .await;
        let t = tokens(&h, &c).await;
        let id_token = t["id_token"].as_str().expect("id_token");
        assert_eq!(id_token.split('.').count(), 5, "a JWE: {id_token}");
        let (header, id_jws) = keys.open(id_token);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["enc"], enc.as_str());
        assert_eq!(header["cty"], "JWT", "a nested JWT (RFC 7519 §5.2)");
        let claims = h.verified(&id_jws).await;
        assert_eq!(claims["aud"], c.id.as_str());
        assert_eq!(claims["nonce"], "n-1");

        // Userinfo: signed with ES256, then encrypted (the enc defaults to A128CBC-HS256).
        let at = t["access_token"].as_str().expect("access token");
        let u = h.get_with_bearer("/userinfo", at).await;
        assert_eq!(u.status, StatusCode::OK, "{}", u.text);
        assert_eq!(u.header("content-type"), "application/jwt");
        let (header, jws) = keys.open(&u.text);
        assert_eq!(header["enc"], "A128CBC-HS256");
        assert_eq!(jwt_header(&jws)["alg"], "ES256");
        let info = h.verified(&jws).await;
        assert_eq!(info["iss"], ISSUER);
        assert_eq!(info["aud"], c.id.as_str());
        assert_eq!(info["sub"], claims["sub"]);
        assert_eq!(info["email"], "alice@example.com");

        // Review regression: a signed userinfo answer is not an ID token hint (the ID token is:
        // without a session, prompt=none then needs a sign-in).
        for (hint, expected) in [(&jws, "invalid_request"), (&id_jws, "login_required")] {
            let (path, _) = code_request(
                &c,
                "openid",
                &format!(
                    "&prompt=none&{}",
                    crate::flow::enc(&[("id_token_hint", hint)])
                ),
            );
            let p = redirect_params(&Browser::new(&h).get(&path).await);
            assert_eq!(p["error"], expected, "{p:?}");
        }
    }
}

#[tokio::test]
async fn userinfo_is_signed_or_encrypted_alone_when_asked() {
    let h = Harness::new().await;
    h.user("alice").await;
    let keys = app_keys();
    let signed = h
        .web_app(protected(
            &keys,
            ResponseProtection {
                userinfo_signed_response_alg: Some(JwsAlg::HS256),
                ..ResponseProtection::default()
            },
        ))
        .await;
    let t = tokens(&h, &signed).await;
    let u = h
        .get_with_bearer("/userinfo", t["access_token"].as_str().expect("at"))
        .await;
    assert_eq!(u.header("content-type"), "application/jwt");
    let info = jsonwebtoken::decode::<Value>(
        &u.text,
        &jsonwebtoken::DecodingKey::from_secret(signed.secret.as_bytes()),
        &{
            let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            v.set_audience(&[signed.id.as_str()]);
            v.required_spec_claims.clear();
            v
        },
    )
    .expect("HS256 with the application's secret")
    .claims;
    assert_eq!(info["iss"], ISSUER);

    // Encrypted only: the JSON itself is the plaintext.
    let sealed = h
        .web_app(protected(
            &keys,
            ResponseProtection {
                userinfo_encrypted_response_alg: Some(KeyManagement::EcdhEs),
                userinfo_encrypted_response_enc: Some(ContentEncryption::A256Gcm),
                ..ResponseProtection::default()
            },
        ))
        .await;
    let t = tokens(&h, &sealed).await;
    assert_eq!(
        t["id_token"].as_str().expect("id").split('.').count(),
        3,
        "the ID token is not encrypted"
    );
    let u = h
        .get_with_bearer("/userinfo", t["access_token"].as_str().expect("at"))
        .await;
    let (header, plain) = keys.open(&u.text);
    assert!(header.get("cty").is_none());
    let info: Value = serde_json::from_str(&plain).expect("JSON inside");
    assert_eq!(info["email"], "alice@example.com");
}

#[tokio::test]
async fn jwt_introspection_answers_are_encrypted_when_asked() {
    let h = Harness::new().await;
    let keys = app_keys();
    let c = h
        .client_with({
            let mut s = Harness::spec("rs");
            s.jwks = Some(keys.jwks.clone());
            s.protection.introspection_encrypted_response_alg = Some(KeyManagement::RsaOaep256);
            s
        })
        .await;
    let t = h.token(&c, "").await;
    let req = http::Request::post("/introspect")
        .header("authorization", c.basic())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/token-introspection+jwt")
        .body(axum::body::Body::from(format!(
            "token={}",
            t["access_token"].as_str().expect("at")
        )))
        .expect("request");
    let r = h.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        "application/token-introspection+jwt"
    );
    let (header, jws) = keys.open(&r.text);
    assert_eq!(header["cty"], "JWT");
    assert_eq!(jwt_header(&jws)["typ"], "token-introspection+jwt");
    let claims = h.verified(&jws).await;
    assert_eq!(claims["token_introspection"]["active"], true);
    // The plain JSON answer is unchanged.
    let plain = h
        .introspect(&c, t["access_token"].as_str().expect("at"))
        .await;
    assert_eq!(plain["active"], true);
}

/// JARM: the response parameters as one JWT, in each mode; errors too.
#[tokio::test]
async fn authorization_responses_come_as_jwts_in_every_mode() {
    let h = Harness::new().await;
    h.user("alice").await;
    let keys = app_keys();
    let c = h
        .web_app(|s| {
            protected(&keys, ResponseProtection::default())(s);
            s.response_types = Some(vec!["code".into(), "code id_token".into()]);
        })
        .await;
    let b = Browser::new(&h);
    // response_mode=jwt for code is query.jwt.
    let (path, verifier) = code_request(&c, "openid", "&response_mode=jwt");
    let p = sign_in(&b, &path, "alice").await;
    assert_eq!(p.len(), 1, "only the response parameter: {p:?}");
    let claims = h.verified(&p["response"]).await;
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], c.id.as_str());
    assert_eq!(claims["state"], "st-1");
    assert!(claims["exp"].as_i64().expect("exp") > crate::support::now());
    let t = h
        .exchange(&c, claims["code"].as_str().expect("code"), Some(&verifier))
        .await;
    assert_eq!(
        t.status,
        StatusCode::OK,
        "the code inside works: {}",
        t.text
    );

    // fragment.jwt: the JWT in the fragment.
    let (path, _) = code_request(&c, "openid", "&response_mode=fragment.jwt");
    let r = b.get(&path).await;
    assert!(
        r.header("location").contains("#response="),
        "{}",
        r.header("location")
    );
    // form_post.jwt: one hidden field.
    let (path, _) = code_request(&c, "openid", "&response_mode=form_post.jwt");
    let r = b.get(&path).await;
    assert_eq!(r.status, StatusCode::OK);
    let claims = h.verified(&hidden(&r.text, "response")).await;
    assert!(claims["code"].is_string());
    assert!(
        !r.text.contains("name=\"code\""),
        "no parameter outside the JWT"
    );

    // An error is a JWT too (prompt=none without a session).
    let (path, _) = code_request(&c, "openid", "&response_mode=query.jwt&prompt=none");
    let p = redirect_params(&Browser::new(&h).get(&path).await);
    let claims = h.verified(&p["response"]).await;
    assert_eq!(claims["error"], "login_required");
    assert_eq!(claims["state"], "st-1");

    // query.jwt cannot carry tokens: the refusal comes as a JWT too.
    let q = enc(&[
        ("response_type", "code id_token"),
        ("client_id", &c.id),
        ("redirect_uri", crate::flow::RP),
        ("scope", "openid"),
        ("nonce", "n"),
        ("response_mode", "query.jwt"),
    ]);
    let p = redirect_params(&b.get(&format!("/authorize?{q}")).await);
    let claims = h.verified(&p["response"]).await;
    assert_eq!(claims["error"], "invalid_request", "{claims}");
    assert!(claims.get("id_token").is_none());
}

#[tokio::test]
async fn authorization_responses_are_signed_and_encrypted_as_the_application_says() {
    let h = Harness::new().await;
    h.user("alice").await;
    let keys = app_keys();
    let c = h
        .web_app(protected(
            &keys,
            ResponseProtection {
                authorization_signed_response_alg: Some(JwsAlg::Key(Alg::PS256)),
                authorization_encrypted_response_alg: Some(KeyManagement::EcdhEsA256Kw),
                authorization_encrypted_response_enc: Some(ContentEncryption::A256Gcm),
                ..ResponseProtection::default()
            },
        ))
        .await;
    let (path, _) = code_request(&c, "openid", "&response_mode=jwt");
    let p = sign_in(&Browser::new(&h), &path, "alice").await;
    let (header, jws) = keys.open(&p["response"]);
    assert_eq!(header["alg"], "ECDH-ES+A256KW");
    assert_eq!(jwt_header(&jws)["alg"], "PS256");
    let claims = h.verified(&jws).await;
    assert!(claims["code"].is_string());
}

#[tokio::test]
async fn encryption_settings_that_cannot_work_are_refused() {
    let h = Harness::new().await;
    let keys = app_keys();
    let admin = h.provider.admin(Caller::local());
    let create = |tweak: &dyn Fn(&mut ClientSpec)| {
        let mut s = ClientSpec {
            redirect_uris: vec![crate::flow::RP.into()],
            ..ClientSpec::new("App", tessera_core::model::ClientType::Web)
        };
        tweak(&mut s);
        s
    };
    let ec_only = json!({"keys": [keys.jwks["keys"][0].clone()]});
    let sig_only = json!({"keys": [{"kty": "RSA", "use": "sig", "n": keys.jwks["keys"][1]["n"], "e": "AQAB"}]});
    let cases: Vec<(&str, ClientSpec)> = vec![
        (
            "encryption without keys",
            create(&|s| s.protection.id_token_encrypted_response_alg = Some(KeyManagement::EcdhEs)),
        ),
        (
            "an enc without its alg",
            create(&|s| {
                s.jwks = Some(ec_only.clone());
                s.protection.userinfo_encrypted_response_enc = Some(ContentEncryption::A128Gcm);
            }),
        ),
        (
            "no RSA key for RSA-OAEP-256",
            create(&|s| {
                s.jwks = Some(ec_only.clone());
                s.protection.introspection_encrypted_response_alg = Some(KeyManagement::RsaOaep256);
            }),
        ),
        (
            "a signature key is never an encryption key",
            create(&|s| {
                s.jwks = Some(sig_only.clone());
                s.protection.authorization_encrypted_response_alg = Some(KeyManagement::RsaOaep256);
            }),
        ),
        (
            "a key whose alg is a signing algorithm (review finding)",
            create(&|s| {
                let mut k = keys.jwks["keys"][0].clone();
                k.as_object_mut().expect("jwk").remove("use");
                k["alg"] = json!("ES256");
                s.jwks = Some(json!({"keys": [k]}));
                s.protection.id_token_encrypted_response_alg = Some(KeyManagement::EcdhEs);
            }),
        ),
        (
            "HS256 userinfo for a public application",
            ClientSpec {
                redirect_uris: vec![crate::flow::RP.into()],
                protection: ResponseProtection {
                    userinfo_signed_response_alg: Some(JwsAlg::HS256),
                    ..ResponseProtection::default()
                },
                ..ClientSpec::new("Spa", tessera_core::model::ClientType::Spa)
            },
        ),
    ];
    for (what, spec) in cases {
        let e = admin.create_client(&spec).await.expect_err(what);
        let shown = format!("{e:?}");
        assert!(shown.contains("_response_"), "{what}: {shown}");
    }
    // Unknown names are refused by the API's schema; a patch clears a setting with null.
    let c = admin
        .create_client(&create(&|s| {
            s.jwks = Some(keys.jwks.clone());
            s.protection.id_token_encrypted_response_alg = Some(KeyManagement::EcdhEs);
        }))
        .await
        .expect("valid");
    assert_eq!(
        c.client.protection.id_token(),
        Some(tessera_core::model::Encryption {
            alg: KeyManagement::EcdhEs,
            enc: ContentEncryption::A128CbcHs256
        }),
        "the enc defaults to A128CBC-HS256"
    );
    // Administrators see them (the API, `client show`): review finding.
    let view = serde_json::to_value(tessera_core::admin::ApplicationView::of(
        &h.provider,
        &c.client,
    ))
    .expect("view");
    assert_eq!(view["id_token_encrypted_response_alg"], "ECDH-ES");
    assert_eq!(view["id_token_encrypted_response_enc"], Value::Null);
    assert_eq!(view["oauth_policy"], "2.0");
    assert!(view.get("userinfo_signed_response_alg").is_some());
    let cleared = admin
        .update_client(
            &c.client.client_id,
            &ClientPatch {
                protection: ProtectionPatch {
                    id_token_encrypted_response_alg: Some(None),
                    ..ProtectionPatch::default()
                },
                ..ClientPatch::default()
            },
        )
        .await
        .expect("cleared");
    assert_eq!(cleared.protection.id_token(), None);
    let bad: Result<ClientPatch, _> =
        serde_json::from_value(json!({"id_token_encrypted_response_alg": "RSA1_5"}));
    assert!(bad.is_err(), "RSA1_5 is not offered");
}

/// An application whose published keys hold no key for its algorithm gets an error, never its
/// tokens in clear.
#[tokio::test]
async fn a_missing_encryption_key_at_the_jwks_uri_refuses_rather_than_sends_in_clear() {
    let h = Harness::new().await;
    h.user("alice").await;
    let keys = app_keys();
    let served = json!({"keys": [keys.jwks["keys"][0].clone()]});
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let v = served.clone();
            async move { axum::Json(v) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.jwks_uri = Some(format!("http://{addr}/jwks"));
            s.protection.id_token_encrypted_response_alg = Some(KeyManagement::RsaOaep256);
        })
        .await;
    let (path, verifier) = code_request(&c, "openid", "");
    let p = sign_in(&Browser::new(&h), &path, "alice").await;
    let t = h.exchange(&c, &p["code"], Some(&verifier)).await;
    assert_eq!(t.json["error"], "invalid_client", "{}", t.text);
    assert!(t.json.get("id_token").is_none() && t.json.get("access_token").is_none());
}

/// Back-Channel Logout §2.4: a logout token is signed and encrypted as the application's ID
/// tokens are (review finding: it went out in clear).
#[tokio::test]
async fn logout_tokens_are_encrypted_like_id_tokens() {
    let h = Harness::new().await;
    h.user("alice").await;
    let keys = app_keys();
    let (bc_url, bc_body) = crate::logout::receiver().await;
    let c = h
        .web_app(|s| {
            protected(
                &keys,
                ResponseProtection {
                    id_token_encrypted_response_alg: Some(KeyManagement::EcdhEsA128Kw),
                    ..ResponseProtection::default()
                },
            )(s);
            s.backchannel_logout_uri = Some(bc_url.clone());
        })
        .await;
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&c, "openid", "");
    let p = sign_in(&b, &path, "alice").await;
    let t = h.exchange(&c, &p["code"], Some(&verifier)).await;
    let (_, id_token) = keys.open(t.json["id_token"].as_str().expect("id_token"));
    let r = b
        .get(&format!("/logout?{}", enc(&[("id_token_hint", &id_token)])))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), bc_body)
        .await
        .expect("back-channel logout in time")
        .expect("body");
    let token = form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .expect("logout_token")
        .1
        .into_owned();
    assert_eq!(token.split('.').count(), 5, "encrypted: {token}");
    let (header, jws) = keys.open(&token);
    assert_eq!(header["cty"], "JWT");
    assert_eq!(jwt_header(&jws)["typ"], "logout+jwt");
    let claims = h.verified(&jws).await;
    assert_eq!(claims["aud"], c.id.as_str());
    assert!(claims["sid"].is_string());
}

/// Apply files declare the new settings by the same names, and applying them again changes
/// nothing.
#[tokio::test]
async fn apply_files_declare_protection_policy_and_request_uris() {
    let h = Harness::new().await;
    let keys = app_keys();
    let admin = h.provider.admin(Caller::local());
    let spec: tessera_core::admin::Spec = serde_json::from_value(json!({
        "clients": [{"name": "Declared", "type": "web",
            "redirect_uris": [crate::flow::RP], "jwks": keys.jwks,
            "oauth_policy": "2.1",
            "request_uris": ["https://rp.example.com/request.jwt"],
            "id_token_encrypted_response_alg": "ECDH-ES+A128KW",
            "id_token_encrypted_response_enc": "A256GCM",
            "authorization_signed_response_alg": "ES256"}]
    }))
    .expect("spec");
    let plan = admin.plan(&spec, false).await.expect("plan");
    admin.apply_plan(&plan).await.expect("apply");
    let c = admin
        .applications()
        .await
        .expect("apps")
        .into_iter()
        .find(|c| c.name == "Declared")
        .expect("declared");
    assert_eq!(c.oauth_policy, tessera_core::model::OAuthPolicy::V2_1);
    assert_eq!(
        c.browser.request_uris,
        vec!["https://rp.example.com/request.jwt"]
    );
    assert_eq!(
        c.protection.id_token(),
        Some(tessera_core::model::Encryption {
            alg: KeyManagement::EcdhEsA128Kw,
            enc: ContentEncryption::A256Gcm
        })
    );
    let again = admin.plan(&spec, false).await.expect("plan");
    assert!(again.is_noop(), "{:?}", again.items);
    let typo: Result<tessera_core::admin::Spec, _> = serde_json::from_value(json!({
        "clients": [{"name": "X", "type": "web", "id_token_encrypted_response_algo": "ECDH-ES"}]
    }));
    assert!(typo.is_err(), "unknown names are refused");
}
