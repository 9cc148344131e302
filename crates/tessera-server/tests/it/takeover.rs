//! The outside review's takeovers, replayed: a lesser admin scope must never reach a greater one.
//! Group names padded with whitespace or invisible characters, acting on an administrator with
//! `users:write`, letting an application assert users with `config:write`, and `users:self`
//! changing a password without the current one.

use http::StatusCode;
use serde_json::{json, Value};
use tessera_core::admin::ClientSpec;
use tessera_core::model::{ClientType, GrantType, JwtBearerSubject, TrustedIssuer};

use crate::admin_api::{automation, call, own_token, problem, self_service, setup};
use crate::assertions::{key_pair, sign_with};
use crate::flow::{enc, PASSWORD};
use crate::support::{now, Harness, Reply, ISSUER};

const ADMINS: &str = "tessera-admins";

async fn groups_of(h: &Harness, id: &str) -> Vec<String> {
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .user(id)
        .await
        .expect("user")
        .groups
        .clone()
}

/// A user made an administrator the way `tessera admin create` does.
async fn administrator(h: &Harness, username: &str) -> String {
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .make_administrator(username, Some(PASSWORD), false)
        .await
        .expect("administrator")
        .id
}

#[tokio::test]
async fn a_padded_group_name_never_makes_an_administrator() {
    let h = setup().await;
    let writer = automation(&h, &["users:write"]).await;
    let mallory = h.user("mallory").await;
    // Space, tab, no-break space, zero-width space, and a leading space: each is refused as a
    // name that is not in its normal form, naming the field; none lands in tessera-admins.
    for padded in [
        "tessera-admins%20",
        "tessera-admins%09",
        "tessera-admins%C2%A0",
        "tessera-admins%E2%80%8B",
        "%20tessera-admins",
    ] {
        let r = call(
            &h,
            "PUT",
            &format!("/groups/{padded}/members/{mallory}"),
            &writer,
            None,
        )
        .await;
        problem(&r, 422);
        assert_eq!(r.json["invalid-params"][0]["name"], "group", "{}", r.text);
        assert!(!groups_of(&h, &mallory).await.iter().any(|g| g == ADMINS));
    }
    for padded in [
        "tessera-admins ",
        "tessera-admins\t",
        "tessera-admins\u{a0}",
        "tessera-admins\u{200b}",
        "\u{2003}tessera-admins",
    ] {
        let r = call(
            &h,
            "POST",
            "/users",
            &writer,
            Some(json!({"username": format!("eve{}", padded.len()), "password": PASSWORD, "groups": [padded]})),
        )
        .await;
        problem(&r, 422);
        assert_eq!(r.json["invalid-params"][0]["name"], "groups", "{}", r.text);
        let r = call(
            &h,
            "PATCH",
            &format!("/users/{mallory}"),
            &writer,
            Some(json!({"groups": ["staff", padded]})),
        )
        .await;
        problem(&r, 422);
        assert!(!groups_of(&h, &mallory).await.iter().any(|g| g == ADMINS));
    }
    // An application's allowed groups are compared with users' groups as stored: the same rule.
    let config = automation(&h, &["config:write"]).await;
    let r = call(
        &h,
        "POST",
        "/applications",
        &config,
        Some(
            json!({"name": "Staff app", "type": "web", "redirect_uris": [crate::flow::RP],
            "allowed_groups": ["staff\u{200b}"]}),
        ),
    )
    .await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "allowed_groups");
    // The group itself, by its exact name, still needs administrator.
    let r = call(
        &h,
        "PUT",
        &format!("/groups/{ADMINS}/members/{mallory}"),
        &writer,
        None,
    )
    .await;
    problem(&r, 403);
    // A name in its normal form is taken as given.
    let r = call(
        &h,
        "PUT",
        &format!("/groups/sales%20team/members/{mallory}"),
        &writer,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert!(groups_of(&h, &mallory)
        .await
        .contains(&"sales team".to_owned()));
}

