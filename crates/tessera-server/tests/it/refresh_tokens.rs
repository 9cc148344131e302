//! Refresh tokens as relying-party libraries use them: revoked (RFC 7009 §2.1) with the access
//! tokens of their grant, introspected (RFC 7662 §2.1), rotated with reuse detected at once
//! unless an application opts into a grace window (RFC 9700 §4.14.2), narrowed by `resource`
//! (RFC 8707 §2.2); and the CORS answers a browser application reads them with.

use http::StatusCode;
use serde_json::json;
use tessera_core::admin::{ApiSpec, ClientSpec};
use tessera_core::model::{ClientType, ConsentMode, GrantType, JwtBearerSubject, TokenFormat};

use crate::admin_api::{automation, call, problem, setup};
use crate::flow::{code_request, enc, jwt_claims, sign_in, Browser, RP};
use crate::support::{now, Harness, Reply, TestClient, API, ISSUER};

const BILLING: &str = "https://billing.example.com";

/// Signs `user` in to `app` and redeems the code.
async fn tokens(h: &Harness, app: &TestClient, user: &str, scope: &str) -> Reply {
    let b = Browser::new(h);
    let (path, verifier) = code_request(app, scope, "");
    let p = sign_in(&b, &path, user).await;
    let t = if app.secret.is_empty() {
        let body = enc(&[
            ("grant_type", "authorization_code"),
            ("code", &p["code"]),
            ("redirect_uri", RP),
            ("code_verifier", &verifier),
            ("client_id", &app.id),
        ]);
        h.post("/token", None, &body).await
    } else {
        h.exchange(app, &p["code"], Some(&verifier)).await
    };
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    t
}

/// A refresh request: a confidential client authenticates with its secret, a public one sends
/// its id in the body.
async fn refresh(h: &Harness, app: &TestClient, rt: &str, extra: &[(&str, &str)]) -> Reply {
    let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    pairs.extend_from_slice(extra);
    if app.secret.is_empty() {
        pairs.push(("client_id", &app.id));
        h.post("/token", None, &enc(&pairs)).await
    } else {
        h.post("/token", Some(&app.basic()), &enc(&pairs)).await
    }
}

fn field<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.json[name].as_str().expect(name)
}

