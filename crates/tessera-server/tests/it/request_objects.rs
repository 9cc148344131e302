//! Request objects (RFC 9101): the authorization request as a JWT the client signs (HS256 with
//! its secret, or its registered keys), at `/authorize` and pushed to `/par`; only the object's
//! parameters are read; every claim that binds it (iss, aud, exp, client_id, jti, the signature)
//! is checked; an application can require signed requests.

use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tessera_core::model::ConsentMode;

use crate::assertions::{key_pair, sign_with};
use crate::flow::{enc, pkce, redirect_params, sign_in, Browser, RP};
use crate::support::{now, Harness, TestClient, ISSUER};

/// The claims of a code request for `c`, with PKCE; the claims and the verifier.
fn request(c: &TestClient, jti: &str) -> (Value, String) {
    let (verifier, challenge) = pkce();
    let claims = json!({
        "iss": c.id, "aud": ISSUER, "exp": now() + 300, "iat": now(), "jti": jti,
        "client_id": c.id, "response_type": "code", "redirect_uri": RP,
        "scope": "openid profile", "state": "signed-state", "nonce": "n-1",
        "code_challenge": challenge, "code_challenge_method": "S256", "max_age": 3600,
    });
    (claims, verifier)
}

fn hs256(c: &TestClient, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.typ = Some("oauth-authz-req+jwt".into());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(c.secret.as_bytes())).expect("sign")
}

fn authorize(c: &TestClient, jwt: &str, extra: &str) -> String {
    crate::flow::authorize_by(c, "request", jwt, extra)
}

