//! The admin REST API: tokens and scopes, applications and their secrets, ETags, pagination,
//! validation problems, users, consents, keys, the audit log and the OpenAPI document.

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{json, Value};
use tessera_core::admin::Caller;
use tessera_core::admin::{ClientPatch, ClientSpec, UserPatch, UserSpec};
use tessera_core::model::{ClientType, GrantType};
use tessera_server::admin::openapi::OPS;

use crate::flow::PASSWORD;
use crate::support::{basic, Harness, Reply, TestClient};

pub const V1: &str = "/admin/api/v1";

/// A harness whose admin API exists, and a token for it with `scopes`.
pub async fn setup() -> Harness {
    let h = Harness::new().await;
    setup_admin_api(&h).await;
    h
}

/// Makes the admin API of `h` (as `tessera serve` does when it starts).
pub async fn setup_admin_api(h: &Harness) {
    h.provider
        .admin(Caller::local())
        .ensure_admin_api()
        .await
        .expect("admin API");
}

pub async fn automation(h: &Harness, scopes: &[&str]) -> String {
    let c = h
        .client_with(ClientSpec {
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            apis: vec![h.provider.admin_api()],
            ..ClientSpec::new("automation", ClientType::M2m)
        })
        .await;
    h.access_token(&c).await
}

/// An application that signs its users in with the password grant and may ask for every scope
/// of the admin API: how a user gets a token of their own for it.
pub async fn self_service(h: &Harness) -> TestClient {
    h.client_with(ClientSpec {
        grant_types: Some(vec![GrantType::Password]),
        response_types: Some(vec![]),
        scopes: tessera_core::admin::AdminScope::ALL
            .iter()
            .map(|s| s.name().to_owned())
            .collect(),
        apis: vec![h.provider.admin_api()],
        ..ClientSpec::new("self service", ClientType::Web)
    })
    .await
}

/// `username`'s own admin API token with `scopes` (none: a token without admin scopes), from
/// [`self_service`]'s application.
pub async fn own_token(h: &Harness, app: &TestClient, username: &str, scopes: &[&str]) -> String {
    let scope = if scopes.is_empty() {
        "openid".to_owned()
    } else {
        scopes.join(" ")
    };
    let r = h
        .post(
            "/token",
            Some(&app.basic()),
            &crate::flow::enc(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", PASSWORD),
                ("scope", &scope),
            ]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["access_token"].as_str().expect("token").to_owned()
}

pub async fn call(
    h: &Harness,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    call_with(h, method, path, token, body, None).await
}

async fn call_with(
    h: &Harness,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("{V1}{path}"))
        .header("authorization", format!("Bearer {token}"));
    if let Some(tag) = if_match {
        b = b.header("if-match", tag);
    }
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    };
    h.send(req.expect("request")).await
}

