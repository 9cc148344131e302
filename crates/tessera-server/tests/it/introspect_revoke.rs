//! Introspection (RFC 7662) and revocation (RFC 7009) of JWT and opaque access tokens.

use http::StatusCode;
use tessera_core::admin::{ClientPatch, ClientSpec};
use tessera_core::model::{Alg, TokenFormat};

use crate::support::{Harness, API, ISSUER};

#[tokio::test]
async fn active_tokens_carry_their_claims() {
    let h = Harness::new().await;
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let c = h.client(Alg::EdDSA, format).await;
        let t = h.token(&c, "&scope=read:things").await;
        let r = h
            .post(
                "/introspect",
                Some(&c.basic()),
                &format!(
                    "token={}&token_type_hint=access_token",
                    t["access_token"].as_str().expect("token")
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("cache-control"), "no-store");
        let i = r.json;
        assert_eq!(i["active"], true, "{format:?}");
        assert_eq!(i["scope"], "read:things");
        assert_eq!(
            (i["client_id"].as_str(), i["sub"].as_str()),
            (Some(c.id.as_str()), Some(c.id.as_str()))
        );
        assert_eq!(
            (
                i["aud"].as_str(),
                i["iss"].as_str(),
                i["token_type"].as_str()
            ),
            (Some(API), Some(ISSUER), Some("Bearer"))
        );
        assert_eq!(
            i["exp"].as_i64().expect("exp") - i["iat"].as_i64().expect("iat"),
            900
        );
    }
}

/// RFC 9701: asked with `Accept: application/token-introspection+jwt`, the same answer comes as
/// a JWT signed with the application's algorithm (RS256 for HS256 applications), for it.
#[tokio::test]
async fn introspection_answers_as_a_signed_jwt_when_asked() {
    let h = Harness::new().await;
    for (alg, expected) in [(Alg::ES256, "ES256"), (Alg::RS256, "RS256")] {
        let c = h.client(alg, TokenFormat::Jwt).await;
        let t = h.token(&c, "&scope=read:things").await;
        for (token, active) in [
            (t["access_token"].as_str().expect("token"), true),
            ("nonsense", false),
        ] {
            let req = http::Request::post("/introspect")
                .header("authorization", c.basic())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/token-introspection+jwt")
                .body(axum::body::Body::from(format!("token={token}")))
                .expect("request");
            let r = h.send(req).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            assert_eq!(
                r.header("content-type"),
                "application/token-introspection+jwt"
            );
            assert_eq!(r.header("cache-control"), "no-store");
            let header = jsonwebtoken::decode_header(&r.text).expect("a JWT");
            assert_eq!(header.typ.as_deref(), Some("token-introspection+jwt"));
            assert_eq!(format!("{:?}", header.alg), expected);
            let claims = h.verified(&r.text).await;
            assert_eq!(claims["iss"], ISSUER);
            assert_eq!(claims["aud"], c.id.as_str());
            assert_eq!(claims["token_introspection"]["active"], active, "{claims}");
            if active {
                assert_eq!(claims["token_introspection"]["scope"], "read:things");
            }
        }
    }
    // Review regressions: a weight of zero is a refusal (RFC 9110 §12.5.1), both answers vary by
    // Accept, and a client that only names itself gets no signed answer.
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let req = http::Request::post("/introspect")
        .header("authorization", c.basic())
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "accept",
            "application/token-introspection+jwt;q=0, application/json",
        )
        .body(axum::body::Body::from("token=nonsense"))
        .expect("request");
    let r = h.send(req).await;
    assert_eq!(r.json["active"], false, "{}", r.text);
    assert_eq!(r.header("vary"), "accept");
    assert_eq!(r.header("pragma"), "no-cache");
    let spa = h
        .web_app(|s| {
            s.client_type = tessera_core::model::ClientType::Spa;
            s.introspection_allowed = Some(true);
        })
        .await;
    let req = http::Request::post("/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/token-introspection+jwt")
        .body(axum::body::Body::from(format!(
            "token=nonsense&client_id={}",
            spa.id
        )))
        .expect("request");
    let r = h.send(req).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "unauthorized_client"),
        "{}",
        r.text
    );

    // Discovery names the algorithms.
    let d = h.get("/.well-known/openid-configuration").await.json;
    assert!(d["introspection_signing_alg_values_supported"]
        .as_array()
        .is_some_and(|a| a.contains(&serde_json::json!("RS256"))));
}