#[tokio::test]
async fn a_signed_request_object_is_the_whole_request() {
    let h = Harness::new().await;
    h.user("alice").await;
    let c = h
        .web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await;
    let (claims, verifier) = request(&c, "r-1");
    let jwt = hs256(&c, &claims);
    // What the query adds beside the object is not read.
    let p = sign_in(
        &Browser::new(&h),
        &authorize(
            &c,
            &jwt,
            "&state=forged&scope=openid%20admin&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
        ),
        "alice",
    )
    .await;
    assert_eq!(p["state"], "signed-state", "{p:?}");
    let t = h.exchange(&c, &p["code"], Some(&verifier)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert_eq!(t.json["scope"], "openid profile");

    // The same object again (its jti), and objects that do not bind: an error page, no redirect.
    let refused = |r: crate::support::Reply, what: &str| {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        assert!(r.header("location").is_empty(), "{what}: redirected");
        assert!(
            r.text.contains("request object is refused"),
            "{what}: {}",
            r.text
        );
    };
    refused(
        Browser::new(&h).get(&authorize(&c, &jwt, "")).await,
        "replayed",
    );
    let other = h.web_app(|_| {}).await;
    // Each case changes claims of a good object (null: leaves the claim out); times against
    // Tessera's clock, which the harness holds still.
    let t = h.clock.now().0;
    let cases = [
        ("wrong aud", json!({"aud": "https://other.example"})),
        ("wrong iss", json!({"iss": "someone-else"})),
        ("expired beyond the clock skew", json!({"exp": t - 310})),
        ("no exp", json!({"exp": null})),
        ("too long-lived", json!({"exp": t + 7200})),
        ("another client_id inside", json!({"client_id": "x"})),
        (
            "a nested request_uri",
            json!({"request_uri": "https://evil.example/r"}),
        ),
    ];
    for (i, (what, change)) in cases.into_iter().enumerate() {
        let (mut v, _) = request(&c, &format!("bad-{i}"));
        for (k, x) in change.as_object().expect("object") {
            match x {
                Value::Null => {
                    v.as_object_mut().expect("claims").remove(k);
                }
                x => v[k] = x.clone(),
            }
        }
        refused(
            Browser::new(&h)
                .get(&authorize(&c, &hs256(&c, &v), ""))
                .await,
            what,
        );
    }
    // Signed with another client's secret, or not at all.
    let (v, _) = request(&c, "other-secret");
    refused(
        Browser::new(&h)
            .get(&authorize(&c, &hs256(&other, &v), ""))
            .await,
        "another secret",
    );
    let none = format!(
        "{}.{}.",
        tessera_core::secret::b64url(br#"{"alg":"none"}"#),
        tessera_core::secret::b64url(request(&c, "unsigned").0.to_string().as_bytes())
    );
    refused(
        Browser::new(&h).get(&authorize(&c, &none, "")).await,
        "alg none",
    );
    // Another client presenting the object under its own client_id.
    let (v, _) = request(&c, "borrowed");
    refused(
        Browser::new(&h)
            .get(&authorize(&other, &hs256(&c, &v), ""))
            .await,
        "borrowed",
    );
}

#[tokio::test]
async fn registered_keys_sign_pushed_and_required_request_objects() {
    let h = Harness::new().await;
    h.user("alice").await;
    let k = key_pair("rp-key-1");
    let c = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.jwks = Some(json!({"keys": [k.jwk.clone()]}));
            s.require_signed_request_object = Some(true);
        })
        .await;
    // Required: a plain request is refused at the redirect URI.
    let (path, _) = crate::flow::code_request(&c, "openid", "");
    let p = redirect_params(&Browser::new(&h).get(&path).await);
    assert_eq!(
        p.get("error").map(String::as_str),
        Some("invalid_request"),
        "{p:?}"
    );

    // ES256 with the registered key, by value.
    let (claims, verifier) = request(&c, "es-1");
    let p = sign_in(
        &Browser::new(&h),
        &authorize(&c, &sign_with(&k, &claims), ""),
        "alice",
    )
    .await;
    let t = h.exchange(&c, &p["code"], Some(&verifier)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    // A key the client did not register.
    let stranger = key_pair("rp-key-1");
    let (claims, _) = request(&c, "es-2");
    let r = Browser::new(&h)
        .get(&authorize(&c, &sign_with(&stranger, &claims), ""))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    // Pushed (RFC 9126 §3): verified at /par, its parameters kept; still counts as signed.
    let (claims, verifier) = request(&c, "es-3");
    let body = enc(&[("request", &sign_with(&k, &claims))]);
    let pushed = h.post("/par", Some(&c.basic()), &body).await;
    assert_eq!(pushed.status, StatusCode::CREATED, "{}", pushed.text);
    let uri = pushed.json["request_uri"].as_str().expect("request_uri");
    let p = sign_in(
        &Browser::new(&h),
        &crate::flow::authorize_by(&c, "request_uri", uri, ""),
        "alice",
    )
    .await;
    assert_eq!(p["state"], "signed-state", "{p:?}");
    let t = h.exchange(&c, &p["code"], Some(&verifier)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    // A pushed object that does not verify is refused at /par with the OIDC error code.
    let (claims, _) = request(&c, "es-4");
    let body = enc(&[("request", &sign_with(&stranger, &claims))]);
    let r = h.post("/par", Some(&c.basic()), &body).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_request_object"),
        "{}",
        r.text
    );
    // Pushed without an object: not signed, so refused.
    let (claims, _) = request(&c, "unused");
    let plain: Vec<(String, String)> = claims
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !["iss", "aud", "exp", "iat", "jti", "client_id"].contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = plain
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = h.post("/par", Some(&c.basic()), &enc(&pairs)).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{}",
        r.text
    );
}

