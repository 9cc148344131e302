//! The device authorization grant (RFC 8628): the device asks for codes, the user enters the
//! user code at `/device`, signs in as the application's scheme asks (a second factor too) and
//! confirms on the consent page showing the code, while the device polls (`authorization_pending`,
//! `slow_down`); denied, expired, reused and guessed codes; a poll that fails in its write.

use http::StatusCode;
use serde_json::Value;
use tessera_core::model::{ConsentMode, GrantType};

use crate::flow::{enc, jwt_claims, Browser};
use crate::support::{Harness, Reply, TestClient};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn tv_app(h: &Harness, scheme: Option<&str>) -> TestClient {
    h.web_app(|s| {
        s.grant_types = Some(vec![GrantType::DeviceCode, GrantType::RefreshToken]);
        s.redirect_uris = vec![];
        s.post_logout_redirect_uris = vec![];
        s.consent = Some(ConsentMode::AutoAccept);
        s.authentication_scheme = scheme.map(str::to_owned);
    })
    .await
}

async fn start(h: &Harness, app: &TestClient, scope: &str) -> Value {
    let r = h
        .post(
            "/device_authorization",
            Some(&app.basic()),
            &enc(&[("scope", scope)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("cache-control"), "no-store");
    r.json
}

async fn poll(h: &Harness, app: &TestClient, device_code: &str) -> Reply {
    h.post(
        "/token",
        Some(&app.basic()),
        &enc(&[("grant_type", GRANT), ("device_code", device_code)]),
    )
    .await
}

/// The path of a URL of the issuer.
fn path(url: &str) -> &str {
    url.strip_prefix(crate::support::ISSUER)
        .expect("issuer URL")
}

/// Enters `code` at `/device`.
async fn enter(b: &Browser<'_>, code: &str) -> Reply {
    b.post("/device", &enc(&[("user_code", code)])).await
}

#[tokio::test]
async fn a_device_signs_in_with_the_user_code_while_it_polls() {
    let h = Harness::new().await;
    h.user("alice").await;
    let app = tv_app(&h, None).await;
    let d = start(&h, &app, "openid profile offline_access").await;
    let (device_code, user_code) = (
        d["device_code"].as_str().unwrap(),
        d["user_code"].as_str().unwrap(),
    );
    assert_eq!(
        d["verification_uri"],
        format!("{}/device", crate::support::ISSUER)
    );
    assert_eq!(d["interval"], 5);
    assert_eq!(d["expires_in"], 600);
    assert!(
        user_code.len() == 9
            && user_code.chars().enumerate().all(|(i, c)| if i == 4 {
                c == '-'
            } else {
                "BCDFGHJKLMNPQRSTVWXZ".contains(c)
            }),
        "{user_code}"
    );
    let disc = h.get("/.well-known/openid-configuration").await.json;
    assert_eq!(
        disc["device_authorization_endpoint"],
        format!("{}/device_authorization", crate::support::ISSUER)
    );
    assert!(disc["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(GRANT)));

    // The device polls before the user is done: pending; too fast: slow_down.
    let r = poll(&h, &app, device_code).await;
    assert_eq!(r.error(), "authorization_pending", "{}", r.text);
    assert_eq!(poll(&h, &app, device_code).await.error(), "slow_down");
    h.clock.advance(5);
    assert_eq!(
        poll(&h, &app, device_code).await.error(),
        "authorization_pending"
    );

    // The user opens verification_uri_complete: the code is filled in, and typed in lower case
    // without the dash it is the same code.
    let b = Browser::new(&h);
    let form = b
        .get(path(d["verification_uri_complete"].as_str().unwrap()))
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.text.contains(&format!("value=\"{user_code}\"")),
        "{}",
        form.text
    );
    let login = enter(&b, &user_code.replace('-', ".").to_lowercase()).await;
    let consent = b.login(&login, "alice", crate::flow::PASSWORD).await;
    // Confirmed on the consent page, which shows the code, although the application is
    // first-party (auto-accept).
    assert!(consent.text.contains(user_code), "{}", consent.text);
    let done = b.consent(&consent, true).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let shown = b.get(path(done.header("location"))).await;
    assert!(shown.text.contains("Device connected"), "{}", shown.text);

    h.clock.advance(5);
    let t = poll(&h, &app, device_code).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert_eq!(t.json["token_type"], "Bearer");
    assert!(t.json["refresh_token"].is_string());
    let id = jwt_claims(t.json["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], app.id.as_str());
    // The device's sign-in is not the approving browser's session: no sid to end it with.
    assert!(id.get("sid").is_none(), "{id}");
    // Once: the next poll, and the code entered again, find nothing.
    h.clock.advance(5);
    assert_eq!(poll(&h, &app, device_code).await.error(), "invalid_grant");
    let again = enter(&b, user_code).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.text.contains("not valid"), "{}", again.text);
}

/// The device code is spent in the write that stores the refresh token: a poll that fails in
/// that write (the database refuses the insert) leaves the code to the next poll, which gets
/// the tokens; the one after finds nothing.
#[tokio::test]
async fn a_poll_that_fails_in_its_write_leaves_the_device_code_to_the_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("tessera.db");
    let h = Harness::on_file(&db).await;
    h.user("alice").await;
    let app = tv_app(&h, None).await;
    let d = start(&h, &app, "openid offline_access").await;
    let (device_code, user_code) = (
        d["device_code"].as_str().unwrap(),
        d["user_code"].as_str().unwrap(),
    );
    let b = Browser::new(&h);
    let login = enter(&b, user_code).await;
    let consent = b.login(&login, "alice", crate::flow::PASSWORD).await;
    let done = b.consent(&consent, true).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);

    let refusing = crate::support::refuse_refresh_tokens(&db).await;
    h.clock.advance(5);
    let failed = poll(&h, &app, device_code).await;
    assert!(failed.status.is_server_error(), "{}", failed.text);
    crate::support::accept_refresh_tokens(refusing).await;
    h.clock.advance(5);
    let t = poll(&h, &app, device_code).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert!(t.json["refresh_token"].is_string());
    h.clock.advance(5);
    assert_eq!(poll(&h, &app, device_code).await.error(), "invalid_grant");
}

#[tokio::test]
async fn the_applications_scheme_applies_to_device_sign_in() {
    let h = Harness::new().await;
    crate::mfa::scheme(&h, "mfa", crate::mfa::MFA, true).await;
    h.user("alice").await;
    let app = tv_app(&h, Some("mfa")).await;
    let d = start(&h, &app, "openid").await;
    let b = Browser::new(&h);
    let login = enter(&b, d["user_code"].as_str().unwrap()).await;
    let enrol = b.login(&login, "alice", crate::flow::PASSWORD).await;
    let (_, _, consent) = crate::mfa::enrol_totp(&h, &b, &enrol).await;
    let done = b.consent(&consent, true).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let t = poll(&h, &app, d["device_code"].as_str().unwrap()).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let id = jwt_claims(t.json["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], crate::mfa::MFA);
}

#[tokio::test]
async fn denied_expired_foreign_and_guessed_codes_yield_nothing() {
    let h = Harness::new().await;
    h.user("alice").await;
    let app = tv_app(&h, None).await;
    let other = tv_app(&h, None).await;

    // Denied on the consent page: access_denied, once.
    let d = start(&h, &app, "openid").await;
    let b = Browser::new(&h);
    let login = enter(&b, d["user_code"].as_str().unwrap()).await;
    let consent = b.login(&login, "alice", crate::flow::PASSWORD).await;
    let done = b.consent(&consent, false).await;
    assert!(
        done.header("location").ends_with("/device?result=denied"),
        "{}",
        done.text
    );
    let code = d["device_code"].as_str().unwrap();
    // Another application cannot poll for it.
    assert_eq!(poll(&h, &other, code).await.error(), "invalid_grant");
    assert_eq!(poll(&h, &app, code).await.error(), "access_denied");
    assert_eq!(poll(&h, &app, code).await.error(), "invalid_grant");

    // Expired: expired_token, and the user code is no longer taken.
    let d = start(&h, &app, "openid").await;
    h.clock.advance(601);
    assert_eq!(
        poll(&h, &app, d["device_code"].as_str().unwrap())
            .await
            .error(),
        "expired_token"
    );
    assert_eq!(
        enter(&b, d["user_code"].as_str().unwrap()).await.status,
        StatusCode::BAD_REQUEST
    );

    // A consent page of a request entered before another browser decided it cannot decide it
    // again.
    let d = start(&h, &app, "openid").await;
    let (b1, b2) = (Browser::new(&h), Browser::new(&h));
    let c1 = b1
        .login(
            &enter(&b1, d["user_code"].as_str().unwrap()).await,
            "alice",
            crate::flow::PASSWORD,
        )
        .await;
    let c2 = b2
        .login(
            &enter(&b2, d["user_code"].as_str().unwrap()).await,
            "alice",
            crate::flow::PASSWORD,
        )
        .await;
    let c3 = {
        let b3 = Browser::new(&h);
        let c = b3
            .login(
                &enter(&b3, d["user_code"].as_str().unwrap()).await,
                "alice",
                crate::flow::PASSWORD,
            )
            .await;
        (b3, c)
    };
    assert_eq!(b1.consent(&c1, true).await.status, StatusCode::SEE_OTHER);
    let late = b2.consent(&c2, true).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.text);
    // A denial after the approval is not reported as one: the device is signed in.
    let late = c3.0.consent(&c3.1, false).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.text);
    assert!(!late.text.contains("Request denied"), "{}", late.text);

    // Guessing: every wrong code counts against the address; then 429 with Retry-After.
    let guesser = Browser::new(&h);
    let mut last = None;
    for _ in 0..25 {
        let r = enter(&guesser, "BCDF-GHJK").await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            last = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    let throttled = last.expect("throttled");
    assert!(throttled.header("retry-after").parse::<i64>().unwrap() > 0);
    // Even the right code waits now.
    let d = start(&h, &app, "openid").await;
    assert_eq!(
        enter(&guesser, d["user_code"].as_str().unwrap())
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // An application without the grant gets no codes; unknown scopes are refused.
    let plain = h.web_app(|_| {}).await;
    let r = h
        .post(
            "/device_authorization",
            Some(&plain.basic()),
            "scope=openid",
        )
        .await;
    assert_eq!(r.error(), "unauthorized_client", "{}", r.text);
    let r = h
        .post("/device_authorization", Some(&app.basic()), "scope=nope")
        .await;
    assert_eq!(r.error(), "invalid_scope", "{}", r.text);
    let r = h.post("/device_authorization", None, "scope=openid").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Odd input gets the page, never a framework error.
    let r = guesser
        .get("/device?user_code=A&user_code=B&result=x&result=y")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("value=\"A\""), "{}", r.text);
    let r = Browser::new(&h)
        .post("/device", &format!("user_code={}", "B".repeat(70_000)))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text.contains("Enter the code"), "{}", r.text);
}