#[tokio::test]
async fn unknown_malformed_expired_tokens_are_inactive() {
    let h = Harness::new().await;
    let jwt = h.client(Alg::RS256, TokenFormat::Jwt).await;
    let opaque = h.client(Alg::RS256, TokenFormat::Opaque).await;
    let t1 = h.access_token(&jwt).await;
    let t2 = h.access_token(&opaque).await;
    for garbage in [
        "nope",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
        &"x".repeat(5000),
    ] {
        assert_eq!(
            h.introspect(&jwt, garbage).await,
            serde_json::json!({"active": false}),
            "{garbage}"
        );
    }
    // A JWT whose header names another algorithm than its key's never verifies.
    let mut parts: Vec<String> = t1.split('.').map(str::to_owned).collect();
    let header: serde_json::Value =
        serde_json::from_slice(&tessera_core::secret::b64url_decode(&parts[0]).expect("b64"))
            .expect("json");
    let forged = serde_json::json!({"alg": "HS256", "kid": header["kid"], "typ": "at+jwt"});
    parts[0] = tessera_core::secret::b64url(forged.to_string().as_bytes());
    assert_eq!(h.introspect(&jwt, &parts.join(".")).await["active"], false);
    // A tampered payload fails the signature.
    let tampered = format!(
        "{}.{}x.{}",
        &parts[0],
        t1.split('.').nth(1).expect("p"),
        t1.split('.').nth(2).expect("s")
    );
    assert_eq!(h.introspect(&jwt, &tampered).await["active"], false);

    h.clock.advance(900);
    assert_eq!(
        h.introspect(&jwt, &t1).await["active"],
        false,
        "expired JWT"
    );
    assert_eq!(
        h.introspect(&jwt, &t2).await["active"],
        false,
        "expired opaque token"
    );
}

#[tokio::test]
async fn introspection_needs_permission_and_authentication() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let t = h.access_token(&c).await;
    let denied = h
        .client_with(ClientSpec {
            introspection_allowed: Some(false),
            ..Harness::spec("no-introspection")
        })
        .await;
    let r = h
        .post("/introspect", Some(&denied.basic()), &format!("token={t}"))
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "unauthorized_client")
    );
    let r = h.post("/introspect", None, &format!("token={t}")).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    let r = h.post("/introspect", Some(&c.basic()), "").await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

#[tokio::test]
async fn revocation_of_jwt_and_opaque_tokens() {
    let h = Harness::new().await;
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let c = h.client(Alg::ES256, format).await;
        let other = h.client(Alg::ES256, format).await;
        let t = h.access_token(&c).await;

        let r = h
            .post("/revoke", Some(&other.basic()), &format!("token={t}"))
            .await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::BAD_REQUEST, "unauthorized_client"),
            "only the client's own tokens"
        );
        assert_eq!(h.introspect(&c, &t).await["active"], true);

        let r = h
            .post(
                "/revoke",
                Some(&c.basic()),
                &format!("token={t}&token_type_hint=refresh_token"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("cache-control"), "no-store");
        assert_eq!(
            h.introspect(&c, &t).await["active"],
            false,
            "{format:?} revoked"
        );
        assert_eq!(
            h.post("/revoke", Some(&c.basic()), &format!("token={t}"))
                .await
                .status,
            StatusCode::OK,
            "twice is fine"
        );
    }
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    assert_eq!(
        h.post("/revoke", Some(&c.basic()), "token=unknown")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        h.post("/revoke", None, "token=unknown").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.post("/revoke", Some(&c.basic()), "").await.error(),
        "invalid_request"
    );
}

#[tokio::test]
async fn revoked_jti_is_forgotten_after_expiry() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let t = h.access_token(&c).await;
    assert_eq!(
        h.post("/revoke", Some(&c.basic()), &format!("token={t}"))
            .await
            .status,
        StatusCode::OK
    );
    let kept = h
        .provider
        .store
        .purge_expired(h.provider.now(), 100)
        .await
        .expect("purge");
    assert_eq!(kept, 0, "remembered until exp");
    h.clock.advance(901);
    assert_eq!(
        h.provider
            .store
            .purge_expired(h.provider.now(), 100)
            .await
            .expect("purge"),
        1,
        "purged after exp"
    );
}

