//! Client-initiated backchannel authentication (OpenID CIBA Core 1.0): an application names the
//! user; the request waits on the user's account page (and in the admin API, for a notifier);
//! the user approves or denies; the application polls, or in ping mode is told first; every
//! refusal of §13 (unknown user, hints, scope, binding message, expiry) issues nothing.

use http::StatusCode;
use serde_json::{json, Value};
use tessera_core::admin::ClientSpec;
use tessera_core::model::{Backchannel, BackchannelMode, GrantType};

use crate::admin_api::{automation, setup};
use crate::flow::{enc, hidden, jwt_claims, Browser, PASSWORD};
use crate::mfa::follow;
use crate::support::{Harness, Reply, TestClient};

const GRANT: &str = "urn:openid:params:grant-type:ciba";

async fn ciba_app(h: &Harness, backchannel: Backchannel) -> TestClient {
    h.web_app(|s| {
        s.grant_types = Some(vec![GrantType::Ciba, GrantType::RefreshToken]);
        s.redirect_uris = vec![];
        s.post_logout_redirect_uris = vec![];
        s.backchannel = backchannel;
    })
    .await
}

async fn ask(h: &Harness, app: &TestClient, pairs: &[(&str, &str)]) -> Reply {
    h.post("/bc-authorize", Some(&app.basic()), &enc(pairs))
        .await
}

async fn poll(h: &Harness, app: &TestClient, id: &str) -> Reply {
    h.post(
        "/token",
        Some(&app.basic()),
        &enc(&[("grant_type", GRANT), ("auth_req_id", id)]),
    )
    .await
}

/// The user's account page, signed in.
async fn account<'a>(h: &'a Harness, user: &str) -> (Browser<'a>, Reply) {
    let b = Browser::new(h);
    let login = follow(&b, b.get("/account").await).await;
    let page = follow(&b, b.login(&login, user, PASSWORD).await).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    (b, page)
}

/// The request ids on an account page.
fn request_ids(page: &Reply) -> Vec<String> {
    page.text
        .split("name=\"id\" value=\"")
        .skip(1)
        .map(|s| s[..s.find('"').expect("end")].to_owned())
        .collect()
}

async fn decide(b: &Browser<'_>, page: &Reply, id: &str, decision: &str) -> Reply {
    b.post(
        "/account/backchannel",
        &enc(&[
            ("csrf", &hidden(&page.text, "csrf")),
            ("id", id),
            ("decision", decision),
        ]),
    )
    .await
}