#[tokio::test]
async fn users_write_cannot_act_on_an_administrator() {
    let h = setup().await;
    let writer = automation(&h, &["users:write"]).await;
    let root = administrator(&h, "root").await;
    let plain = h.user("plain").await;
    let attempts: Vec<(&str, String, Option<Value>)> = vec![
        (
            "PUT",
            format!("/users/{root}/password"),
            Some(json!({"password": "mallory owns this now"})),
        ),
        ("POST", format!("/users/{root}/block"), None),
        (
            "PATCH",
            format!("/users/{root}"),
            Some(json!({"username": "not-root"})),
        ),
        (
            "PATCH",
            format!("/users/{root}"),
            Some(json!({"claims": {"email": "mallory@example.com"}})),
        ),
        ("DELETE", format!("/users/{root}/sessions"), None),
        ("DELETE", format!("/users/{root}/grants"), None),
        ("DELETE", format!("/users/{root}"), None),
        ("DELETE", format!("/groups/{ADMINS}/members/{root}"), None),
    ];
    for (method, path, body) in attempts {
        let r = call(&h, method, &path, &writer, body).await;
        problem(&r, 403);
        assert!(
            r.json["detail"]
                .as_str()
                .is_some_and(|d| d.contains("administrator")),
            "{method} {path}: {}",
            r.text
        );
    }
    // Nothing changed: the administrator still signs in with their own password.
    let u = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .user(&root)
        .await
        .expect("root");
    assert_eq!(u.username, "root");
    assert!(!u.blocked);
    assert!(tessera_core::password::verify(
        u.password_hash.as_deref().expect("hash"),
        PASSWORD
    ));
    // The same calls on an ordinary user are users:write's to make.
    let r = call(
        &h,
        "PUT",
        &format!("/users/{plain}/password"),
        &writer,
        Some(json!({"password": "a brand new passphrase"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = call(&h, "POST", &format!("/users/{plain}/block"), &writer, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // And administrator may act on an administrator.
    let admin = automation(&h, &["administrator"]).await;
    let r = call(&h, "POST", &format!("/users/{root}/block"), &admin, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// An application that trusts `issuer` (keys inline) for JWT bearer assertions about users.
fn asserting_app(jwk: &Value, issuer: &str) -> Value {
    json!({
        "name": "Asserter", "type": "m2m",
        "grant_types": ["jwt_bearer"],
        "trusted_issuers": [{"issuer": issuer, "jwks": {"keys": [jwk]}}],
        "jwt_bearer_subject": "user",
    })
}

#[tokio::test]
async fn letting_an_application_assert_users_is_a_power_over_users() {
    let h = setup().await;
    let config = automation(&h, &["config:write"]).await;
    let both = automation(&h, &["config:write", "users:write"]).await;
    let admin = automation(&h, &["administrator"]).await;
    let k = key_pair("partner-1");
    let issuer = "https://partner.example.com";

    // config:write alone may not make an application that asserts users, nor one that
    // impersonates them through token exchange, nor turn an existing one into either.
    problem(
        &call(
            &h,
            "POST",
            "/applications",
            &config,
            Some(asserting_app(&k.jwk, issuer)),
        )
        .await,
        403,
    );
    let impersonator = json!({"name": "Impersonator", "type": "m2m",
        "grant_types": ["token_exchange"],
        "impersonation_allowed": true});
    problem(
        &call(
            &h,
            "POST",
            "/applications",
            &config,
            Some(impersonator.clone()),
        )
        .await,
        403,
    );
    let plain = call(
        &h,
        "POST",
        "/applications",
        &config,
        Some(json!({"name": "Plain", "type": "m2m"})),
    )
    .await;
    assert_eq!(plain.status, 201, "{}", plain.text);
    let plain_id = plain.json["application"]["client_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let turn = json!({
        "grant_types": ["client_credentials", "jwt_bearer"],
        "trusted_issuers": [{"issuer": issuer, "jwks": {"keys": [k.jwk]}}],
    });
    problem(
        &call(
            &h,
            "PATCH",
            &format!("/applications/{plain_id}"),
            &config,
            Some(turn),
        )
        .await,
        403,
    );
    // With users:write too, or administrator, it may; the change is audited.
    let r = call(
        &h,
        "POST",
        "/applications",
        &both,
        Some(asserting_app(&k.jwk, issuer)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = call(&h, "POST", "/applications", &admin, Some(impersonator)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let audit = call(&h, "GET", "/audit?action=client.created", &admin, None).await;
    assert!(
        audit.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["detail"]["asserts_users"] == true),
        "{}",
        audit.text
    );
}

#[tokio::test]
async fn asserted_users_never_reach_the_admin_api() {
    let h = setup().await;
    let root = administrator(&h, "root").await;
    let k = key_pair("partner-2");
    let issuer = "https://partner.example.com";
    // Even set up by the CLI, with the admin API among its APIs: an asserted user's token is not
    // an admin API token.
    let app = h
        .client_with(ClientSpec {
            grant_types: Some(vec![GrantType::JwtBearer]),
            scopes: vec!["users:self".into(), "read:things".into()],
            apis: vec![h.provider.admin_api(), crate::support::API.into()],
            trusted_issuers: vec![TrustedIssuer {
                issuer: issuer.into(),
                jwks: Some(json!({"keys": [k.jwk]})),
                jwks_uri: None,
            }],
            jwt_bearer_subject: Some(JwtBearerSubject::User),
            ..ClientSpec::new("asserter", ClientType::M2m)
        })
        .await;
    let assertion = |jti: &str| {
        sign_with(
            &k,
            &json!({"iss": issuer, "sub": root, "aud": format!("{ISSUER}/token"),
                "exp": now() + 60, "iat": now(), "jti": jti}),
        )
    };
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let r = h
        .post(
            "/token",
            Some(&app.basic()),
            &enc(&[
                ("grant_type", grant),
                ("assertion", &assertion("a1")),
                ("resource", &h.provider.admin_api()),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.error(), "invalid_target");
    let r = h
        .post(
            "/token",
            Some(&app.basic()),
            &enc(&[("grant_type", grant), ("assertion", &assertion("a2"))]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.json["access_token"].as_str().expect("token");
    let me = call(&h, "GET", "/users/me", token, None).await;
    problem(&me, 401);
}

#[tokio::test]
async fn users_self_changes_its_password_only_with_the_current_one() {
    let h = setup().await;
    let alice = h.user("alice").await;
    let app = self_service(&h).await;
    let own = own_token(&h, &app, "alice", &["users:self"]).await;
    let path = format!("/users/{alice}/password");
    let r = call(
        &h,
        "PUT",
        &path,
        &own,
        Some(json!({"password": "stolen session, new password"})),
    )
    .await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "current_password");
    let r = call(
        &h,
        "PUT",
        &path,
        &own,
        Some(json!({"password": "stolen session, new password", "current_password": "a wrong guess"})),
    )
    .await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "current_password");
    let r = call(
        &h,
        "PUT",
        &path,
        &own,
        Some(json!({"password": "my own new passphrase", "current_password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let u = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .user(&alice)
        .await
        .expect("alice");
    assert!(tessera_core::password::verify(
        u.password_hash.as_deref().expect("hash"),
        "my own new passphrase"
    ));
}

/// A session or grant someone opened on an account outlives neither a password reset nor the
/// account's joining (or leaving) the administrators: an account made by `users:write`, signed
/// in to by its maker, then reset and promoted by an administrator, leaves its maker nothing.
#[tokio::test]
async fn a_reset_or_a_promotion_signs_the_account_out_everywhere() {
    let h = setup().await;
    let admin = automation(&h, &["administrator"]).await;
    let (frank, app) = frank_and_his_app(&h).await;
    let rt = frank_signs_in(&h, &app).await;
    assert_eq!(session_count(&h, &admin, &frank).await, 1);
    let r = call(
        &h,
        "PUT",
        &format!("/users/{frank}/password"),
        &admin,
        Some(json!({"password": "reset by an administrator"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        session_count(&h, &admin, &frank).await,
        0,
        "the reset ended the session"
    );
    assert_eq!(
        refresh_with(&h, &app, &rt).await.error(),
        "invalid_grant",
        "and the grant"
    );

    // Signed in again (the maker knows the password too); then promoted: out again.
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .set_user_password(
            &frank,
            &tessera_core::admin::PasswordChange {
                password: PASSWORD.into(),
                current_password: None,
            },
        )
        .await
        .expect("password");
    let rt = frank_signs_in(&h, &app).await;
    let r = call(
        &h,
        "PUT",
        &format!("/groups/{ADMINS}/members/{frank}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        session_count(&h, &admin, &frank).await,
        0,
        "the promotion ended the session"
    );
    assert_eq!(refresh_with(&h, &app, &rt).await.error(), "invalid_grant");
}

/// The sign-out is part of the change itself: the user's sign-out epoch moves on in the same
/// write, and every session and grant made under an earlier one stops, however many there are
/// and whether or not their records were revoked yet (a promotion that an attacker's thousands
/// of sessions drew out past the request timeout used to leave some of them in force).
#[tokio::test]
async fn the_sign_out_holds_for_every_session_even_untidied_ones() {
    let h = setup().await;
    let admin = automation(&h, &["administrator"]).await;
    let (frank, app) = frank_and_his_app(&h).await;

    // Only the epoch moves on (as if the tidying after the change never ran).
    let (b, rt) = frank_signs_in_with(&h, &app).await;
    let mut u = h.provider.store.get_user(&frank).await.unwrap().unwrap();
    u.sign_out_epoch += 1;
    h.provider.store.update_user(&u).await.expect("update");
    assert_eq!(refresh_with(&h, &app, &rt).await.error(), "invalid_grant");
    assert_eq!(silently(&b, &app).await, "login_required");
    assert_eq!(session_count(&h, &admin, &frank).await, 0);

    // Many sessions, then a promotion: every one of them ends.
    let mut kept = Vec::new();
    for _ in 0..25 {
        kept.push(frank_signs_in_with(&h, &app).await);
    }
    assert_eq!(session_count(&h, &admin, &frank).await, 25);
    let r = call(
        &h,
        "PUT",
        &format!("/groups/{ADMINS}/members/{frank}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(session_count(&h, &admin, &frank).await, 0);
    let (b, rt) = kept.pop().expect("a session");
    assert_eq!(refresh_with(&h, &app, &rt).await.error(), "invalid_grant");
    assert_eq!(silently(&b, &app).await, "login_required");
}

/// The error of a `prompt=none` request in browser `b`: `login_required` once signed out.
async fn silently(b: &crate::flow::Browser<'_>, app: &crate::support::TestClient) -> String {
    let (path, _) = crate::flow::code_request(app, "openid", "&prompt=none");
    crate::flow::redirect_params(&b.get(&path).await)["error"].clone()
}

/// frank, and a first-party web application he signs in to without a consent page.
async fn frank_and_his_app(h: &Harness) -> (String, crate::support::TestClient) {
    let frank = h.user("frank").await;
    let app = h
        .web_app(|s| s.consent = Some(tessera_core::model::ConsentMode::AutoAccept))
        .await;
    (frank, app)
}

/// frank signs in to `app` in a browser of his own; his refresh token.
async fn frank_signs_in(h: &Harness, app: &crate::support::TestClient) -> String {
    frank_signs_in_with(h, app).await.1
}

/// frank signs in to `app` in a browser of his own: the browser and his refresh token.
async fn frank_signs_in_with<'h>(
    h: &'h Harness,
    app: &crate::support::TestClient,
) -> (crate::flow::Browser<'h>, String) {
    let b = crate::flow::Browser::new(h);
    let (path, verifier) = crate::flow::code_request(app, "openid offline_access", "");
    let p = crate::flow::sign_in(&b, &path, "frank").await;
    let t = h.exchange(app, &p["code"], Some(&verifier)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let rt = t.json["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    (b, rt)
}

async fn refresh_with(
    h: &Harness,
    app: &crate::support::TestClient,
    rt: &str,
) -> crate::support::Reply {
    h.post(
        "/token",
        Some(&app.basic()),
        &enc(&[("grant_type", "refresh_token"), ("refresh_token", rt)]),
    )
    .await
}

async fn session_count(h: &Harness, admin: &str, id: &str) -> usize {
    let r = call(h, "GET", &format!("/users/{id}/sessions"), admin, None).await;
    r.json["items"].as_array().expect("items").len()
}

/// POST /applications: a web application named `name` taking its subject from `attr`.
async fn web_app_with_subject(h: &Harness, token: &str, name: &str, attr: &str) -> Reply {
    let body = json!({"name": name, "type": "web", "redirect_uris": [crate::flow::RP],
        "subject_attribute": attr});
    call(h, "POST", "/applications", token, Some(body)).await
}

/// PATCH /users/{id} with new claims.
async fn set_claims(h: &Harness, token: &str, id: &str, claims: Value) -> Reply {
    call(
        h,
        "PATCH",
        &format!("/users/{id}"),
        token,
        Some(json!({ "claims": claims })),
    )
    .await
}

/// An application that takes its subject from an attribute other than the id: no two users may
/// hold one value of it, and no custom attribute may stand in for a standard claim.
#[tokio::test]
async fn a_subject_identifier_stays_one_users() {
    let h = setup().await;
    let writer = automation(&h, &["users:write"]).await;
    let config = automation(&h, &["config:write"]).await;
    // The test fixture gives each user the email <username>@example.com.
    h.user("alice").await;
    let r = web_app_with_subject(&h, &config, "CRM", "email").await;
    assert_eq!(r.status, 201, "{}", r.text);
    for body in [
        json!({"username": "gina", "password": PASSWORD, "attributes": {"email": "alice@example.com"}}),
        json!({"username": "gina", "password": PASSWORD, "attributes": {"username": "alice"}}),
    ] {
        let r = call(&h, "POST", "/users", &writer, Some(body)).await;
        problem(&r, 422);
        assert_eq!(r.json["invalid-params"][0]["name"], "attributes");
    }
    let r = call(
        &h,
        "POST",
        "/users",
        &writer,
        Some(json!({"username": "gina", "password": PASSWORD, "claims": {"email": "alice@example.com"}})),
    )
    .await;
    problem(&r, 409);
    assert!(
        r.json["detail"].as_str().unwrap().contains("subject"),
        "{}",
        r.text
    );
    let gina = call(
        &h,
        "POST",
        "/users",
        &writer,
        Some(json!({"username": "gina", "password": PASSWORD, "claims": {"email": "gina@example.com"}})),
    )
    .await;
    assert_eq!(gina.status, 201, "{}", gina.text);
    let gina = gina.json["id"].as_str().expect("id").to_owned();
    let r = set_claims(&h, &writer, &gina, json!({"email": "alice@example.com"})).await;
    problem(&r, 409);
    // An application cannot take as its subject what users share.
    let bob = h.user("bob").await;
    let r = set_claims(&h, &writer, &bob, json!({"nickname": "same"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = set_claims(&h, &writer, &gina, json!({"nickname": "same"})).await;
    assert_eq!(r.status, 200, "nickname is no subject yet: {}", r.text);
    let r = web_app_with_subject(&h, &config, "Forum", "nickname").await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "subject_attribute");
}

/// Revoking every user's consent for an application is acting on each of them: an
/// administrator's among them needs administrator.
#[tokio::test]
async fn revoking_an_applications_consents_judges_each_user() {
    let h = setup().await;
    let consents = automation(&h, &["consents"]).await;
    let root = administrator(&h, "root").await;
    let app = h.web_app(|_| {}).await;
    let b = crate::flow::Browser::new(&h);
    let (path, _) = crate::flow::code_request(&app, "openid", "");
    crate::flow::sign_in(&b, &path, "root").await;
    assert!(h
        .provider
        .store
        .get_consent(&root, &app.id)
        .await
        .expect("store")
        .is_some());
    let r = call(
        &h,
        "DELETE",
        &format!("/applications/{}/consents", app.id),
        &consents,
        None,
    )
    .await;
    problem(&r, 403);
    assert!(h
        .provider
        .store
        .get_consent(&root, &app.id)
        .await
        .expect("store")
        .is_some());
    let admin = automation(&h, &["administrator"]).await;
    let r = call(
        &h,
        "DELETE",
        &format!("/applications/{}/consents", app.id),
        &admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}

/// A subject value is one user's across every namespace in use: an attribute an application
/// takes its subject from may not hold another user's id (the default subject), a username
/// another user's id when an application uses usernames, nor the `issuer|sub` form of a
/// partner's subject. A new username may not look like another user's.
#[tokio::test]
async fn no_user_passes_for_another_in_any_subject_namespace() {
    let h = setup().await;
    let writer = automation(&h, &["users:write"]).await;
    let config = automation(&h, &["config:write"]).await;
    let root = administrator(&h, "root").await;
    let r = web_app_with_subject(&h, &config, "HR", "emp_id").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let create = |username: &str, attributes: Value| {
        Some(json!({"username": username, "password": PASSWORD, "attributes": attributes}))
    };
    // root's id as mallory's emp_id: mallory's subject at HR would be root's everywhere else.
    let r = call(
        &h,
        "POST",
        "/users",
        &writer,
        create("mallory", json!({"emp_id": root})),
    )
    .await;
    problem(&r, 409);
    assert!(
        r.json["detail"].as_str().unwrap().contains("subject"),
        "{}",
        r.text
    );
    // A partner's subject form.
    let r = call(
        &h,
        "POST",
        "/users",
        &writer,
        create(
            "mallory",
            json!({"emp_id": "https://idp.example.com|partner-user-7"}),
        ),
    )
    .await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "attributes");
    // Renamed to root's id while an application uses usernames as subjects.
    let r = web_app_with_subject(&h, &config, "Wiki", "username").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let alice = h.user("alice").await;
    let r = call(
        &h,
        "PATCH",
        &format!("/users/{alice}"),
        &writer,
        Some(json!({"username": root})),
    )
    .await;
    problem(&r, 409);
    // An application may not take a subject attribute some user holds another user's id in.
    let r = call(
        &h,
        "PATCH",
        &format!("/users/{alice}"),
        &writer,
        Some(json!({"attributes": {"badge": root}})),
    )
    .await;
    assert_eq!(r.status, 200, "no application uses badge yet: {}", r.text);
    let r = web_app_with_subject(&h, &config, "Door", "badge").await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "subject_attribute");
    // Look-alikes: full-width letters are refused as not in normal form; Cyrillic о's as
    // looking like root; a group with a look-alike hyphen as reserved.
    let r = call(&h, "POST", "/users", &writer, create("ｒｏｏｔ", json!({}))).await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "username");
    let r = call(
        &h,
        "POST",
        "/users",
        &writer,
        create("r\u{43e}\u{43e}t", json!({})),
    )
    .await;
    problem(&r, 409);
    assert!(
        r.json["detail"].as_str().unwrap().contains("looks like"),
        "{}",
        r.text
    );
    let r = call(
        &h,
        "PUT",
        &format!("/groups/tessera\u{2010}admins/members/{alice}"),
        &writer,
        None,
    )
    .await;
    problem(&r, 422);
    // Attributes named like the protocol's claims.
    for name in ["acr", "amr", "sid", "iss", "aud", "client_id", "scope"] {
        let r = call(
            &h,
            "POST",
            "/users",
            &writer,
            create("gina", json!({ name: "x" })),
        )
        .await;
        problem(&r, 422);
        assert_eq!(r.json["invalid-params"][0]["name"], "attributes", "{name}");
    }
}

/// The OpenID Connect scopes and the standard claims are Tessera's: `config:write` can neither
/// define a scope named like one nor map a claim named like one from another attribute (which
/// would make a user-editable nickname every application's `email`).
#[tokio::test]
async fn config_write_cannot_redefine_identity_claims() {
    let h = setup().await;
    let config = automation(&h, &["config:write"]).await;
    for name in tessera_core::model::OPENID_SCOPES {
        let r = call(
            &h,
            "POST",
            "/scopes",
            &config,
            Some(json!({ "name": name })),
        )
        .await;
        problem(&r, 422);
        assert_eq!(r.json["invalid-params"][0]["name"], "name", "{name}");
    }
    for claim in [
        "email",
        "email_verified",
        "name",
        "acr",
        "sub",
        "cnf",
        "act",
    ] {
        let r = call(
            &h,
            "POST",
            "/scopes",
            &config,
            Some(json!({"name": "hr", "claims": { claim: "nickname" }})),
        )
        .await;
        problem(&r, 422);
    }
    let r = call(
        &h,
        "POST",
        "/scopes",
        &config,
        Some(json!({"name": "hr", "claims": {"department": "dept"}})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Applications' own subjects are their client_ids: no client_id may be a user's subject, nor
/// a user's subject value an application's client_id.
#[tokio::test]
async fn no_application_passes_for_a_user() {
    let h = setup().await;
    let writer = automation(&h, &["users:write"]).await;
    let config = automation(&h, &["config:write"]).await;
    let root = administrator(&h, "root").await;
    let m2m = |client_id: &str| {
        json!({"name": "Robot", "type": "m2m", "client_id": client_id,
            "apis": [crate::support::API], "scopes": ["read:things"]})
    };
    for taken in [root.as_str(), "https://partner.example|alice"] {
        let r = call(&h, "POST", "/applications", &config, Some(m2m(taken))).await;
        problem(&r, 422);
        assert_eq!(r.json["invalid-params"][0]["name"], "client_id", "{taken}");
    }
    let r = call(&h, "POST", "/applications", &config, Some(m2m("robot-7"))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = web_app_with_subject(&h, &config, "HR", "emp_id").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = call(
        &h,
        "POST",
        "/users",
        &writer,
        Some(json!({"username": "mallory", "password": PASSWORD, "attributes": {"emp_id": "robot-7"}})),
    )
    .await;
    problem(&r, 409);
    // A user's pairwise subject (every relying party of its sector sees it) is taken too.
    let r = call(
        &h,
        "POST",
        "/applications",
        &config,
        Some(
            json!({"name": "Pairs", "type": "web", "redirect_uris": [crate::flow::RP],
            "subject_type": "pairwise"}),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let pairs = h
        .provider
        .store
        .get_client(r.json["application"]["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let root_user = h.provider.store.get_user(&root).await.unwrap().unwrap();
    let pairwise = h.provider.subject(&pairs, &root_user).expect("pairwise");
    let r = call(&h, "POST", "/applications", &config, Some(m2m(&pairwise))).await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "client_id");
    let r = call(
        &h,
        "POST",
        "/users",
        &writer,
        Some(json!({"username": "mallory", "password": PASSWORD, "attributes": {"emp_id": pairwise}})),
    )
    .await;
    problem(&r, 409);
}

/// Two writers racing to give two users one subject value: one wins, the other is refused.
#[tokio::test]
async fn racing_writes_cannot_share_a_subject() {
    let h = setup().await;
    let writer = automation(&h, &["users:write"]).await;
    let config = automation(&h, &["config:write"]).await;
    let r = web_app_with_subject(&h, &config, "HR", "emp_id").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (bob, carol) = (h.user("bob").await, h.user("carol").await);
    for round in 0..10 {
        let value = json!({ "emp_id": format!("E{round}") });
        let body = Some(json!({ "attributes": value }));
        let (to_bob, to_carol) = (format!("/users/{bob}"), format!("/users/{carol}"));
        let (a, b) = tokio::join!(
            call(&h, "PATCH", &to_bob, &writer, body.clone()),
            call(&h, "PATCH", &to_carol, &writer, body.clone()),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 409],
            "round {round}: {} / {}",
            a.text,
            b.text
        );
    }
}

/// A collision stored before these rules (written here straight to the store) is reported, and
/// blocks no unrelated write: an application with the default subject is still created.
#[tokio::test]
async fn an_old_collision_is_reported_and_blocks_nothing_else() {
    let h = setup().await;
    let config = automation(&h, &["config:write"]).await;
    let root = administrator(&h, "root").await;
    let r = web_app_with_subject(&h, &config, "HR", "emp_id").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mallory = h.user("mallory").await;
    let mut u = h.provider.store.get_user(&mallory).await.unwrap().unwrap();
    u.attributes.insert("emp_id".into(), json!(root));
    h.provider
        .store
        .update_user(&u)
        .await
        .expect("stored as before");
    let shared = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .shared_subjects()
        .await
        .expect("shared");
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert!(shared[0].contains(&root), "{shared:?}");
    let r = call(
        &h,
        "POST",
        "/applications",
        &config,
        Some(json!({"name": "Plain", "type": "web", "redirect_uris": [crate::flow::RP]})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// A declarative file is judged as a whole: its users against each other and against the
/// applications it brings, before anything is written.
#[tokio::test]
async fn an_applied_file_is_judged_as_a_whole() {
    let h = setup().await;
    let admin = h.provider.admin(tessera_core::admin::Caller::local());
    let user = |name: &str, emp: &str| json!({"username": name, "password": PASSWORD, "attributes": {"emp_id": emp}});
    let hr = json!({"name": "HR", "type": "web", "redirect_uris": [crate::flow::RP],
        "subject_attribute": "emp_id"});
    for (users, what) in [
        (
            vec![user("frank", "SAME"), user("grace", "SAME")],
            "two users, one emp_id",
        ),
        (
            vec![user("ivan", "I1"), user("iv\u{430}n", "I2")],
            "look-alike usernames",
        ),
        (
            vec![user("henry", "H1"), user("henrY", "H2")],
            "one username in two cases",
        ),
    ] {
        let spec: tessera_core::admin::Spec =
            serde_json::from_value(json!({"clients": [hr], "users": users})).expect("spec");
        let plan = admin.plan(&spec, false).await.expect("plan");
        let e = admin.apply_plan(&plan).await.expect_err(what);
        assert!(
            matches!(e, tessera_core::admin::AdminError::Conflict(_)),
            "{what}: {e:?}"
        );
        assert!(h
            .provider
            .store
            .list_clients()
            .await
            .unwrap()
            .iter()
            .all(|c| c.name != "HR"));
        assert!(h.provider.store.find_user("frank").await.unwrap().is_none());
    }
}

/// Blocking signs out everywhere: unblocking does not bring back what a thief held.
#[tokio::test]
async fn unblocking_brings_nothing_back() {
    let h = setup().await;
    let admin = automation(&h, &["administrator"]).await;
    let (frank, app) = frank_and_his_app(&h).await;
    let (b, rt) = frank_signs_in_with(&h, &app).await;
    for path in ["block", "unblock"] {
        let r = call(&h, "POST", &format!("/users/{frank}/{path}"), &admin, None).await;
        assert!(r.status.is_success(), "{path}: {}", r.text);
    }
    assert_eq!(refresh_with(&h, &app, &rt).await.error(), "invalid_grant");
    assert_eq!(silently(&b, &app).await, "login_required");
    // And frank signs in afresh.
    frank_signs_in_with(&h, &app).await;
}

/// A user may not change, with `users:self`, a claim an application takes its subject from.
#[tokio::test]
async fn a_user_cannot_choose_their_own_subject() {
    let h = setup().await;
    let config = automation(&h, &["config:write"]).await;
    let selfie = self_service(&h).await;
    let alice = h.user("alice").await;
    let token = own_token(&h, &selfie, "alice", &["users:self"]).await;
    let r = call(
        &h,
        "PATCH",
        &format!("/users/{alice}"),
        &token,
        Some(json!({"claims": {"nickname": "ally"}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = web_app_with_subject(&h, &config, "Forum", "nickname").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = call(
        &h,
        "PATCH",
        &format!("/users/{alice}"),
        &token,
        Some(json!({"claims": {"nickname": "someone-else"}})),
    )
    .await;
    problem(&r, 403);
}

/// A password set by `tessera apply` signs out everywhere as one set through the API does: the
/// records of the sessions and grants it ended are revoked too (and applications told).
#[tokio::test]
async fn an_applied_password_signs_out_everywhere() {
    let h = setup().await;
    let (frank, app) = frank_and_his_app(&h).await;
    let rt = frank_signs_in(&h, &app).await;
    let admin = h.provider.admin(tessera_core::admin::Caller::local());
    let spec: tessera_core::admin::Spec = serde_json::from_value(
        json!({"users": [{"username": "frank", "password": "a new password from the file"}]}),
    )
    .expect("spec");
    let plan = admin.plan(&spec, false).await.expect("plan");
    admin.apply_plan(&plan).await.expect("apply");
    assert_eq!(refresh_with(&h, &app, &rt).await.error(), "invalid_grant");
    let left: Vec<_> = h
        .provider
        .store
        .user_artifacts(&frank)
        .await
        .expect("artifacts")
        .into_iter()
        .filter(|a| a.revoked_at.is_none())
        .map(|a| a.kind)
        .collect();
    assert!(left.is_empty(), "records left in force: {left:?}");
}
