//! The dashboard's counts: sign-ins by outcome, tokens by grant and throttled requests are
//! counted per application, stored, summed over the last hour and day, and shown by the admin
//! API and drawn by the Portal (home page and an application's Usage tab).

use tessera_core::admin::{Caller, Window};
use tessera_core::model::{Alg, GrantType, TokenFormat};

use crate::admin_api::{automation, call, own_token, self_service, setup};
use crate::flow::PASSWORD;

#[tokio::test]
async fn sign_ins_tokens_and_throttling_are_counted_per_application() {
    let h = setup().await;
    h.user("alice").await;
    h.user("bob").await;
    let web = h
        .web_app(|s| s.grant_types = Some(vec![GrantType::AuthorizationCode, GrantType::Password]))
        .await;
    let m2m = h.client(Alg::ES256, TokenFormat::Jwt).await;
    for _ in 0..2 {
        assert_eq!(
            h.password_grant(&web, "alice", PASSWORD).await.as_u16(),
            200
        );
    }
    assert_eq!(
        h.password_grant(&web, "alice", "wrong password")
            .await
            .as_u16(),
        400
    );
    for _ in 0..3 {
        h.access_token(&m2m).await;
    }
    // Bob's account is paused after five failures: the sixth is answered 429.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            h.password_grant(&web, "bob", "wrong password")
                .await
                .as_u16(),
        );
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    tessera_server::jobs::store_usage(&h.provider).await;

    let admin = h.provider.admin(Caller::local());
    let all = admin.usage(None, Window::Hour).await.expect("usage");
    assert_eq!(all.sign_ins_succeeded.total, 2);
    assert_eq!(all.sign_ins_failed.total, 6, "alice's one and bob's five");
    assert_eq!(all.throttled.total, 1);
    let grants: Vec<(&str, i64)> = all
        .tokens
        .iter()
        .map(|(g, s)| (g.as_str(), s.total))
        .collect();
    assert!(grants.contains(&("client_credentials", 3)), "{grants:?}");
    assert!(grants.contains(&("password", 2)), "{grants:?}");
    assert_eq!(
        all.busiest[0],
        (web.id.clone(), 10),
        "2 + 6 sign-ins, 2 tokens"
    );
    assert_eq!(all.sign_ins_succeeded.points.len(), 60);
    assert_eq!(
        *all.sign_ins_succeeded.points.last().expect("points"),
        2,
        "this minute"
    );
    let one = admin
        .usage(Some(&m2m.id), Window::Day)
        .await
        .expect("usage");
    assert_eq!(one.sign_ins_succeeded.total, 0);
    assert_eq!(one.tokens[0].1.total, 3);
    assert_eq!(one.sign_ins_succeeded.points.len(), 48);
    // Counts that were stored are not counted again.
    tessera_server::jobs::store_usage(&h.provider).await;
    let again = admin.usage(None, Window::Hour).await.expect("usage");
    assert_eq!(again.sign_ins_succeeded.total, 2);

    // The admin API, with config:read.
    let token = automation(&h, &["config:read"]).await;
    let r = call(
        &h,
        "GET",
        &format!("/usage?window=day&application={}", web.id),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["sign_ins_failed"]["total"], 6);
    assert_eq!(r.json["step"], 1800);
    let r = call(&h, "GET", "/usage?window=week", &token, None).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = call(&h, "GET", "/usage?application=nobody", &token, None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let users_only = automation(&h, &["users:read"]).await;
    let r = call(&h, "GET", "/usage", &users_only, None).await;
    assert_eq!(r.status, 403, "{}", r.text);

    // The Portal draws them for an administrator's session: the home page, and an application's
    // Usage tab.
    let root = h.user("root").await;
    admin
        .set_membership("tessera-admins", &root, true)
        .await
        .expect("administrator");
    let portal = own_token(&h, &self_service(&h).await, "root", &["config:read"]).await;
    let session = |path: &str| {
        let req = http::Request::builder()
            .uri(path)
            .header("cookie", format!("tessera_admin={portal}"))
            .body(axum::body::Body::empty())
            .expect("request");
        h.send(req)
    };
    let home = session("/admin").await;
    assert_eq!(home.status, 200, "{}", home.text);
    assert!(home.text.contains("<svg") && home.text.contains("Busiest applications"));
    assert!(
        home.text.contains("<dt>Failed sign-ins</dt><dd>6</dd>"),
        "{}",
        home.text
    );
    let tab = session(&format!("/admin/applications/{}?tab=usage", m2m.id)).await;
    assert_eq!(tab.status, 200);
    assert!(
        tab.text.contains("<dt>Tokens issued</dt><dd>3</dd>"),
        "{}",
        tab.text
    );
    assert!(!tab.text.contains("Busiest applications"));
}
