//! Token exchange (RFC 8693): delegation with nested `act`, impersonation only when allowed,
//! audience and scope rules, subject tokens of trusted issuers, and the policy webhook (allow with
//! claims, deny, timeout) on a local HTTP server.

use std::time::Duration;

use axum::routing::post;
use http::StatusCode;
use serde_json::{json, Value};
use tessera_core::admin::{ApiSpec, ClientSpec};
use tessera_core::model::{ClientType, ConsentMode, GrantType, TrustedIssuer};

use crate::flow::{code_request, enc, jwt_claims, sign_in, Browser};
use crate::support::{Harness, TestClient, API};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
const ORDERS: &str = "https://orders.example.com";

/// A user's access token for the things API, from a first-party web app.
async fn user_token(h: &Harness) -> String {
    h.user("alice").await;
    let web = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.apis = vec![API.into()];
            s.scopes = vec!["read:things".into(), "write:things".into()];
        })
        .await;
    let b = Browser::new(h);
    let (path, verifier) = code_request(&web, "openid read:things", "");
    let p = sign_in(&b, &path, "alice").await;
    let t = h.exchange(&web, &p["code"], Some(&verifier)).await;
    t.json["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// The things API's backend, registered with its API identifier as client_id so that tokens
/// addressed to the API are addressed to it; it may call the orders API.
async fn resource_server(h: &Harness, tweak: impl FnOnce(&mut ClientSpec)) -> TestClient {
    let _ = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .create_api(&ApiSpec {
            identifier: ORDERS.into(),
            name: "Orders".into(),
            scopes: vec![],
        })
        .await;
    let mut spec = ClientSpec {
        client_id: Some(API.into()),
        grant_types: Some(vec![GrantType::TokenExchange, GrantType::ClientCredentials]),
        apis: vec![ORDERS.into()],
        scopes: vec!["read:things".into()],
        introspection_allowed: Some(true),
        ..ClientSpec::new("things backend", ClientType::M2m)
    };
    tweak(&mut spec);
    h.client_with(spec).await
}

/// The resource server, trusting `https://idp.example.com` (signing with `idp`) and allowed to
/// impersonate its users.
async fn trusting_resource_server(h: &Harness, idp: &crate::assertions::TestKey) -> TestClient {
    resource_server(h, |s| {
        s.impersonation_allowed = Some(true);
        s.trusted_issuers = vec![TrustedIssuer {
            issuer: "https://idp.example.com".into(),
            jwks: Some(json!({"keys": [idp.jwk.clone()]})),
            jwks_uri: None,
        }];
    })
    .await
}

fn exchange(subject: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("grant_type", GRANT),
        ("subject_token", subject),
        ("subject_token_type", AT),
        ("resource", ORDERS),
    ];
    pairs.extend_from_slice(extra);
    enc(&pairs)
}

