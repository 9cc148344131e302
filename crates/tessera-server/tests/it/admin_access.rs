//! The admin API on a user's sessions and grants: listed, ended and revoked one at a time or all
//! at once, with back-channel logout, the audit log, and a revoked consent taking its grants.

use std::time::Duration;

use http::StatusCode;
use serde_json::Value;
use tessera_core::model::{ConsentMode, TokenFormat};

use crate::admin_api::{automation, call, problem, setup};
use crate::flow::{code_request, enc, jwt_claims, redirect_params, sign_in, Browser};
use crate::logout::receiver;
use crate::support::{Harness, Reply, TestClient};

/// Signs `user` in through `b` (a session, when the browser has none) and redeems the code.
async fn tokens(h: &Harness, b: &Browser<'_>, app: &TestClient, user: &str, scope: &str) -> Reply {
    let (path, verifier) = code_request(app, scope, "");
    let p = sign_in(b, &path, user).await;
    let t = h.exchange(app, &p["code"], Some(&verifier)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    t
}

async fn refresh(h: &Harness, app: &TestClient, t: &Reply) -> Reply {
    let rt = t.json["refresh_token"].as_str().expect("refresh token");
    h.post(
        "/token",
        Some(&app.basic()),
        &enc(&[("grant_type", "refresh_token"), ("refresh_token", rt)]),
    )
    .await
}

fn items(r: &Reply) -> Vec<Value> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn sessions_and_grants_are_listed_ended_and_revoked() {
    let h = setup().await;
    let sam = h.user("sam").await;
    let (bc_url, bc_body) = receiver().await;
    let app = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.backchannel_logout_uri = Some(bc_url.clone());
            s.introspection_allowed = Some(true);
            s.token_format = Some(TokenFormat::Opaque);
        })
        .await;
    let b = Browser::new(&h);
    let online = tokens(&h, &b, &app, "sam", "openid").await;
    let offline = tokens(&h, &b, &app, "sam", "openid offline_access").await;
    let id_token = online.json["id_token"].as_str().expect("id token");
    let sid = jwt_claims(id_token)["sid"]
        .as_str()
        .expect("sid")
        .to_owned();

    let reader = automation(&h, &["users:read"]).await;
    let writer = automation(&h, &["users:write"]).await;
    let sessions = items(&call(&h, "GET", &format!("/users/{sam}/sessions"), &reader, None).await);
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["sid"], sid.as_str());
    assert_eq!(sessions[0]["applications"][0], app.id.as_str());
    assert_eq!(sessions[0]["amr"][0], "pwd");
    // By username too, like every user path.
    let grants = items(&call(&h, "GET", "/users/sam/grants", &reader, None).await);
    assert_eq!(grants.len(), 2, "{grants:?}");
    assert!(grants
        .iter()
        .all(|g| g["client_id"] == app.id.as_str() && g["sid"] == sid.as_str()));
    let offline_grant = grants
        .iter()
        .find(|g| g["offline"] == true)
        .expect("offline grant")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Reading is not revoking.
    let path = format!("/users/{sam}/grants/{offline_grant}");
    problem(&call(&h, "DELETE", &path, &reader, None).await, 403);
    problem(
        &call(
            &h,
            "DELETE",
            &format!("/users/{sam}/sessions/{sid}"),
            &reader,
            None,
        )
        .await,
        403,
    );
    assert_eq!(refresh(&h, &app, &offline).await.status, StatusCode::OK);

    // One grant: its refresh token stops, the other grant stays.
    assert_eq!(call(&h, "DELETE", &path, &writer, None).await.status, 204);
    assert_eq!(refresh(&h, &app, &offline).await.error(), "invalid_grant");
    problem(&call(&h, "DELETE", &path, &writer, None).await, 404);
    let left = items(&call(&h, "GET", &format!("/users/{sam}/grants"), &reader, None).await);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["offline"], false);

    // The session: the browser is signed out, the application told by back-channel logout,
    // and the online grant goes with it.
    let online_at = online.json["access_token"].as_str().expect("access token");
    assert_eq!(h.introspect(&app, online_at).await["active"], true);
    let end = format!("/users/{sam}/sessions/{sid}");
    assert_eq!(call(&h, "DELETE", &end, &writer, None).await.status, 204);
    let body = tokio::time::timeout(Duration::from_secs(10), bc_body)
        .await
        .expect("back-channel logout in time")
        .expect("logout token");
    let token = form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .expect("logout_token")
        .1
        .into_owned();
    assert_eq!(jwt_claims(&token)["sid"], sid.as_str());
    assert_eq!(h.introspect(&app, online_at).await["active"], false);
    let (path, _) = code_request(&app, "openid", "&prompt=none");
    assert_eq!(
        redirect_params(&b.get(&path).await)["error"],
        "login_required"
    );
    assert!(
        items(&call(&h, "GET", &format!("/users/{sam}/sessions"), &reader, None).await).is_empty()
    );
    assert!(
        items(&call(&h, "GET", &format!("/users/{sam}/grants"), &reader, None).await).is_empty()
    );
    problem(&call(&h, "DELETE", &end, &writer, None).await, 404);
    problem(
        &call(&h, "GET", "/users/nobody/sessions", &reader, None).await,
        404,
    );

    let admin = automation(&h, &["administrator"]).await;
    let log = call(&h, "GET", "/audit?action=session.", &admin, None).await;
    assert_eq!(log.json["items"][0]["target"], format!("user:{sam}"));
    assert_eq!(log.json["items"][0]["detail"]["sid"], sid.as_str());
    let log = call(&h, "GET", "/audit?action=grant.revoked", &admin, None).await;
    assert_eq!(log.json["items"][0]["client_id"], app.id.as_str());
}