pub fn problem(r: &Reply, status: u16) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(r.header("content-type"), "application/problem+json");
    assert_eq!(r.json["status"], status);
    assert!(r.json["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn every_documented_operation_needs_an_admin_api_token() {
    let h = setup().await;
    let other_api = h
        .access_token(&h.client_with(Harness::spec("other")).await)
        .await;
    for op in OPS {
        let path = op
            .path
            .replace("{id}", "x")
            .replace("{identifier}", "x")
            .replace("{name}", "x")
            .replace("{kid}", "x")
            .replace("{client_id}", "x")
            .replace("{sid}", "x")
            .replace("{grant_id}", "x")
            .replace("{factor_id}", "x")
            .replace("{user}", "x");
        let method = op.method.to_uppercase();
        let req = Request::builder()
            .method(method.as_str())
            .uri(format!("{V1}{path}"))
            .body(Body::empty())
            .expect("request");
        let r = h.send(req).await;
        problem(&r, 401);
        assert!(
            r.header("www-authenticate").starts_with("Bearer "),
            "{method} {path}"
        );
        // A valid token for another API is not a token for this one.
        let r = call(&h, &method, &path, &other_api, None).await;
        problem(&r, 401);
    }
    let doc = h.get("/admin/api/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.json["openapi"], "3.1.0");
    assert_eq!(
        doc.json["paths"].as_object().expect("paths").len(),
        OPS.iter()
            .map(|o| o.path)
            .collect::<std::collections::HashSet<_>>()
            .len()
    );
    let spec = &doc.json["components"]["schemas"]["ClientSpec"];
    assert!(spec["properties"]["access_token_ttl"].is_object(), "{spec}");
    // Security requirements are alternatives (OpenAPI 3.1 §4.8.10): either scope will do.
    assert_eq!(
        doc.json["paths"]["/applications"]["post"]["security"],
        json!([{"bearer": ["administrator"]}, {"bearer": ["config:write"]}])
    );
}

#[tokio::test]
async fn scopes_decide_what_a_token_may_do() {
    let h = setup().await;
    let read = automation(&h, &["config:read"]).await;
    let write = automation(&h, &["config:write"]).await;
    let users = automation(&h, &["users:read"]).await;
    let new_app = json!({"name": "Reports", "type": "m2m"});

    assert_eq!(
        call(&h, "GET", "/applications", &read, None).await.status,
        200
    );
    let r = call(&h, "POST", "/applications", &read, Some(new_app.clone())).await;
    problem(&r, 403);
    assert!(r.header("www-authenticate").contains("insufficient_scope"));
    problem(&call(&h, "GET", "/applications", &users, None).await, 403);
    problem(&call(&h, "GET", "/audit", &read, None).await, 403);
    problem(
        &call(&h, "POST", "/users", &users, Some(json!({"username": "x"}))).await,
        403,
    );
    assert_eq!(call(&h, "GET", "/users", &users, None).await.status, 200);
    let r = call(&h, "POST", "/applications", &write, Some(new_app)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        call(&h, "GET", "/settings", &write, None).await.json["lifetimes"]["access_token"],
        900
    );

    // What could make its holder an administrator needs administrator.
    let escalate = json!({"name": "Me too", "type": "m2m", "apis": [h.provider.admin_api()], "scopes": ["administrator"]});
    problem(
        &call(&h, "POST", "/applications", &write, Some(escalate)).await,
        403,
    );
    problem(
        &call(
            &h,
            "PUT",
            "/scopes/administrator",
            &write,
            Some(json!({"name": "administrator"})),
        )
        .await,
        403,
    );
    let writer = automation(&h, &["users:write"]).await;
    let r = call(
        &h,
        "POST",
        "/users",
        &writer,
        Some(json!({"username": "mallory", "groups": ["tessera-admins"]})),
    )
    .await;
    problem(&r, 403);

    // users:self: a user's own token reads and edits only that user, and not what decides access.
    let alice = h.user("alice").await;
    let bob = h.user("bob").await;
    let app = self_service(&h).await;
    let own = own_token(&h, &app, "alice", &["users:self"]).await;
    let me = call(&h, "GET", "/users/me", &own, None).await;
    assert_eq!(me.json["id"], alice);
    assert_eq!(me.json.get("password_hash"), None);
    assert_eq!(me.json["has_password"], true);
    problem(
        &call(&h, "GET", &format!("/users/{bob}"), &own, None).await,
        403,
    );
    problem(&call(&h, "GET", "/users", &own, None).await, 403);
    let r = call(
        &h,
        "PATCH",
        &format!("/users/{alice}"),
        &own,
        Some(json!({"claims": {"nickname": "Al"}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["claims"]["nickname"], "Al");
    let r = call(
        &h,
        "PATCH",
        &format!("/users/{alice}"),
        &own,
        Some(json!({"groups": ["tessera-admins"]})),
    )
    .await;
    problem(&r, 403);
    for identity in [
        json!({"claims": {"email": "bob@example.com"}}),
        json!({"attributes": {"role": "admin"}}),
    ] {
        problem(
            &call(
                &h,
                "PATCH",
                &format!("/users/{alice}"),
                &own,
                Some(identity),
            )
            .await,
            403,
        );
    }
    // Sessions and grants: one's own (the password grant made one), never another user's.
    let mine = call(&h, "GET", &format!("/users/{alice}/grants"), &own, None).await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    assert_eq!(mine.json["items"][0]["client_id"], app.id.as_str());
    for (method, path) in [
        ("GET", format!("/users/{bob}/sessions")),
        ("DELETE", format!("/users/{bob}/sessions")),
        ("GET", format!("/users/{bob}/grants")),
        ("DELETE", format!("/users/{bob}/grants")),
    ] {
        problem(&call(&h, method, &path, &own, None).await, 403);
    }

    // config:write cannot touch an application of the admin API: its secret, state or logo
    // could make an administrator.
    let admin_client = app.id.clone();
    for (method, path) in [
        (
            "POST",
            format!("/applications/{admin_client}/credentials/rotate"),
        ),
        ("POST", format!("/applications/{admin_client}/disable")),
        ("DELETE", format!("/applications/{admin_client}/logo")),
        ("DELETE", format!("/applications/{admin_client}")),
    ] {
        problem(&call(&h, method, &path, &write, None).await, 403);
    }
    let logo = Request::builder()
        .method("PUT")
        .uri(format!("{V1}/applications/{admin_client}/logo"))
        .header("authorization", format!("Bearer {write}"))
        .header("content-type", "image/png")
        .body(Body::from(crate::logo::png()))
        .expect("request");
    problem(&h.send(logo).await, 403);
    let administrator = automation(&h, &["administrator"]).await;
    let rotate = format!("/applications/{admin_client}/credentials/rotate");
    let r = call(&h, "POST", &rotate, &administrator, None).await;
    assert_eq!(r.status, 200, "an administrator may: {}", r.text);
}

#[tokio::test]
async fn applications_secrets_etags_and_lifetimes() {
    let h = setup().await;
    let admin = automation(&h, &["administrator"]).await;
    let r = call(&h, "POST", "/applications", &admin,
        Some(json!({"name": "Billing", "type": "m2m", "scopes": ["read:things"], "apis": [crate::support::API]}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["application"]["client_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let secret = r.json["client_secret"]
        .as_str()
        .expect("secret once")
        .to_owned();
    assert_eq!(r.json["application"]["has_secret"], true);
    assert_eq!(r.json["application"].get("secret_ciphertext"), None);
    let app = TestClient {
        id: id.clone(),
        secret: secret.clone(),
    };
    assert_eq!(h.token(&app, "").await["expires_in"], 900);

    // The secret is never shown again.
    let got = call(&h, "GET", &format!("/applications/{id}"), &admin, None).await;
    assert!(!got.text.contains(&secret));
    let tag = got.header("etag").to_owned();
    assert!(tag.starts_with('"'), "{tag}");

    // Lifetimes edited with the current ETag show in issued tokens; a stale ETag is refused.
    let patch = json!({"access_token_ttl": 600});
    let r = call_with(
        &h,
        "PATCH",
        &format!("/applications/{id}"),
        &admin,
        Some(patch.clone()),
        Some(&tag),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_ne!(r.header("etag"), tag);
    assert_eq!(h.token(&app, "").await["expires_in"], 600);
    let r = call_with(
        &h,
        "PATCH",
        &format!("/applications/{id}"),
        &admin,
        Some(json!({"access_token_ttl": 300})),
        Some(&tag),
    )
    .await;
    problem(&r, 412);
    assert_eq!(
        h.token(&app, "").await["expires_in"],
        600,
        "the stale change was not made"
    );

    // Validation problems name the field.
    let r = call(
        &h,
        "PATCH",
        &format!("/applications/{id}"),
        &admin,
        Some(json!({"access_token_ttl": 5})),
    )
    .await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "access_token_ttl");
    let r = call(
        &h,
        "POST",
        "/applications",
        &admin,
        Some(json!({"name": "X", "type": "m2m", "colour": "red"})),
    )
    .await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "colour");
    let r = call(
        &h,
        "POST",
        "/applications",
        &admin,
        Some(json!({"name": "X", "type": "robot"})),
    )
    .await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "type");
    let r = h
        .send(
            Request::post(format!("{V1}/applications"))
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", "text/plain")
                .body(Body::from("{}"))
                .expect("request"),
        )
        .await;
    problem(&r, 415);
    problem(
        &call(&h, "GET", "/applications/nope", &admin, None).await,
        404,
    );

    // Rotation: the old secret fails at once, the new one works.
    let r = call(
        &h,
        "POST",
        &format!("/applications/{id}/credentials/rotate"),
        &admin,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new_secret = r.json["client_secret"]
        .as_str()
        .expect("new secret")
        .to_owned();
    let old = h
        .post(
            "/token",
            Some(&basic(&id, &secret)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(old.status, 401);
    let fresh = TestClient {
        id: id.clone(),
        secret: new_secret,
    };
    h.token(&fresh, "").await;

    // Disabled, its secret no longer gets tokens; deleted, it is gone.
    assert_eq!(
        call(
            &h,
            "POST",
            &format!("/applications/{id}/disable"),
            &admin,
            None
        )
        .await
        .json["enabled"],
        false
    );
    assert_eq!(
        h.post(
            "/token",
            Some(&fresh.basic()),
            "grant_type=client_credentials"
        )
        .await
        .status,
        401
    );
    assert_eq!(
        call(
            &h,
            "POST",
            &format!("/applications/{id}/enable"),
            &admin,
            None
        )
        .await
        .json["enabled"],
        true
    );
    assert_eq!(
        call(&h, "DELETE", &format!("/applications/{id}"), &admin, None)
            .await
            .status,
        204
    );
    problem(
        &call(&h, "GET", &format!("/applications/{id}"), &admin, None).await,
        404,
    );
}

#[tokio::test]
async fn lists_are_paged_by_cursor() {
    let h = setup().await;
    let admin = automation(&h, &["administrator"]).await;
    for i in 0..5 {
        let r = call(
            &h,
            "POST",
            "/scopes",
            &admin,
            Some(json!({"name": format!("page:{i}")})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let mut seen = Vec::new();
    let mut path = "/scopes?limit=2".to_owned();
    loop {
        let r = call(&h, "GET", &path, &admin, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let items = r.json["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|s| s["name"].as_str().expect("name").to_owned()),
        );
        match r.json["next_cursor"].as_str() {
            Some(c) => path = format!("/scopes?limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "every scope once, in order");
    assert!(
        seen.len() >= 5 + 7,
        "the five and the admin API's seven: {seen:?}"
    );
    for bad in [
        "/scopes?limit=0",
        "/scopes?limit=1000",
        "/scopes?cursor=!!",
        "/scopes?colour=red",
    ] {
        problem(&call(&h, "GET", bad, &admin, None).await, 422);
    }
}

#[tokio::test]
async fn users_blocked_consents_keys_and_the_audit_log() {
    let h = setup().await;
    let admin = automation(&h, &["administrator"]).await;
    let r = call(
        &h,
        "POST",
        "/users",
        &admin,
        Some(json!({"username": "carol", "password": PASSWORD, "groups": ["staff"]})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let carol = r.json["id"].as_str().expect("id").to_owned();
    let r = call(
        &h,
        "POST",
        "/users",
        &admin,
        Some(json!({"username": "dave", "password": "short"})),
    )
    .await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "password");

    let app = h
        .client_with(ClientSpec {
            grant_types: Some(vec![GrantType::Password]),
            response_types: Some(vec![]),
            ..ClientSpec::new("kiosk", ClientType::Web)
        })
        .await;
    let sign_in = format!("grant_type=password&username=carol&password={PASSWORD}&scope=openid");
    assert_eq!(
        h.post("/token", Some(&app.basic()), &sign_in).await.status,
        200
    );
    assert_eq!(
        call(&h, "POST", &format!("/users/{carol}/block"), &admin, None)
            .await
            .json["blocked"],
        true
    );
    let refused = h.post("/token", Some(&app.basic()), &sign_in).await;
    assert_eq!(
        (refused.status.as_u16(), refused.error()),
        (400, "invalid_grant")
    );
    // Unblocked, with a new password: the old one fails, the new one signs in.
    assert_eq!(
        call(&h, "POST", &format!("/users/{carol}/unblock"), &admin, None)
            .await
            .json["blocked"],
        false
    );
    let r = call(
        &h,
        "PUT",
        &format!("/users/{carol}/password"),
        &admin,
        Some(json!({"password": "a brand new passphrase"})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        h.post("/token", Some(&app.basic()), &sign_in).await.status,
        400
    );
    let new_sign_in =
        "grant_type=password&username=carol&password=a+brand+new+passphrase&scope=openid";
    assert_eq!(
        h.post("/token", Some(&app.basic()), new_sign_in)
            .await
            .status,
        200
    );

    // Groups and consents.
    assert_eq!(
        call(&h, "GET", "/groups/staff", &admin, None).await.json["members"][0]["username"],
        "carol"
    );
    assert_eq!(
        call(
            &h,
            "PUT",
            &format!("/groups/ops/members/{carol}"),
            &admin,
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        call(&h, "GET", "/groups", &admin, None).await.json["items"]
            .as_array()
            .expect("groups")
            .len(),
        2
    );
    h.provider
        .store
        .put_consent(&tessera_core::model::Consent {
            user_id: carol.clone(),
            client_id: app.id.clone(),
            scopes: vec!["openid".into()],
            updated_at: tessera_core::Timestamp(0),
        })
        .await
        .expect("consent");
    let consents = call(
        &h,
        "GET",
        &format!("/applications/{}/consents", app.id),
        &admin,
        None,
    )
    .await;
    assert_eq!(consents.json["items"][0]["user_id"], carol.as_str());
    assert_eq!(
        call(
            &h,
            "DELETE",
            &format!("/users/{carol}/consents/{}", app.id),
            &admin,
            None
        )
        .await
        .status,
        204
    );
    problem(
        &call(
            &h,
            "DELETE",
            &format!("/users/{carol}/consents/{}", app.id),
            &admin,
            None,
        )
        .await,
        404,
    );
    let left = call(
        &h,
        "GET",
        &format!("/users/{carol}/consents?limit=1"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        left.json,
        json!({"items": [], "next_cursor": null}),
        "{}",
        left.text
    );

    // Keys: a scheduled key, its window moved, then retired.
    let later = h.provider.now().0 + 86_400;
    let r = call(
        &h,
        "POST",
        "/keys",
        &admin,
        Some(json!({"alg": "ES256", "not_before": later, "not_after": later + 30 * 86_400})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["state"], "upcoming");
    let kid = r.json["kid"].as_str().expect("kid").to_owned();
    let r = call(
        &h,
        "PATCH",
        &format!("/keys/{kid}"),
        &admin,
        Some(json!({"not_after": later + 60 * 86_400})),
    )
    .await;
    assert_eq!(r.json["not_after"], later + 60 * 86_400, "{}", r.text);
    let r = call(
        &h,
        "PATCH",
        &format!("/keys/{kid}"),
        &admin,
        Some(json!({"not_after": later - 10})),
    )
    .await;
    problem(&r, 422);
    assert_eq!(
        call(&h, "POST", &format!("/keys/{kid}/retire"), &admin, None)
            .await
            .json["state"],
        "retired"
    );

    // The audit log: administrative changes and security events, filtered and newest first.
    let all = call(&h, "GET", "/audit?limit=200", &admin, None).await;
    let actions: Vec<&str> = all.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    for expected in [
        "user.created",
        "sign_in.succeeded",
        "user.blocked",
        "sign_in.failed",
        "consent.revoked",
        "key.generated",
        "key.scheduled",
        "key.retired",
        "client.created",
        "api.created",
    ] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    let users_only = call(&h, "GET", "/audit?action=user.", &admin, None).await;
    assert!(users_only.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|e| e["action"].as_str().is_some_and(|a| a.starts_with("user."))));
    let failed = call(
        &h,
        "GET",
        &format!("/audit?action=sign_in.failed&application={}", app.id),
        &admin,
        None,
    )
    .await;
    // Newest first: the old password after the reset, then the blocked sign-in; the address acts.
    let reasons: Vec<&Value> = failed.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| &e["detail"]["reason"])
        .collect();
    assert_eq!(
        reasons,
        [&json!("invalid_credentials"), &json!("blocked")],
        "{}",
        failed.text
    );
    assert_eq!(
        failed.json["items"][0]["actor"], "address:unknown",
        "{}",
        failed.text
    );
    let page = call(&h, "GET", "/audit?limit=1", &admin, None).await;
    let next = page.json["next_cursor"].as_str().expect("more");
    let second = call(
        &h,
        "GET",
        &format!("/audit?limit=1&cursor={next}"),
        &admin,
        None,
    )
    .await;
    assert!(second.json["items"][0]["id"].as_i64() < page.json["items"][0]["id"].as_i64());
    let by_cli = call(&h, "GET", "/audit?actor=cli", &admin, None).await;
    assert!(!by_cli.json["items"].as_array().expect("items").is_empty());

    // Leaving a group, then deleting the user.
    let path = format!("/groups/ops/members/{carol}");
    assert_eq!(call(&h, "DELETE", &path, &admin, None).await.status, 204);
    problem(&call(&h, "GET", "/groups/ops", &admin, None).await, 404);
    assert_eq!(
        call(&h, "DELETE", &format!("/users/{carol}"), &admin, None)
            .await
            .status,
        204
    );
    problem(
        &call(&h, "GET", &format!("/users/{carol}"), &admin, None).await,
        404,
    );
}

/// Two administrators at once, neither naming a copy with `If-Match`: a change that lost the
/// race is prepared again on top of the other's, so an edit racing a secret rotation never writes
/// the old secret back, and two profile edits and a password reset all stand.
#[tokio::test]
async fn concurrent_changes_without_if_match_both_land() {
    let h = setup().await;
    let c = h.client_with(Harness::spec("raced")).await;
    h.provider
        .admin(Caller::local())
        .create_user(&UserSpec {
            username: "racer".into(),
            password: Some(PASSWORD.into()),
            ..UserSpec::default()
        })
        .await
        .expect("user");
    for round in 0..10 {
        let (a, b) = (
            h.provider.admin(Caller::local()),
            h.provider.admin(Caller::local()),
        );
        let patch = ClientPatch {
            description: Some(format!("round {round}")),
            ..ClientPatch::default()
        };
        let (edited, rotated) = tokio::join!(
            a.update_client(&c.id, &patch),
            b.rotate_client_secret(&c.id)
        );
        edited.expect("edit");
        let (_, secret) = rotated.expect("rotation");
        let stored = a.application(&c.id).await.expect("client");
        assert_eq!(stored.description, format!("round {round}"));
        let r = h
            .post(
                "/token",
                Some(&basic(&c.id, &secret)),
                "grant_type=client_credentials",
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "round {round}: the rotated secret stands"
        );

        let (name, nickname) = (format!("Racer {round}"), format!("r{round}"));
        let password = format!("{PASSWORD} {round}");
        let claim = |k: &str, v: &str| UserPatch {
            claims: json!({ k: v }).as_object().cloned().unwrap_or_default(),
            ..UserPatch::default()
        };
        let third = h.provider.admin(Caller::local());
        let change = tessera_core::admin::PasswordChange {
            password: password.clone(),
            current_password: None,
        };
        let (by_name, by_nickname) = (claim("name", &name), claim("nickname", &nickname));
        let (named, nicknamed, reset) = tokio::join!(
            a.update_user("racer", &by_name),
            b.update_user("racer", &by_nickname),
            third.set_user_password("racer", &change)
        );
        named.expect("name");
        nicknamed.expect("nickname");
        reset.expect("password");
        let u = a.user("racer").await.expect("user");
        assert_eq!(
            u.claims["name"],
            name.as_str(),
            "round {round}: both edits stand"
        );
        assert_eq!(u.claims["nickname"], nickname.as_str(), "round {round}");
        let hash = u.password_hash.expect("hash");
        assert!(
            tessera_core::password::verify(&hash, &password),
            "round {round}: the new password stands"
        );
    }
}

#[tokio::test]
async fn default_lifetimes_change_at_runtime_for_new_applications() {
    let h = setup().await;
    let read = automation(&h, &["config:read"]).await;
    let write = automation(&h, &["config:write"]).await;
    let new_app = |name: &str| json!({"name": name, "type": "m2m", "scopes": ["read:things"], "apis": [crate::support::API]});
    let created = |r: Reply| {
        assert_eq!(r.status, 201, "{}", r.text);
        TestClient {
            id: r.json["application"]["client_id"]
                .as_str()
                .expect("id")
                .into(),
            secret: r.json["client_secret"].as_str().expect("secret").into(),
        }
    };
    let before = created(call(&h, "POST", "/applications", &write, Some(new_app("Before"))).await);

    let got = call(&h, "GET", "/settings", &read, None).await;
    assert_eq!(got.json["lifetimes"]["access_token"], 900);
    assert_eq!(got.json["lifetimes"]["authorization_code"], 60);
    assert_eq!(got.json["lifetime_overrides"], json!({}));
    let tag = got.header("etag").to_owned();
    let change = json!({"lifetimes": {"access_token": 600, "refresh_token": 172_800}});
    problem(
        &call(&h, "PATCH", "/settings", &read, Some(change.clone())).await,
        403,
    );
    let r = call_with(
        &h,
        "PATCH",
        "/settings",
        &write,
        Some(change.clone()),
        Some(&tag),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["lifetimes"]["access_token"], 600);
    assert_eq!(r.json["lifetimes"]["refresh_token"], 172_800);
    assert_eq!(r.json["lifetimes"]["id_token"], 3_600, "untouched");
    assert_eq!(
        r.json["lifetime_overrides"],
        json!({"access_token": 600, "refresh_token": 172_800})
    );
    assert_ne!(r.header("etag"), tag);
    // A stale copy, an out-of-range value and a setting of the configuration file are refused.
    let stale = call_with(&h, "PATCH", "/settings", &write, Some(change), Some(&tag)).await;
    problem(&stale, 412);
    let r = call(
        &h,
        "PATCH",
        "/settings",
        &write,
        Some(json!({"lifetimes": {"access_token": 5}})),
    )
    .await;
    problem(&r, 422);
    assert_eq!(
        r.json["invalid-params"][0]["name"],
        "lifetimes.access_token"
    );
    let r = call(
        &h,
        "PATCH",
        "/settings",
        &write,
        Some(json!({"audit_retention": 1})),
    )
    .await;
    problem(&r, 422);

    // New applications get the new default; those set up before keep theirs.
    let after = created(call(&h, "POST", "/applications", &write, Some(new_app("After"))).await);
    assert_eq!(h.token(&after, "").await["expires_in"], 600);
    assert_eq!(h.token(&before, "").await["expires_in"], 900);
    let shown = call(
        &h,
        "GET",
        &format!("/applications/{}", after.id),
        &read,
        None,
    )
    .await;
    assert_eq!(shown.json["refresh_token_ttl"], 172_800);

    // null: back to the configuration file's value.
    let r = call(
        &h,
        "PATCH",
        "/settings",
        &write,
        Some(json!({"lifetimes": {"access_token": null}})),
    )
    .await;
    assert_eq!(r.json["lifetimes"]["access_token"], 900, "{}", r.text);
    assert_eq!(
        r.json["lifetime_overrides"],
        json!({"refresh_token": 172_800})
    );
    let last = created(call(&h, "POST", "/applications", &write, Some(new_app("Last"))).await);
    assert_eq!(h.token(&last, "").await["expires_in"], 900);

    let admin = automation(&h, &["administrator"]).await;
    let log = call(&h, "GET", "/audit?action=settings.", &admin, None).await;
    let actions: Vec<&str> = log.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["settings.updated", "settings.created"]);
}

#[tokio::test]
async fn tokens_issued_and_refused_are_audited_when_asked() {
    use tessera_core::audit::AuditQuery;
    let events = |h: &Harness| {
        let p = h.provider.clone();
        async move {
            p.admin(Caller::local())
                .audit_events(&AuditQuery {
                    action: Some("token.".into()),
                    limit: 10,
                    ..AuditQuery::default()
                })
                .await
                .expect("events")
        }
    };
    // Off by default: the client-credentials hot path writes nothing.
    let quiet = Harness::new().await;
    let c = quiet.client_with(Harness::spec("quiet")).await;
    quiet.access_token(&c).await;
    assert!(events(&quiet).await.is_empty());

    let h = Harness::with_settings(crate::support::ISSUER, |s| s.audit_tokens = true).await;
    let c = h.client_with(Harness::spec("audited")).await;
    h.access_token(&c).await;
    let refused = h
        .post(
            "/token",
            Some(&c.basic()),
            "grant_type=client_credentials&scope=nope",
        )
        .await;
    assert_eq!(refused.error(), "invalid_scope");
    let got = events(&h).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].action, "token.refused");
    assert_eq!(got[0].detail["error"], "invalid_scope");
    assert_eq!(got[0].detail["grant_type"], "client_credentials");
    assert_eq!(got[1].action, "token.issued");
    assert_eq!(got[1].actor, format!("client:{}", c.id));
    assert_eq!(got[1].client_id.as_deref(), Some(c.id.as_str()));
}