#[tokio::test]
async fn the_user_approves_on_the_account_page_while_the_application_polls() {
    let h = setup().await;
    let uid = h.user("alice").await;
    h.user("bob").await;
    let app = ciba_app(&h, Backchannel::default()).await;
    let r = ask(
        &h,
        &app,
        &[
            ("scope", "openid profile"),
            ("login_hint", "alice"),
            ("binding_message", "W4-7K"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["expires_in"], 300);
    assert_eq!(r.json["interval"], 5);
    let id = r.json["auth_req_id"].as_str().unwrap().to_owned();
    let d = h.get("/.well-known/openid-configuration").await.json;
    assert_eq!(
        d["backchannel_token_delivery_modes_supported"],
        json!(["poll", "ping"])
    );
    assert!(d["backchannel_authentication_endpoint"]
        .as_str()
        .unwrap()
        .ends_with("/bc-authorize"));

    assert_eq!(poll(&h, &app, &id).await.error(), "authorization_pending");
    assert_eq!(poll(&h, &app, &id).await.error(), "slow_down");

    // A notifier reads the pending request through the admin API (users:read).
    let token = automation(&h, &["users:read"]).await;
    let listed = crate::admin_api::call(
        &h,
        "GET",
        &format!("/users/{uid}/backchannel-requests"),
        &token,
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.json[0]["binding_message"], "W4-7K");
    assert_eq!(listed.json[0]["client_id"], app.id.as_str());
    let none = automation(&h, &["config:read"]).await;
    let r = crate::admin_api::call(
        &h,
        "GET",
        &format!("/users/{uid}/backchannel-requests"),
        &none,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Bob cannot decide alice's request; his page does not show it.
    let (bob, bob_page) = account(&h, "bob").await;
    assert!(request_ids(&bob_page).is_empty());
    let r = decide(
        &bob,
        &bob_page,
        listed.json[0]["id"].as_str().unwrap(),
        "approve",
    )
    .await;
    assert_ne!(r.status, StatusCode::SEE_OTHER, "{}", r.text);

    // Alice sees it with its binding message, and approves.
    let (b, page) = account(&h, "alice").await;
    assert!(page.text.contains("W4-7K"), "{}", page.text);
    let ids = request_ids(&page);
    assert_eq!(ids.len(), 1);
    let r = decide(&b, &page, &ids[0], "approve").await;
    assert_eq!(
        r.header("location"),
        "/account?notice=approved",
        "{}",
        r.text
    );

    h.clock.advance(5);
    let t = poll(&h, &app, &id).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let claims = jwt_claims(t.json["id_token"].as_str().unwrap());
    assert_eq!(claims["aud"], app.id.as_str());
    assert_eq!(claims["sub"], uid.as_str());
    h.clock.advance(5);
    assert_eq!(poll(&h, &app, &id).await.error(), "invalid_grant");
    // Decided requests leave the page and the list.
    let again = crate::admin_api::call(
        &h,
        "GET",
        &format!("/users/{uid}/backchannel-requests"),
        &token,
        None,
    )
    .await;
    assert_eq!(again.json, json!([]));

    // The ID token names the user for the next request (id_token_hint); denied this time.
    let r = ask(
        &h,
        &app,
        &[
            ("scope", "openid"),
            ("id_token_hint", t.json["id_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.json["auth_req_id"].as_str().unwrap().to_owned();
    let page = follow(&b, b.get("/account").await).await;
    let ids = request_ids(&page);
    let r = decide(&b, &page, &ids[0], "deny").await;
    assert_eq!(r.header("location"), "/account?notice=denied");
    let denied = poll(&h, &app, &id).await;
    assert_eq!(denied.error(), "access_denied");
    assert_eq!(denied.status, StatusCode::BAD_REQUEST, "RFC 6749 §5.2");

    // The approval was the user's consent: listed on the account page, and revoking it ends
    // the application's grant (its refresh token).
    let page = follow(&b, b.get("/account").await).await;
    assert!(
        page.text.contains(&format!("<code>{}</code>", app.id)),
        "{}",
        page.text
    );
    let rt = t.json["refresh_token"].as_str().unwrap().to_owned();
    let r = b
        .post(
            "/account/consents/revoke",
            &enc(&[
                ("csrf", &hidden(&page.text, "csrf")),
                ("client_id", &app.id),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r = h
        .post(
            "/token",
            Some(&app.basic()),
            &enc(&[("grant_type", "refresh_token"), ("refresh_token", &rt)]),
        )
        .await;
    assert_eq!(r.error(), "invalid_grant", "{}", r.text);
}

/// An approval meets the application's authentication scheme, as a sign-in to it would: a user
/// who signed in to the account page with a password alone cannot approve for an application
/// that needs a second factor; one application floods no one's page.
#[tokio::test]
async fn approvals_meet_the_applications_scheme_and_requests_are_limited() {
    let h = setup().await;
    crate::mfa::scheme(&h, "mfa", crate::mfa::MFA, false).await;
    h.user("alice").await;
    let app = h
        .web_app(|s| {
            s.grant_types = Some(vec![GrantType::Ciba]);
            s.redirect_uris = vec![];
            s.post_logout_redirect_uris = vec![];
            s.authentication_scheme = Some("mfa".into());
        })
        .await;
    let r = ask(&h, &app, &[("scope", "openid"), ("login_hint", "alice")]).await;
    let id = r.json["auth_req_id"].as_str().unwrap().to_owned();
    let (b, page) = account(&h, "alice").await;
    let r = decide(&b, &page, &request_ids(&page)[0], "approve").await;
    assert_ne!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(
        r.text.contains("needs a sign-in with its own factors"),
        "{}",
        r.text
    );
    assert_eq!(poll(&h, &app, &id).await.error(), "authorization_pending");
    // A decision is approve or deny, nothing else.
    let r = decide(&b, &page, &request_ids(&page)[0], "APPROVE").await;
    assert_ne!(r.status, StatusCode::SEE_OTHER);

    // At most five requests of one application wait for one user.
    let plain = ciba_app(&h, Backchannel::default()).await;
    let mut last = None;
    for _ in 0..6 {
        last = Some(ask(&h, &plain, &[("scope", "openid"), ("login_hint", "alice")]).await);
    }
    let last = last.unwrap();
    assert_eq!(last.status, StatusCode::TOO_MANY_REQUESTS, "{}", last.text);
    // Binding messages are plain text; notification tokens are bearer tokens.
    for m in ["Code \u{202e}1174", "a\u{200b}b", "e\u{301}", "   "] {
        let r = ask(
            &h,
            &app,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("binding_message", m),
            ],
        )
        .await;
        assert_eq!(r.error(), "invalid_binding_message", "{m:?}: {}", r.text);
    }
    let r = ask(
        &h,
        &app,
        &[
            ("scope", "openid"),
            ("login_hint", "alice"),
            ("binding_message", "Zürich 4-7, ok?"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn ping_mode_tells_the_application_at_its_endpoint() {
    let h = setup().await;
    h.user("alice").await;
    let (url, rx) = crate::logout::raw_receiver().await;
    let app = ciba_app(
        &h,
        Backchannel {
            backchannel_token_delivery_mode: Some(BackchannelMode::Ping),
            backchannel_client_notification_endpoint: Some(url),
        },
    )
    .await;
    let r = ask(&h, &app, &[("scope", "openid"), ("login_hint", "alice")]).await;
    assert_eq!(
        r.error(),
        "invalid_request",
        "ping needs a notification token: {}",
        r.text
    );
    let r = ask(
        &h,
        &app,
        &[
            ("scope", "openid"),
            ("login_hint", "alice"),
            ("client_notification_token", "two words"),
        ],
    )
    .await;
    assert_eq!(r.error(), "invalid_request", "{}", r.text);
    let r = ask(
        &h,
        &app,
        &[
            ("scope", "openid"),
            ("login_hint", "alice"),
            ("client_notification_token", "nt-8f3a"),
        ],
    )
    .await;
    let id = r.json["auth_req_id"].as_str().unwrap().to_owned();
    let (b, page) = account(&h, "alice").await;
    let ids = request_ids(&page);
    decide(&b, &page, &ids[0], "approve").await;
    let (head, body) = tokio::time::timeout(std::time::Duration::from_secs(5), rx)
        .await
        .expect("pinged")
        .expect("ping");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer nt-8f3a"),
        "{head}"
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["auth_req_id"], id.as_str());
    let t = poll(&h, &app, &id).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_ciba_errors() {
    let h = setup().await;
    h.user("alice").await;
    let app = ciba_app(&h, Backchannel::default()).await;
    let plain = h.web_app(|_| {}).await;
    let long = "x".repeat(101);
    for (what, client, pairs, error) in [
        (
            "no such user",
            &app,
            vec![("scope", "openid"), ("login_hint", "nobody")],
            "unknown_user_id",
        ),
        (
            "two hints",
            &app,
            vec![
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("id_token_hint", "a.b.c"),
            ],
            "invalid_request",
        ),
        (
            "no hint",
            &app,
            vec![("scope", "openid")],
            "invalid_request",
        ),
        (
            "no openid",
            &app,
            vec![("scope", "profile"), ("login_hint", "alice")],
            "invalid_scope",
        ),
        (
            "no scope",
            &app,
            vec![("login_hint", "alice")],
            "invalid_request",
        ),
        (
            "a long binding message",
            &app,
            vec![
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("binding_message", long.as_str()),
            ],
            "invalid_binding_message",
        ),
        (
            "a user code",
            &app,
            vec![
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("user_code", "1234"),
            ],
            "invalid_request",
        ),
        (
            "a bad expiry",
            &app,
            vec![
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("requested_expiry", "-5"),
            ],
            "invalid_request",
        ),
        (
            "a foreign id_token_hint",
            &app,
            vec![("scope", "openid"), ("id_token_hint", "e30.e30.e30")],
            "invalid_request",
        ),
        (
            "an application without the grant",
            &plain,
            vec![("scope", "openid"), ("login_hint", "alice")],
            "unauthorized_client",
        ),
    ] {
        let r = ask(&h, client, &pairs).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        assert_eq!(r.error(), error, "{what}: {}", r.text);
    }
    assert_eq!(
        h.post("/bc-authorize", None, "scope=openid&login_hint=alice")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // A request the user never answers expires; a long expiry is cut to 30 minutes.
    let r = ask(
        &h,
        &app,
        &[
            ("scope", "openid"),
            ("login_hint", "alice"),
            ("requested_expiry", "86400"),
        ],
    )
    .await;
    assert_eq!(r.json["expires_in"], 1800);
    let id = r.json["auth_req_id"].as_str().unwrap().to_owned();
    h.clock.advance(1801);
    assert_eq!(poll(&h, &app, &id).await.error(), "expired_token");
    // Ping mode needs its endpoint when saved.
    let e = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .create_client(&ClientSpec {
            grant_types: Some(vec![GrantType::Ciba]),
            backchannel: Backchannel {
                backchannel_token_delivery_mode: Some(BackchannelMode::Ping),
                backchannel_client_notification_endpoint: None,
            },
            ..ClientSpec::new("ping", tessera_core::model::ClientType::M2m)
        })
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("backchannel_client_notification_endpoint"));
}