#[tokio::test]
async fn delegation_records_the_actor_and_nests_earlier_ones() {
    let h = Harness::new().await;
    let subject = user_token(&h).await;
    let rs = resource_server(&h, |_| {}).await;
    let actor = h.access_token(&rs).await;
    let r = h
        .post(
            "/token",
            Some(&rs.basic()),
            &exchange(
                &subject,
                &[("actor_token", &actor), ("actor_token_type", AT)],
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["issued_token_type"], AT);
    assert_eq!(
        r.json["scope"], "read:things",
        "the subject's scopes the client may request"
    );
    let claims = jwt_claims(r.json["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], jwt_claims(&subject)["sub"]);
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!(claims["act"], json!({"sub": API}));
    let i = h
        .introspect(&rs, r.json["access_token"].as_str().unwrap())
        .await;
    assert_eq!(i["act"]["sub"], API, "introspection shows the actor");

    // The orders backend exchanges again: the first actor nests under the second.
    let orders = h
        .client_with(ClientSpec {
            client_id: Some(ORDERS.into()),
            grant_types: Some(vec![GrantType::TokenExchange, GrantType::ClientCredentials]),
            scopes: vec!["read:things".into()],
            apis: vec![API.into()],
            ..ClientSpec::new("orders backend", ClientType::M2m)
        })
        .await;
    let second_actor = h.access_token(&orders).await;
    let body = enc(&[
        ("grant_type", GRANT),
        ("subject_token", r.json["access_token"].as_str().unwrap()),
        ("subject_token_type", AT),
        ("actor_token", &second_actor),
        ("actor_token_type", AT),
    ]);
    let r2 = h.post("/token", Some(&orders.basic()), &body).await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.json);
    assert_eq!(
        jwt_claims(r2.json["access_token"].as_str().unwrap())["act"],
        json!({"sub": ORDERS, "act": {"sub": API}})
    );
}

#[tokio::test]
async fn impersonation_audience_and_scope_rules() {
    let h = Harness::new().await;
    let subject = user_token(&h).await;
    let rs = resource_server(&h, |_| {}).await;
    let r = h
        .post("/token", Some(&rs.basic()), &exchange(&subject, &[]))
        .await;
    assert_eq!(
        r.error(),
        "unauthorized_client",
        "no actor and no permission to impersonate"
    );

    let h2 = Harness::new().await;
    let subject = user_token(&h2).await;
    let rs = resource_server(&h2, |s| {
        s.impersonation_allowed = Some(true);
        s.scopes = vec!["read:things".into(), "write:things".into()];
    })
    .await;
    let r = h2
        .post("/token", Some(&rs.basic()), &exchange(&subject, &[]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert!(
        jwt_claims(r.json["access_token"].as_str().unwrap())
            .get("act")
            .is_none(),
        "impersonation: no act"
    );
    let wider = h2
        .post(
            "/token",
            Some(&rs.basic()),
            &exchange(&subject, &[("scope", "read:things write:things")]),
        )
        .await;
    assert_eq!(wider.error(), "invalid_scope", "scopes only narrow");
    let elsewhere = h2
        .post(
            "/token",
            Some(&rs.basic()),
            &enc(&[
                ("grant_type", GRANT),
                ("subject_token", &subject),
                ("subject_token_type", AT),
                ("resource", "https://unknown.example.com"),
            ]),
        )
        .await;
    assert_eq!(elsewhere.error(), "invalid_target");
    let unsupported = h2
        .post(
            "/token",
            Some(&rs.basic()),
            &exchange(
                &subject,
                &[(
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:saml2",
                )],
            ),
        )
        .await;
    assert_eq!(unsupported.error(), "invalid_request");

    // A token addressed to another audience cannot be exchanged by this client.
    let stranger = h2
        .client_with(ClientSpec {
            grant_types: Some(vec![GrantType::TokenExchange]),
            impersonation_allowed: Some(true),
            apis: vec![ORDERS.into()],
            scopes: vec!["read:things".into()],
            ..ClientSpec::new("stranger", ClientType::M2m)
        })
        .await;
    let r = h2
        .post("/token", Some(&stranger.basic()), &exchange(&subject, &[]))
        .await;
    assert_eq!(r.error(), "invalid_request");
    assert!(r.json["error_description"]
        .as_str()
        .unwrap()
        .contains("another audience"));
    let r = h2
        .post(
            "/token",
            Some(&stranger.basic()),
            &exchange("not-a-token", &[]),
        )
        .await;
    assert_eq!(r.error(), "invalid_request");
}

#[tokio::test]
async fn subject_tokens_from_trusted_issuers() {
    let h = Harness::new().await;
    let idp = crate::assertions::key_pair("idp");
    let rs = trusting_resource_server(&h, &idp).await;
    let now = crate::support::now();
    let foreign = |iss: &str| {
        crate::assertions::sign_with(
            &idp,
            &json!({"iss": iss, "sub": "partner-user-7", "aud": API, "exp": now + 300, "scope": "read:things", "jti": iss,
                "act": {"sub": "partner-agent"}}),
        )
    };
    let jwt_type = "urn:ietf:params:oauth:token-type:jwt";
    let body = |t: &str| {
        enc(&[
            ("grant_type", GRANT),
            ("subject_token", t),
            ("subject_token_type", jwt_type),
            ("resource", ORDERS),
        ])
    };
    let r = h
        .post(
            "/token",
            Some(&rs.basic()),
            &body(&foreign("https://idp.example.com")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        jwt_claims(r.json["access_token"].as_str().unwrap())["sub"],
        "https://idp.example.com|partner-user-7",
        "a partner's subject is namespaced by its issuer"
    );
    assert_eq!(
        jwt_claims(r.json["access_token"].as_str().unwrap())["act"],
        json!({"sub": "partner-agent", "iss": "https://idp.example.com"}),
        "so is its actor"
    );
    let r = h
        .post(
            "/token",
            Some(&rs.basic()),
            &body(&foreign("https://untrusted.example.com")),
        )
        .await;
    assert_eq!(r.error(), "invalid_request");
}

async fn policy_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = axum::Router::new()
        .route("/allow", post(|axum::Json(ctx): axum::Json<Value>| async move {
            axum::Json(json!({"allow": true, "claims": {"tenant": "acme", "seen_scope": ctx["scope"],
                "sub": "overridden?", "aud": "https://evil.example", "act": {"sub": "someone"}, "acr": "9",
                "email": "root@example.com", "email_verified": true, "name": "Root", "sid": "x", "nonce": "n",
                "groups": ["tessera-admins"], "roles": ["admin"]}}))
        }))
        .route("/deny", post(|| async { axum::Json(json!({"allow": false, "reason": "orders are closed on Sundays"})) }))
        .route("/slow", post(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            axum::Json(json!({"allow": true}))
        }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

#[tokio::test]
async fn the_policy_webhook_allows_with_claims_denies_and_fails_closed() {
    let h = Harness::new().await;
    let base = policy_server().await;
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .create_api(&ApiSpec {
            identifier: ORDERS.into(),
            name: "Orders".into(),
            scopes: vec![],
        })
        .await
        .expect("api");
    for (path, status, error) in [
        ("allow", 200, ""),
        ("deny", 400, "access_denied"),
        ("slow", 503, "temporarily_unavailable"),
    ] {
        let rs = h
            .client_with(ClientSpec {
                client_id: Some(format!("{API}/{path}")),
                grant_types: Some(vec![GrantType::TokenExchange, GrantType::ClientCredentials]),
                impersonation_allowed: Some(true),
                exchange_policy_url: Some(format!("{base}/{path}")),
                apis: vec![ORDERS.into()],
                scopes: vec!["read:things".into()],
                ..ClientSpec::new(path, ClientType::M2m)
            })
            .await;
        // Each caller exchanges a token issued to itself (impersonation is allowed here).
        let own = h.access_token(&rs).await;
        let body = enc(&[
            ("grant_type", GRANT),
            ("subject_token", &own),
            ("subject_token_type", AT),
            ("resource", ORDERS),
        ]);
        let r = h.post("/token", Some(&rs.basic()), &body).await;
        assert_eq!(
            (r.status.as_u16(), r.error()),
            (status, error),
            "{path}: {}",
            r.json
        );
        if path == "allow" {
            let claims = jwt_claims(r.json["access_token"].as_str().unwrap());
            assert_eq!(claims["tenant"], "acme");
            assert_eq!(claims["sub"], rs.id.as_str(), "a policy cannot replace sub");
            assert_eq!(claims["aud"], ORDERS);
            for reserved in [
                "act",
                "acr",
                "email",
                "email_verified",
                "name",
                "sid",
                "nonce",
                "groups",
                "roles",
            ] {
                assert!(claims.get(reserved).is_none(), "{reserved}: {claims}");
            }
        }
        if path == "deny" {
            assert_eq!(r.json["error_description"], "orders are closed on Sundays");
        }
    }
}

#[tokio::test]
async fn own_refresh_and_id_tokens_are_subject_tokens_too() {
    let h = Harness::new().await;
    let uid = h.user("dora").await;
    let web = h
        .web_app(|s| {
            s.consent = Some(ConsentMode::AutoAccept);
            s.grant_types = Some(vec![
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
                GrantType::TokenExchange,
            ]);
            s.impersonation_allowed = Some(true);
            s.apis = vec![API.into()];
            s.scopes = vec!["read:things".into()];
        })
        .await;
    let b = Browser::new(&h);
    let (path, verifier) = code_request(&web, "openid read:things", "");
    let p = sign_in(&b, &path, "dora").await;
    let t = h.exchange(&web, &p["code"], Some(&verifier)).await;
    for (token, ty) in [
        (
            t.json["refresh_token"].as_str().unwrap(),
            "urn:ietf:params:oauth:token-type:refresh_token",
        ),
        (
            t.json["id_token"].as_str().unwrap(),
            "urn:ietf:params:oauth:token-type:id_token",
        ),
    ] {
        let body = enc(&[
            ("grant_type", GRANT),
            ("subject_token", token),
            ("subject_token_type", ty),
            ("resource", API),
        ]);
        let r = h.post("/token", Some(&web.basic()), &body).await;
        assert_eq!(r.status, StatusCode::OK, "{ty}: {}", r.json);
        assert_eq!(
            jwt_claims(r.json["access_token"].as_str().unwrap())["sub"],
            uid.as_str(),
            "{ty}"
        );
    }
    // A token of one type presented as another is refused.
    let body = enc(&[
        ("grant_type", GRANT),
        ("subject_token", t.json["refresh_token"].as_str().unwrap()),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        ),
    ]);
    assert_eq!(
        h.post("/token", Some(&web.basic()), &body).await.error(),
        "invalid_request"
    );
}

/// RFC 8693 §2.1, §4.1: an actor token speaks for the caller itself. The subject token passed
/// again as actor, or a third party's token that merely names the caller in its audience, is
/// not the caller's; an actor equal to the subject is impersonation, allowed only when the
/// client may impersonate.
#[tokio::test]
async fn actor_tokens_must_be_the_callers_own() {
    let h = Harness::new().await;
    let subject = user_token(&h).await;
    let rs = resource_server(&h, |_| {}).await;
    let with_actor = |actor: &str| {
        exchange(
            &subject,
            &[("actor_token", actor), ("actor_token_type", AT)],
        )
    };
    // The subject token as its own actor: issued to the web app, not to the caller.
    let r = h
        .post("/token", Some(&rs.basic()), &with_actor(&subject))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.error(), "invalid_request");
    assert!(
        r.json["error_description"]
            .as_str()
            .unwrap()
            .contains("actor_token"),
        "{}",
        r.text
    );
    // A third party's token whose audience names the caller (its APIs include the things API).
    let third = h
        .client_with(ClientSpec {
            apis: vec![API.into()],
            scopes: vec!["read:things".into()],
            ..ClientSpec::new("third party", ClientType::M2m)
        })
        .await;
    let theirs = h.access_token(&third).await;
    assert_eq!(jwt_claims(&theirs)["aud"], API, "addressed to the caller");
    let r = h
        .post("/token", Some(&rs.basic()), &with_actor(&theirs))
        .await;
    assert_eq!(r.error(), "invalid_request", "{}", r.text);
    // The caller's own token works as actor.
    let own = h.access_token(&rs).await;
    let r = h.post("/token", Some(&rs.basic()), &with_actor(&own)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Its own token as both subject and actor is impersonating itself: refused unless allowed.
    let body = enc(&[
        ("grant_type", GRANT),
        ("subject_token", &own),
        ("subject_token_type", AT),
        ("actor_token", &own),
        ("actor_token_type", AT),
        ("resource", ORDERS),
    ]);
    let r = h.post("/token", Some(&rs.basic()), &body).await;
    assert_eq!(r.error(), "unauthorized_client", "{}", r.text);
}

/// A trusted issuer's subject token without `jti` could be replayed without limit.
#[tokio::test]
async fn trusted_subject_tokens_need_a_jti_and_are_used_once() {
    let h = Harness::new().await;
    let idp = crate::assertions::key_pair("idp");
    let rs = trusting_resource_server(&h, &idp).await;
    let now = crate::support::now();
    let token = |jti: Option<&str>| {
        let mut c = json!({"iss": "https://idp.example.com", "sub": "partner-user-7", "aud": API,
            "exp": now + 300, "scope": "read:things"});
        if let Some(j) = jti {
            c["jti"] = json!(j);
        }
        crate::assertions::sign_with(&idp, &c)
    };
    let body = |t: &str| {
        enc(&[
            ("grant_type", GRANT),
            ("subject_token", t),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ("resource", ORDERS),
        ])
    };
    let without = token(None);
    let r = h.post("/token", Some(&rs.basic()), &body(&without)).await;
    assert_eq!(r.error(), "invalid_request", "{}", r.text);
    assert!(r.json["error_description"]
        .as_str()
        .unwrap()
        .contains("jti"));
    let with = token(Some("once-1"));
    let r = h.post("/token", Some(&rs.basic()), &body(&with)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = h.post("/token", Some(&rs.basic()), &body(&with)).await;
    assert_eq!(r.error(), "invalid_request", "replayed: {}", r.text);

    // Review regressions: the clock skew never stretches what is issued. A subject token ten
    // seconds from its exp gives a token that lives at most ten seconds; one past its exp
    // (inside the skew) gives nothing.
    let t0 = h.clock.now().0;
    let at = |exp: i64, jti: &str| {
        crate::assertions::sign_with(
            &idp,
            &json!({"iss": "https://idp.example.com", "sub": "partner-user-7", "aud": API,
                "exp": t0 + exp, "scope": "read:things", "jti": jti}),
        )
    };
    let r = h
        .post("/token", Some(&rs.basic()), &body(&at(10, "soon")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.json["expires_in"].as_i64().unwrap() <= 10, "{}", r.text);
    let r = h
        .post("/token", Some(&rs.basic()), &body(&at(-100, "past")))
        .await;
    assert_eq!(r.error(), "invalid_request", "{}", r.text);
    assert!(r.text.contains("expired"), "{}", r.text);
}

/// A token exchanged for a user's token belongs to that token's grant: revoking the grant, or
/// blocking the user, stops it too. Only a real ID token of a session in force is an ID token
/// (an access token, a revoked one included, or a logout token passed as one is refused).
#[tokio::test]
async fn exchanged_tokens_live_no_longer_than_what_they_came_from() {
    let h = Harness::new().await;
    let subject = user_token(&h).await;
    // The resource server's own tokens would live four times as long as the user's.
    let rs = resource_server(&h, |s| {
        s.impersonation_allowed = Some(true);
        s.access_token_ttl = Some(3600);
    })
    .await;
    let r = h
        .post("/token", Some(&rs.basic()), &exchange(&subject, &[]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let exchanged = r.json["access_token"].as_str().unwrap().to_owned();
    let exp_of = |v: Value| v["exp"].as_i64().expect("exp");
    let subject_exp = exp_of(h.introspect(&rs, &subject).await);
    let seen = h.introspect(&rs, &exchanged).await;
    assert_eq!(seen["active"], true);
    assert!(exp_of(seen) <= subject_exp, "outlives its subject token");
    assert!(r.json["expires_in"].as_i64().unwrap() <= 900, "{}", r.text);
    // Exchanging the exchanged token again gains no time either: a chain ends when its first
    // token does (a client's own client-credentials token here, which has no grant).
    let own = h.access_token(&rs).await;
    let own_exp = exp_of(h.introspect(&rs, &own).await);
    let mut token = own;
    for _ in 0..3 {
        let r = h
            .post("/token", Some(&rs.basic()), &exchange(&token, &[]))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        token = r.json["access_token"].as_str().unwrap().to_owned();
        assert!(exp_of(h.introspect(&rs, &token).await) <= own_exp);
    }
    // No OpenID scope is ever exchanged for (userinfo would answer the new token).
    let r = h
        .post(
            "/token",
            Some(&rs.basic()),
            &exchange(&subject, &[("scope", "openid")]),
        )
        .await;
    assert_eq!(r.error(), "invalid_scope", "{}", r.text);
    // The subject access token passed as an ID token or a JWT.
    for ty in [
        "urn:ietf:params:oauth:token-type:id_token",
        "urn:ietf:params:oauth:token-type:jwt",
    ] {
        let body = enc(&[
            ("grant_type", GRANT),
            ("subject_token", &subject),
            ("subject_token_type", ty),
            ("resource", ORDERS),
        ]);
        let r = h.post("/token", Some(&rs.basic()), &body).await;
        assert_eq!(r.error(), "invalid_request", "{ty}: {}", r.text);
    }
    // Blocking the user stops the exchanged token.
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .update_user(
            "alice",
            &tessera_core::admin::UserPatch {
                blocked: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("block");
    assert_eq!(h.introspect(&rs, &exchanged).await["active"], false);
}

/// No application gets an exchanged token for the admin API: none may be registered with the
/// admin API's identifier as its client_id in the first place.
#[tokio::test]
async fn no_exchange_is_ever_for_the_admin_api() {
    let h = crate::admin_api::setup().await;
    // No application may be the admin API: it would receive, and could exchange, its tokens.
    let refused = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .create_client(&ClientSpec {
            client_id: Some(h.provider.admin_api()),
            grant_types: Some(vec![GrantType::TokenExchange]),
            impersonation_allowed: Some(true),
            scopes: vec!["users:self".into()],
            ..ClientSpec::new("admin api lookalike", ClientType::M2m)
        })
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("admin API"), "{refused}");
}