async fn web(h: &Harness, format: TokenFormat) -> TestClient {
    h.web_app(|s| {
        s.consent = Some(ConsentMode::AutoAccept);
        s.token_format = Some(format);
        s.apis = vec![API.into()];
        s.scopes = vec!["read:things".into()];
    })
    .await
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_grant() {
    for format in [TokenFormat::Opaque, TokenFormat::Jwt] {
        let h = Harness::new().await;
        h.user("ann").await;
        let app = web(&h, format).await;
        let t = tokens(&h, &app, "ann", "openid read:things offline_access").await;
        let (rt, at) = (field(&t, "refresh_token"), field(&t, "access_token"));
        let r = revoke(&h, &app, rt, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(
            refresh(&h, &app, rt, &[]).await.error(),
            "invalid_grant",
            "{format:?}: the refresh token stops"
        );
        assert_eq!(
            h.introspect(&app, at).await["active"],
            false,
            "{format:?}: and the access tokens of its grant"
        );
        let u = h.get_with_bearer("/userinfo", at).await;
        assert_eq!(u.status, StatusCode::UNAUTHORIZED, "{format:?}");
    }
}

/// POST /revoke as `client`, with a `token_type_hint` when given.
async fn revoke(h: &Harness, client: &TestClient, token: &str, hint: Option<&str>) -> Reply {
    let mut form = vec![("token", token)];
    form.extend(hint.map(|t| ("token_type_hint", t)));
    h.post("/revoke", Some(&client.basic()), &enc(&form)).await
}

#[tokio::test]
async fn token_type_hint_is_only_a_hint() {
    let h = Harness::new().await;
    h.user("ann").await;
    let app = web(&h, TokenFormat::Opaque).await;
    // An access token sent as a refresh token is still found.
    let t = tokens(&h, &app, "ann", "openid read:things").await;
    let at = field(&t, "access_token");
    let r = revoke(&h, &app, at, Some("refresh_token")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(h.introspect(&app, at).await["active"], false);
    // A refresh token sent as an access token too.
    let t = tokens(&h, &app, "ann", "openid read:things").await;
    let rt = field(&t, "refresh_token");
    let r = revoke(&h, &app, rt, Some("access_token")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(refresh(&h, &app, rt, &[]).await.error(), "invalid_grant");
    // Another client cannot revoke it, and the token keeps working.
    let t = tokens(&h, &app, "ann", "openid read:things").await;
    let rt = field(&t, "refresh_token");
    let other = h.web_app(|_| {}).await;
    let r = revoke(&h, &other, rt, None).await;
    assert_eq!(r.error(), "unauthorized_client", "{}", r.text);
    assert_eq!(refresh(&h, &app, rt, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_introspect_for_their_own_client() {
    let h = Harness::new().await;
    let ann = h.user("ann").await;
    let app = web(&h, TokenFormat::Jwt).await;
    let t = tokens(&h, &app, "ann", "openid read:things").await;
    let rt = field(&t, "refresh_token");
    let i = h.introspect(&app, rt).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["token_type"], "refresh_token");
    assert_eq!(i["client_id"], app.id.as_str());
    assert_eq!(i["scope"], "openid read:things");
    assert_eq!(i["sub"], ann.as_str());
    assert_eq!(i["iss"], ISSUER);
    assert!(i["exp"].as_i64().is_some_and(|e| e > now()), "{i}");
    // Another client learns nothing; a rotated one is inactive.
    let other = h.web_app(|_| {}).await;
    assert_eq!(h.introspect(&other, rt).await, json!({"active": false}));
    let next = refresh(&h, &app, rt, &[]).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.text);
    assert_eq!(h.introspect(&app, rt).await, json!({"active": false}));
    assert_eq!(
        h.introspect(&app, field(&next, "refresh_token")).await["active"],
        true
    );
}

#[tokio::test]
async fn a_rotated_refresh_token_replayed_at_once_revokes_the_grant() {
    let h = Harness::new().await;
    h.user("ann").await;
    // A public client (SPA): the replay of a rotated token is reuse, even a second later.
    let spa = h
        .web_app(|s| {
            s.client_type = ClientType::Spa;
            s.consent = Some(ConsentMode::AutoAccept);
        })
        .await;
    let t = tokens(&h, &spa, "ann", "openid offline_access").await;
    let rt1 = field(&t, "refresh_token");
    let second = refresh(&h, &spa, rt1, &[]).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let replay = refresh(&h, &spa, rt1, &[]).await;
    assert_eq!(replay.error(), "invalid_grant", "{}", replay.text);
    assert_eq!(
        refresh(&h, &spa, field(&second, "refresh_token"), &[])
            .await
            .error(),
        "invalid_grant",
        "the whole grant is revoked"
    );
    // A confidential client without the opt-in: the same.
    let web = web(&h, TokenFormat::Jwt).await;
    let t = tokens(&h, &web, "ann", "openid").await;
    let rt1 = field(&t, "refresh_token");
    assert_eq!(refresh(&h, &web, rt1, &[]).await.status, StatusCode::OK);
    // Without a grace window nothing would read the answer again: it is not kept.
    assert!(stored_successor(&h, rt1).await.is_none());
    assert_eq!(refresh(&h, &web, rt1, &[]).await.error(), "invalid_grant");
}

/// A node on a SQLite file of a fresh directory (kept while the first value lives), with ann
/// signed in to a web application: the file, the node, the application and its tokens.
async fn signed_in_on_file() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Harness,
    TestClient,
    Reply,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("tessera.db");
    let h = Harness::on_file(&db).await;
    h.user("ann").await;
    let web = web(&h, TokenFormat::Jwt).await;
    let t = tokens(&h, &web, "ann", "openid").await;
    (dir, db, h, web, t)
}

/// A refresh whose grant is revoked after its token was read and before the token was consumed
/// is refused: the consumed token comes back revoked, and nothing made from it is answered. The
/// revocation is placed in that window by a trigger that revokes the grant when the successor
/// is inserted, in the rotation's own transaction ahead of the consume.
#[tokio::test]
async fn a_refresh_revoked_between_its_read_and_its_rotation_is_refused() {
    let (_dir, db, h, web, t) = signed_in_on_file().await;
    let rt = field(&t, "refresh_token");
    let mut conn = crate::support::open_database(&db).await;
    sqlx::query(
        "CREATE TRIGGER revoke_in_the_window AFTER INSERT ON artifacts \
         WHEN NEW.kind = 'refresh_token' BEGIN \
         UPDATE artifacts SET revoked_at = 1 WHERE grant_id = NEW.grant_id AND id <> NEW.id; END",
    )
    .execute(&mut conn)
    .await
    .expect("trigger");
    let refused = refresh(&h, &web, rt, &[]).await;
    assert_eq!(refused.error(), "invalid_grant", "{}", refused.text);
    assert!(
        refused.json.get("access_token").is_none(),
        "{}",
        refused.text
    );
}

/// A refresh decides on its grant as stored at that moment, not on the copy the node cached
/// when it last used the grant (another node's revocation would otherwise be missed for up to
/// 500 ms): the grant's row revoked, or gone, behind the node's back, refuses the next refresh.
#[tokio::test]
async fn a_refresh_decides_on_the_stored_grant_not_a_cached_copy() {
    for change in [
        "UPDATE artifacts SET revoked_at = 1 WHERE kind = 'grant'",
        "DELETE FROM artifacts WHERE kind = 'grant'",
    ] {
        let (_dir, db, h, web, t) = signed_in_on_file().await;
        // This refresh leaves the grant in the node's cache.
        let first = refresh(&h, &web, field(&t, "refresh_token"), &[]).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        let mut conn = crate::support::open_database(&db).await;
        sqlx::query(change)
            .execute(&mut conn)
            .await
            .expect("change");
        let refused = refresh(&h, &web, field(&first, "refresh_token"), &[]).await;
        assert_eq!(
            refused.error(),
            "invalid_grant",
            "{change}: {}",
            refused.text
        );
    }
}

/// The sealed answer a rotated refresh token keeps for retries, if any.
async fn stored_successor(h: &Harness, token: &str) -> Option<serde_json::Value> {
    let key = tessera_core::secret::handle_key(token).expect("a refresh token handle");
    let artifact = h
        .provider
        .store
        .get_artifact(&key)
        .await
        .expect("store")
        .expect("the consumed token is kept");
    assert!(artifact.consumed_at.is_some());
    artifact.payload.get("successor").cloned()
}

#[tokio::test]
async fn the_grace_window_is_an_explicit_setting_of_confidential_clients() {
    let h = setup().await;
    h.user("ann").await;
    let admin = automation(&h, &["administrator"]).await;
    let r = call(
        &h,
        "POST",
        "/applications",
        &admin,
        Some(
            json!({"name": "SPA", "type": "spa", "redirect_uris": [RP], "refresh_grace_secs": 10}),
        ),
    )
    .await;
    problem(&r, 422);
    assert_eq!(r.json["invalid-params"][0]["name"], "refresh_grace_secs");
    let r = call(
        &h,
        "POST",
        "/applications",
        &admin,
        Some(
            json!({"name": "Web", "type": "web", "redirect_uris": [RP], "consent": "auto-accept",
            "refresh_grace_secs": 10}),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let app = TestClient {
        id: r.json["application"]["client_id"]
            .as_str()
            .expect("id")
            .into(),
        secret: r.json["client_secret"].as_str().expect("secret").into(),
    };
    assert_eq!(r.json["application"]["refresh_grace_secs"], 10);
    let t = tokens(&h, &app, "ann", "openid").await;
    let rt1 = field(&t, "refresh_token");
    let second = refresh(&h, &app, rt1, &[]).await;
    assert!(
        stored_successor(&h, rt1).await.is_some(),
        "kept for the window"
    );
    // A retry within the window gets the very same pair.
    let retry = refresh(&h, &app, rt1, &[]).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
    assert_eq!(retry.json, second.json);
    // Once the successor was used, the old token coming back is reuse, even within the window.
    let third = refresh(&h, &app, field(&second, "refresh_token"), &[]).await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.text);
    assert_eq!(refresh(&h, &app, rt1, &[]).await.error(), "invalid_grant");
    assert_eq!(
        refresh(&h, &app, field(&third, "refresh_token"), &[])
            .await
            .error(),
        "invalid_grant",
        "the grant is revoked"
    );
    // A new grant: after the window, reuse revokes it too.
    let t = tokens(&h, &app, "ann", "openid").await;
    let rt1 = field(&t, "refresh_token");
    let second = refresh(&h, &app, rt1, &[]).await;
    h.clock.advance(11);
    assert_eq!(refresh(&h, &app, rt1, &[]).await.error(), "invalid_grant");
    assert_eq!(
        refresh(&h, &app, field(&second, "refresh_token"), &[])
            .await
            .error(),
        "invalid_grant"
    );
}

/// RFC 8707 §2.2: `resource` on a refresh request narrows the new access token's audience to
/// what the grant allowed; anything else is `invalid_target`. The same on the JWT bearer grant.
#[tokio::test]
async fn resource_narrows_refreshed_and_asserted_tokens() {
    let h = Harness::new().await;
    h.user("ann").await;
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .create_api(&ApiSpec {
            identifier: BILLING.into(),
            name: "Billing".into(),
            scopes: vec![],
        })
        .await
        .expect("api");
    let app = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.apis = vec![API.into(), BILLING.into()];
        })
        .await;
    let t = tokens(&h, &app, "ann", "openid").await;
    let rt = field(&t, "refresh_token");
    let aud = |r: &Reply| jwt_claims(field(r, "access_token"))["aud"].clone();
    assert_eq!(aud(&t), json!([API, BILLING]));
    let narrowed = refresh(&h, &app, rt, &[("resource", BILLING)]).await;
    assert_eq!(narrowed.status, StatusCode::OK, "{}", narrowed.text);
    assert_eq!(aud(&narrowed), json!(BILLING));
    let rt = field(&narrowed, "refresh_token");
    for bad in ["https://unknown.example.com", "not a uri"] {
        let r = refresh(&h, &app, rt, &[("resource", bad)]).await;
        assert_eq!(r.error(), "invalid_target", "{bad}: {}", r.text);
    }
    // The grant still stands after a refused target: the token was not consumed.
    let again = refresh(&h, &app, rt, &[("resource", API)]).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(aud(&again), json!(API));

    // The JWT bearer grant: resource picks among the client's APIs.
    let k = crate::assertions::key_pair("idp");
    let asserter = h
        .client_with(ClientSpec {
            grant_types: Some(vec![GrantType::JwtBearer]),
            apis: vec![API.into(), BILLING.into()],
            trusted_issuers: vec![tessera_core::model::TrustedIssuer {
                issuer: "https://idp.example.com".into(),
                jwks: Some(json!({"keys": [k.jwk.clone()]})),
                jwks_uri: None,
            }],
            jwt_bearer_subject: Some(JwtBearerSubject::Client),
            ..ClientSpec::new("asserter", ClientType::M2m)
        })
        .await;
    let assertion = |jti: &str| {
        crate::assertions::sign_with(
            &k,
            &json!({"iss": "https://idp.example.com", "sub": asserter.id, "aud": format!("{ISSUER}/token"),
                "exp": now() + 60, "iat": now(), "jti": jti}),
        )
    };
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let r = h
        .post(
            "/token",
            Some(&asserter.basic()),
            &enc(&[
                ("grant_type", grant),
                ("assertion", &assertion("j1")),
                ("resource", BILLING),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(aud(&r), json!(BILLING));
    let r = h
        .post(
            "/token",
            Some(&asserter.basic()),
            &enc(&[
                ("grant_type", grant),
                ("assertion", &assertion("j2")),
                ("resource", "https://unknown.example.com"),
            ]),
        )
        .await;
    assert_eq!(r.error(), "invalid_target", "{}", r.text);
}

fn with_origin(
    path: &str,
    origin: &str,
    auth: Option<&str>,
    body: &str,
) -> http::Request<axum::body::Body> {
    let mut b = http::Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", origin);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    b.body(axum::body::Body::from(body.to_owned()))
        .expect("request")
}

/// CORS on the token endpoint: an actual response names the origin only when the application
/// that authenticated in that request allows it; a 401 from userinfo exposes its challenge.
#[tokio::test]
async fn cors_answers_follow_the_authenticated_application() {
    let h = Harness::new().await;
    let mine = "https://mine.example.com";
    let theirs = "https://theirs.example.com";
    let a = h
        .client_with(ClientSpec {
            allowed_origins: vec![mine.into()],
            ..Harness::spec("a")
        })
        .await;
    h.client_with(ClientSpec {
        allowed_origins: vec![theirs.into()],
        ..Harness::spec("b")
    })
    .await;
    let body = "grant_type=client_credentials";
    let r = h
        .send(with_origin("/token", theirs, Some(&a.basic()), body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.header("access-control-allow-origin"),
        "",
        "another application's origin"
    );
    let r = h
        .send(with_origin("/token", mine, Some(&a.basic()), body))
        .await;
    assert_eq!(r.header("access-control-allow-origin"), mine);
    assert!(r.header("vary").to_ascii_lowercase().contains("origin"));
    // A refused client authentication names no origin either.
    let wrong = crate::support::basic(&a.id, "wrong secret of sixteen");
    let r = h
        .send(with_origin("/token", mine, Some(&wrong), body))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("access-control-allow-origin"), "");

    // Userinfo without a token: the challenge is readable by an allowed browser origin.
    let req = http::Request::get("/userinfo")
        .header("origin", mine)
        .body(axum::body::Body::empty())
        .expect("request");
    let r = h.send(req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("access-control-allow-origin"), mine);
    assert!(
        r.header("access-control-expose-headers")
            .to_ascii_lowercase()
            .contains("www-authenticate"),
        "{:?}",
        r.headers
    );
}