#[tokio::test]
async fn tokens_of_disabled_or_deleted_clients_are_inactive() {
    let h = Harness::new().await;
    // The things API's backend: the tokens are addressed to it.
    let rs = h
        .client_with(ClientSpec {
            client_id: Some(API.into()),
            ..Harness::spec("things backend")
        })
        .await;
    let c = h.client(Alg::ES256, TokenFormat::Opaque).await;
    let t = h.access_token(&c).await;
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .update_client(
            &c.id,
            &ClientPatch {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("disable");
    assert_eq!(h.introspect(&rs, &t).await["active"], false);
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .update_client(
            &c.id,
            &ClientPatch {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("enable");
    assert_eq!(h.introspect(&rs, &t).await["active"], true);
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .delete_client(&c.id)
        .await
        .expect("delete");
    assert_eq!(h.introspect(&rs, &t).await["active"], false);
}

/// RFC 7662 §2.1 leaves to the server which tokens a protected resource may introspect. By
/// default a client introspects the tokens issued to it and those addressed to it as a resource
/// server (an application registered with its API's identifier as client_id); every other token,
/// an administrator's admin-API token included, is `{"active": false}` unless the application
/// was explicitly allowed to introspect any token (administrator only).
#[tokio::test]
async fn clients_introspect_their_own_tokens_and_those_addressed_to_them() {
    let h = crate::admin_api::setup().await;
    let owner = h.client(Alg::ES256, TokenFormat::Opaque).await;
    let stranger = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let theirs = h.access_token(&owner).await;
    assert_eq!(h.introspect(&owner, &theirs).await["active"], true);
    assert_eq!(
        h.introspect(&stranger, &theirs).await,
        serde_json::json!({"active": false})
    );
    // The things API's backend: tokens whose aud is the API are addressed to it.
    let backend = h
        .client_with(ClientSpec {
            client_id: Some(API.into()),
            apis: vec![],
            scopes: vec![],
            ..Harness::spec("things backend")
        })
        .await;
    assert_eq!(h.introspect(&backend, &theirs).await["active"], true);
    // An administrator's token for the admin API is nobody's business but its own client's.
    let admin_token = crate::admin_api::automation(&h, &["administrator"]).await;
    assert_eq!(h.introspect(&stranger, &admin_token).await["active"], false);
    // The wider permission is explicit, and an administrator's to give.
    let config = crate::admin_api::automation(&h, &["config:write"]).await;
    let admin = crate::admin_api::automation(&h, &["administrator"]).await;
    let wide = serde_json::json!({"introspect_any_token": true});
    let path = format!("/applications/{}", stranger.id);
    crate::admin_api::problem(
        &crate::admin_api::call(&h, "PATCH", &path, &config, Some(wide.clone())).await,
        403,
    );
    let r = crate::admin_api::call(&h, "PATCH", &path, &admin, Some(wide)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(h.introspect(&stranger, &theirs).await["active"], true);
}

/// An application signing its own access tokens with HS256 could write one carrying another
/// application's `jti`: revoking it must not revoke that other application's token.
#[tokio::test]
async fn an_hs256_client_cannot_revoke_another_clients_token() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let h = Harness::new().await;
    let victim = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let forger = h
        .client_with(ClientSpec {
            signing_alg: Some(tessera_core::model::JwsAlg::HS256),
            ..Harness::spec("forger")
        })
        .await;
    let token = h.access_token(&victim).await;
    let c = crate::flow::jwt_claims(&token);
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    let forged = jsonwebtoken::encode(
        &header,
        &serde_json::json!({"iss": ISSUER, "sub": forger.id, "aud": API, "client_id": forger.id,
            "iat": c["iat"], "exp": c["exp"], "jti": c["jti"]}),
        &EncodingKey::from_secret(forger.secret.as_bytes()),
    )
    .expect("sign");
    let r = h
        .post("/revoke", Some(&forger.basic()), &format!("token={forged}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        h.introspect(&victim, &token).await["active"],
        true,
        "the victim's token stands"
    );
    // Its own revocation still works.
    let r = h
        .post("/revoke", Some(&victim.basic()), &format!("token={token}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(h.introspect(&victim, &token).await["active"], false);
}