#[tokio::test]
async fn signing_out_everywhere_and_revoking_a_consent() {
    let h = setup().await;
    let tim = h.user("tim").await;
    // Explicit consent (the default): the consent revoked below is stored.
    let app = h.web_app(|_| {}).await;
    let other = h
        .web_app(|s| s.consent = Some(ConsentMode::AutoAccept))
        .await;
    let (laptop, phone) = (Browser::new(&h), Browser::new(&h));
    let t1 = tokens(&h, &laptop, &app, "tim", "openid offline_access").await;
    let t2 = tokens(&h, &phone, &app, "tim", "openid").await;
    let t3 = tokens(&h, &phone, &other, "tim", "openid offline_access").await;
    let admin = automation(&h, &["administrator"]).await;
    let sessions = format!("/users/{tim}/sessions");
    assert_eq!(
        items(&call(&h, "GET", &sessions, &admin, None).await).len(),
        2
    );

    // Everywhere: both browsers are signed out; offline grants outlive their sessions.
    assert_eq!(
        call(&h, "DELETE", &sessions, &admin, None).await.status,
        204
    );
    assert!(items(&call(&h, "GET", &sessions, &admin, None).await).is_empty());
    for b in [&laptop, &phone] {
        let (path, _) = code_request(&app, "openid", "&prompt=none");
        assert_eq!(
            redirect_params(&b.get(&path).await)["error"],
            "login_required"
        );
    }
    assert_eq!(refresh(&h, &app, &t2).await.error(), "invalid_grant");
    assert_eq!(refresh(&h, &app, &t1).await.status, StatusCode::OK);
    assert_eq!(refresh(&h, &other, &t3).await.status, StatusCode::OK);

    // A consent revoked takes that application's grants with it, and only that application's.
    let consent = format!("/users/{tim}/consents/{}", app.id);
    assert_eq!(call(&h, "DELETE", &consent, &admin, None).await.status, 204);
    let grants = items(&call(&h, "GET", &format!("/users/{tim}/grants"), &admin, None).await);
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0]["client_id"], other.id.as_str());

    // Every consent of one application at once (the consents scope), with the grants they allowed.
    let all_consents = format!("/applications/{}/consents", other.id);
    let reader = automation(&h, &["users:read"]).await;
    problem(&call(&h, "DELETE", &all_consents, &reader, None).await, 403);
    let t4 = tokens(&h, &phone, &app, "tim", "openid offline_access").await;
    assert_eq!(
        call(
            &h,
            "DELETE",
            &format!("/applications/{}/consents", app.id),
            &admin,
            None
        )
        .await
        .status,
        204
    );
    assert!(items(
        &call(
            &h,
            "GET",
            &format!("/applications/{}/consents", app.id),
            &admin,
            None
        )
        .await
    )
    .is_empty());
    assert_eq!(refresh(&h, &app, &t4).await.error(), "invalid_grant");

    // All grants of one application by query, then none is left.
    let all = format!("/users/{tim}/grants?application={}", other.id);
    assert_eq!(call(&h, "DELETE", &all, &admin, None).await.status, 204);
    assert_eq!(refresh(&h, &other, &t3).await.error(), "invalid_grant");
    assert!(
        items(&call(&h, "GET", &format!("/users/{tim}/grants"), &admin, None).await).is_empty()
    );
    problem(
        &call(
            &h,
            "DELETE",
            &format!("/users/{tim}/grants?colour=red"),
            &admin,
            None,
        )
        .await,
        422,
    );
}