/// Review regression: a request object, which travels in the browser's address bar, never
/// authenticates its client at the token, introspection or revocation endpoints: an explicitly
/// typed one is not a client assertion, and a `jti` spent as one kind is spent as the other.
#[tokio::test]
async fn a_request_object_is_never_a_client_assertion() {
    let h = Harness::new().await;
    h.user("alice").await;
    let k = key_pair("rp-key-2");
    let c = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.auth_method = Some(tessera_core::model::AuthMethod::PrivateKeyJwt);
            s.jwks = Some(json!({"keys": [k.jwk.clone()]}));
        })
        .await;
    let introspect = |jwt: String| {
        let h = &h;
        async move {
            let body = enc(&[
                ("token", "anything"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", jwt.as_str()),
            ]);
            h.post("/introspect", None, &body).await.status
        }
    };
    let object = |jti: &str, typ: Option<&str>| {
        let (mut claims, _) = request(&c, jti);
        claims["sub"] = json!(c.id);
        claims["exp"] = json!(now() + 120);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("rp-key-2".into());
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ec_pem(k.pem.as_bytes()).expect("pem"),
        )
        .expect("sign")
    };
    // Typed as a request object: never an assertion, used or not.
    let typed = object("typed", Some("oauth-authz-req+jwt"));
    assert_eq!(introspect(typed.clone()).await, StatusCode::UNAUTHORIZED);
    // The media type with its application/ prefix is the same type (RFC 7515 §4.1.9).
    let prefixed = object("prefixed", Some("application/oauth-authz-req+jwt"));
    let p = sign_in(&Browser::new(&h), &authorize(&c, &prefixed, ""), "alice").await;
    assert!(p.contains_key("code"), "{p:?}");
    // Untyped: once it signed a user in, its jti is spent for assertions too.
    let untyped = object("untyped", None);
    let p = sign_in(&Browser::new(&h), &authorize(&c, &untyped, ""), "alice").await;
    assert!(p.contains_key("code"), "{p:?}");
    assert_eq!(introspect(untyped).await, StatusCode::UNAUTHORIZED);
    // The control: a fresh untyped one authenticates (so the refusals above are not about keys).
    assert_eq!(introspect(object("control", None)).await, StatusCode::OK);

    // A private_key_jwt client signs request objects with its keys, not an old secret.
    let (claims, _) = request(&c, "hs");
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("oauth-authz-req+jwt".into());
    let hs = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"whatever"))
        .expect("sign");
    let r = Browser::new(&h).get(&authorize(&c, &hs, "")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

/// A server for request objects by reference: path → (status, body), counting its requests.
async fn object_server(
    objects: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, (u16, String)>>>,
) -> String {
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::get(
            move |axum::extract::Path(name): axum::extract::Path<String>| {
                let objects = objects.clone();
                async move {
                    let (status, body) = objects
                        .lock()
                        .expect("objects")
                        .get(&name)
                        .cloned()
                        .unwrap_or((404, String::new()));
                    (
                        http::StatusCode::from_u16(status).expect("status"),
                        [("content-type", "application/oauth-authz-req+jwt")],
                        body,
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// RFC 9101 §5.2 / OIDC Core §6.2: `request_uri` by reference, fetched (through the guarded
/// outbound path) only from URLs the application registered, verified as by value; what the
/// query adds is not read; every fetch failure is `invalid_request_uri`, on an error page.
#[tokio::test]
async fn request_objects_by_reference_come_only_from_registered_urls() {
    let h = Harness::new().await;
    h.user("alice").await;
    let objects = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let base = object_server(objects.clone()).await;
    let registered = |name: &str| format!("{base}/{name}");
    let c = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.require_signed_request_object = Some(true);
            s.request_uris = vec![
                registered("ok"),
                registered("gone"),
                registered("big"),
                registered("other"),
            ];
        })
        .await;
    let (claims, verifier) = request(&c, "by-ref-1");
    objects
        .lock()
        .expect("objects")
        .insert("ok".into(), (200, hs256(&c, &claims)));
    let by_ref = |uri: &str, extra: &str| crate::flow::authorize_by(&c, "request_uri", uri, extra);
    // A fragment is allowed (OIDC Core §6.2), and the query beside it is not read.
    let p = sign_in(
        &Browser::new(&h),
        &by_ref(&format!("{}#v1", registered("ok")), "&state=forged"),
        "alice",
    )
    .await;
    assert_eq!(p["state"], "signed-state", "{p:?}");
    let t = h.exchange(&c, &p["code"], Some(&verifier)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);

    let (other_claims, _) = request(&c, "by-ref-2");
    let other_app = h.web_app(|_| {}).await;
    let mut foreign = other_claims.clone();
    foreign["iss"] = json!(other_app.id);
    objects.lock().expect("objects").extend([
        ("gone".to_owned(), (404, String::new())),
        ("big".to_owned(), (200, "x".repeat(20 * 1024))),
        ("other".to_owned(), (200, hs256(&other_app, &foreign))),
    ]);
    for (what, uri, expected) in [
        (
            "the same object again (its jti)",
            registered("ok"),
            "request_object",
        ),
        (
            "not registered",
            format!("{base}/unregistered"),
            "registered",
        ),
        (
            "a registered URL with a trailing slash",
            registered("ok").replace("/ok", "/ok/"),
            "registered",
        ),
        ("a 404", registered("gone"), "could not be fetched"),
        ("too large", registered("big"), "could not be fetched"),
        (
            "signed by another application",
            registered("other"),
            "request_object",
        ),
    ] {
        let r = Browser::new(&h).get(&by_ref(&uri, "")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        assert!(r.header("location").is_empty(), "{what}: an error page");
        let code = if expected == "request_object" {
            "invalid_request_object"
        } else {
            "invalid_request_uri"
        };
        assert!(r.text.contains(code), "{what}: {}", r.text);
        if expected != "request_object" {
            assert!(r.text.contains(expected), "{what}: {}", r.text);
        }
    }
    // Another application cannot use this one's registered URL.
    let r = Browser::new(&h)
        .get(&crate::flow::authorize_by(
            &other_app,
            "request_uri",
            &registered("ok"),
            "",
        ))
        .await;
    assert!(r.text.contains("invalid_request_uri"), "{}", r.text);

    // Registration: no fragment, at most 20.
    let admin = h.provider.admin(tessera_core::admin::Caller::local());
    for uris in [
        vec![format!("{}#x", registered("ok"))],
        (0..21).map(|i| registered(&i.to_string())).collect(),
    ] {
        let spec = tessera_core::admin::ClientSpec {
            redirect_uris: vec![crate::flow::RP.into()],
            request_uris: uris,
            ..tessera_core::admin::ClientSpec::new("x", tessera_core::model::ClientType::Web)
        };
        let e = admin.create_client(&spec).await.expect_err("refused");
        assert!(format!("{e:?}").contains("request_uris"), "{e:?}");
    }
}

/// RFC 9101 §6.1: a signed request object encrypted to Tessera's encryption key (the JWKS key
/// with `use: enc`) is decrypted, then verified as any other; one Tessera cannot decrypt, or
/// that holds no signed JWT, is refused.
#[tokio::test]
async fn encrypted_request_objects_are_decrypted_then_verified() {
    let h = Harness::new().await;
    h.user("alice").await;
    let c = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.require_signed_request_object = Some(true);
        })
        .await;
    let jwks = h.get("/jwks").await.json;
    let tessera = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["use"] == "enc")
        .expect("Tessera's encryption key")
        .clone();
    let discovery = h.get("/.well-known/openid-configuration").await.json;
    assert_eq!(
        discovery["request_object_encryption_alg_values_supported"],
        json!(["ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW"])
    );
    use tessera_core::jwe::encrypt;
    use tessera_core::model::{ContentEncryption as Enc, KeyManagement as Km};
    let (claims, verifier) = request(&c, "enc-1");
    let jwe = encrypt(
        hs256(&c, &claims).as_bytes(),
        &tessera,
        Km::EcdhEsA128Kw,
        Enc::A256Gcm,
        Some("JWT"),
    )
    .expect("encrypt");
    let p = sign_in(
        &Browser::new(&h),
        &authorize(&c, &jwe, "&state=forged"),
        "alice",
    )
    .await;
    assert_eq!(p["state"], "signed-state", "{p:?}");
    let t = h.exchange(&c, &p["code"], Some(&verifier)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);

    // Refused: encrypted to a key that is not Tessera's; holding unsigned claims; the same
    // object again (its jti).
    let someone = crate::assertions::key_pair("o").jwk;
    let (claims3, _) = request(&c, "enc-3");
    let other = tessera_core::jwe::encrypt(
        hs256(&c, &claims3).as_bytes(),
        &json!({"kty": "EC", "crv": "P-256", "x": someone["x"], "y": someone["y"]}),
        Km::EcdhEs,
        Enc::A128Gcm,
        None,
    )
    .expect("encrypt");
    let (claims2, _) = request(&c, "enc-2");
    let unsigned = encrypt(
        claims2.to_string().as_bytes(),
        &tessera,
        Km::EcdhEs,
        Enc::A128CbcHs256,
        None,
    )
    .expect("encrypt");
    for (what, object) in [
        ("another key", other),
        ("unsigned claims inside", unsigned),
        ("replayed", jwe),
    ] {
        let r = Browser::new(&h).get(&authorize(&c, &object, "")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        assert!(
            r.text.contains("invalid_request_object"),
            "{what}: {}",
            r.text
        );
    }
}
