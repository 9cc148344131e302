//! Pushed authorization requests (RFC 9126): the client pushes its request to `/par`
//! (authenticated as at the token endpoint, checked as `/authorize` checks it) and the browser
//! carries only `client_id` and the single-use `request_uri`; an application, or the whole server,
//! can refuse every request that was not pushed.

use http::StatusCode;
use tessera_core::model::{ClientType, ConsentMode};

use crate::flow::{enc, pkce, redirect_params, sign_in, Browser, RP};
use crate::support::{basic, Harness, Reply, TestClient, ISSUER};

/// A pushed code request with PKCE, authenticated with `auth` (or, for a public client, its
/// `client_id` in the form); the reply and the PKCE verifier.
async fn push(
    h: &Harness,
    c: &TestClient,
    auth: Option<&str>,
    extra: &[(&str, &str)],
) -> (Reply, String) {
    let (verifier, challenge) = pkce();
    let mut pairs = vec![
        ("response_type", "code"),
        ("redirect_uri", RP),
        ("scope", "openid profile"),
        ("state", "pushed-state"),
        ("nonce", "n-1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if auth.is_none() {
        pairs.push(("client_id", &c.id));
    }
    for (k, v) in extra {
        match pairs.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v,
            None => pairs.push((k, v)),
        }
    }
    (h.post("/par", auth, &enc(&pairs)).await, verifier)
}

fn authorize(c: &TestClient, request_uri: &str, extra: &str) -> String {
    crate::flow::authorize_by(c, "request_uri", request_uri, extra)
}

#[tokio::test]
async fn a_pushed_request_signs_the_user_in_once() {
    let h = Harness::new().await;
    h.user("alice").await;
    let c = h
        .web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await;
    let (r, verifier) = push(&h, &c, Some(&c.basic()), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.header("cache-control"), "no-store");
    let uri = r.json["request_uri"]
        .as_str()
        .expect("request_uri")
        .to_owned();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );
    assert_eq!(r.json["expires_in"], 60);

    // What the front channel adds is not read: the pushed redirect URI, scope and state hold.
    let b = Browser::new(&h);
    let p = sign_in(
        &b,
        &authorize(
            &c,
            &uri,
            "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&state=forged&scope=openid%20admin",
        ),
        "alice",
    )
    .await;
    assert_eq!(p["state"], "pushed-state", "{p:?}");
    let t = h.exchange(&c, &p["code"], Some(&verifier)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert_eq!(t.json["scope"], "openid profile");

    // Used once.
    let again = Browser::new(&h).get(&authorize(&c, &uri, "")).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.text);
    assert!(
        again.text.contains("invalid_request_uri") || again.text.contains("request_uri is unknown"),
        "{}",
        again.text
    );

    // Another client cannot spend it, and its attempt leaves it to its owner.
    let other = h.web_app(|_| {}).await;
    let (r, _) = push(&h, &c, Some(&c.basic()), &[]).await;
    let uri = r.json["request_uri"]
        .as_str()
        .expect("request_uri")
        .to_owned();
    let stolen = Browser::new(&h).get(&authorize(&other, &uri, "")).await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST, "{}", stolen.text);
    let p = sign_in(&Browser::new(&h), &authorize(&c, &uri, ""), "alice").await;
    assert!(p.contains_key("code"), "{p:?}");

    // A request_uri without its client_id, or expired: refused.
    let (r, _) = push(&h, &c, Some(&c.basic()), &[]).await;
    let uri = r.json["request_uri"]
        .as_str()
        .expect("request_uri")
        .to_owned();
    let bare = Browser::new(&h)
        .get(&format!("/authorize?{}", enc(&[("request_uri", &uri)])))
        .await;
    assert_eq!(bare.status, StatusCode::BAD_REQUEST, "{}", bare.text);
    h.clock.advance(61);
    let late = Browser::new(&h).get(&authorize(&c, &uri, "")).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.text);
}

#[tokio::test]
async fn pushes_are_authenticated_and_checked_like_the_authorization_request() {
    let h = Harness::new().await;
    let c = h.web_app(|_| {}).await;
    let (r, _) = push(&h, &c, Some(&basic(&c.id, "wrong")), &[]).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_client"),
        "{}",
        r.text
    );
    let (r, _) = push(&h, &c, None, &[]).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a confidential client authenticates: {}",
        r.text
    );
    let other = h.web_app(|_| {}).await;
    for (what, extra, code) in [
        (
            "another client_id",
            vec![("client_id", other.id.as_str())],
            "invalid_request",
        ),
        (
            "a request_uri",
            vec![("request_uri", "urn:ietf:params:oauth:request_uri:x")],
            "invalid_request",
        ),
        (
            "an unregistered redirect_uri",
            vec![("redirect_uri", "https://evil.example/cb")],
            "invalid_request",
        ),
        (
            "an unknown response_type",
            vec![("response_type", "code ticket")],
            "unsupported_response_type",
        ),
        (
            "an unknown scope",
            vec![("scope", "openid nonsense")],
            "invalid_scope",
        ),
    ] {
        let (r, _) = push(&h, &c, Some(&c.basic()), &extra).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::BAD_REQUEST, code),
            "{what}: {}",
            r.text
        );
    }
    // client_secret_post: the secret authenticates the push and is not part of the request.
    let post = h
        .web_app(|s| s.auth_method = Some(tessera_core::model::AuthMethod::ClientSecretPost))
        .await;
    let (r, _) = push(&h, &post, None, &[("client_secret", post.secret.as_str())]).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "client_secret_post: {}",
        r.text
    );

    // Review regression (RFC 9126 §2): a client assertion may name the PAR endpoint as audience.
    let jwt_client = h
        .web_app(|s| s.auth_method = Some(tessera_core::model::AuthMethod::ClientSecretJwt))
        .await;
    let assertion = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"iss": jwt_client.id, "sub": jwt_client.id, "aud": format!("{ISSUER}/par"),
            "exp": crate::support::now() + 60, "jti": "par-aud-1"}),
        &jsonwebtoken::EncodingKey::from_secret(jwt_client.secret.as_bytes()),
    )
    .expect("sign");
    let (r, _) = push(
        &h,
        &jwt_client,
        None,
        &[
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ],
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "aud = the PAR endpoint: {}",
        r.text
    );

    // A request_uri neither pushed nor registered by the application is not fetched.
    let (path, _) =
        crate::flow::code_request(&c, "openid", "&request_uri=https%3A%2F%2Fevil.example%2Fr");
    let r = Browser::new(&h).get(&path).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.header("location").is_empty(),
        "an error page, no redirect"
    );
    assert!(
        r.text.contains("not one the application registered"),
        "{}",
        r.text
    );

    // A public client pushes with its client_id alone (PKCE binds the code).
    let spa = h
        .web_app(|s| {
            s.client_type = ClientType::Spa;
        })
        .await;
    let (r, _) = push(&h, &spa, None, &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn an_application_or_the_server_can_require_pushed_requests() {
    let h = Harness::new().await;
    h.user("alice").await;
    let c = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.require_pushed_authorization_requests = Some(true);
        })
        .await;
    let (path, _) = crate::flow::code_request(&c, "openid", "");
    let r = Browser::new(&h).get(&path).await;
    let p = redirect_params(&r);
    assert_eq!(
        p.get("error").map(String::as_str),
        Some("invalid_request"),
        "{p:?} {}",
        r.text
    );
    let (r, _) = push(&h, &c, Some(&c.basic()), &[]).await;
    let uri = r.json["request_uri"]
        .as_str()
        .expect("request_uri")
        .to_owned();
    let p = sign_in(&Browser::new(&h), &authorize(&c, &uri, ""), "alice").await;
    assert!(p.contains_key("code"), "{p:?}");

    // Review regression: a pushed sign-in that sets up a first second factor stays pushed through
    // the recovery-codes page.
    crate::mfa::scheme(&h, "mfa", "urn:example:mfa", true).await;
    let mfa = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.require_pushed_authorization_requests = Some(true);
            s.authentication_scheme = Some("mfa".into());
        })
        .await;
    h.user("bob").await;
    let (r, _) = push(&h, &mfa, Some(&mfa.basic()), &[]).await;
    let uri = r.json["request_uri"]
        .as_str()
        .expect("request_uri")
        .to_owned();
    let b = Browser::new(&h);
    let page = b.get(&authorize(&mfa, &uri, "")).await;
    let enrol = b.login(&page, "bob", crate::flow::PASSWORD).await;
    let (_, _, done) = crate::mfa::enrol_totp(&h, &b, &enrol).await;
    let p = redirect_params(&done);
    assert!(p.contains_key("code"), "{p:?} {}", done.text);

    let strict = Harness::with_settings(ISSUER, |s| s.require_pushed_requests = true).await;
    let d = strict.get("/.well-known/openid-configuration").await;
    assert_eq!(d.json["require_pushed_authorization_requests"], true);
    // Review regression: Tessera's own Admin Portal and account page still sign in.
    strict
        .provider
        .admin(tessera_core::admin::Caller::local())
        .ensure_admin_api()
        .await
        .expect("the Portal and account clients");
    for page in ["/admin/login", "/account/login"] {
        let b = Browser::new(&strict);
        let start = b.get(page).await;
        let next = start.header("location").replace(ISSUER, "");
        assert!(next.starts_with("/authorize?"), "{page}: {next}");
        let login = b.get(&next).await;
        assert!(
            login.text.contains("name=\"password\""),
            "{page}: {}",
            login.text
        );
    }
    let c = strict.web_app(|_| {}).await;
    let (path, _) = crate::flow::code_request(&c, "openid", "");
    let p = redirect_params(&Browser::new(&strict).get(&path).await);
    assert_eq!(
        p.get("error").map(String::as_str),
        Some("invalid_request"),
        "{p:?}"
    );
}
