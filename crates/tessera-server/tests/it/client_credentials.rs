//! The client credentials grant end to end: JWT access tokens (RFC 9068) checked against `/jwks`
//! with an independent library, opaque tokens, scopes, resource indicators (RFC 8707).

use http::StatusCode;
use jsonwebtoken::{decode, decode_header, jwk::Jwk, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tessera_core::admin::ClientSpec;
use tessera_core::model::{Alg, AuthMethod, TokenFormat};

use crate::support::{Harness, API, ISSUER};

fn jwt_alg(alg: Alg) -> Algorithm {
    match alg {
        Alg::RS256 => Algorithm::RS256,
        Alg::PS256 => Algorithm::PS256,
        Alg::ES256 => Algorithm::ES256,
        Alg::EdDSA => Algorithm::EdDSA,
    }
}

/// Verifies a token with `jsonwebtoken` against the key `/jwks` publishes under its `kid`.
async fn verify(h: &Harness, token: &str, alg: Alg, aud: &str) -> Value {
    let header = decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1 typ");
    assert_eq!(header.alg, jwt_alg(alg));
    let jwks = h.get("/jwks").await.json;
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header.kid.clone().expect("kid").as_str())
        .expect("the kid is published");
    let jwk: Jwk = serde_json::from_value(jwk.clone()).expect("jwk");
    let mut v = Validation::new(jwt_alg(alg));
    v.set_audience(&[aud]);
    v.set_issuer(&[ISSUER]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    decode::<Value>(token, &DecodingKey::from_jwk(&jwk).expect("key"), &v)
        .expect("signature and claims verify")
        .claims
}

#[tokio::test]
async fn jwt_tokens_of_every_algorithm_verify_against_jwks() {
    let h = Harness::new().await;
    for alg in Alg::ALL {
        let c = h.client(alg, TokenFormat::Jwt).await;
        let r = h
            .post(
                "/token",
                Some(&c.basic()),
                "grant_type=client_credentials&scope=read:things",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        assert_eq!(r.header("cache-control"), "no-store");
        assert_eq!(r.header("pragma"), "no-cache");
        assert_eq!(r.json["token_type"], "Bearer");
        assert_eq!(r.json["expires_in"], 900);
        assert_eq!(r.json["scope"], "read:things");
        let claims = verify(
            &h,
            r.json["access_token"].as_str().expect("token"),
            alg,
            API,
        )
        .await;
        assert_eq!(claims["sub"], c.id.as_str());
        assert_eq!(claims["client_id"], c.id.as_str());
        assert_eq!(claims["scope"], "read:things");
        assert_eq!(
            claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
            900
        );
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    }
    assert_eq!(
        h.drain_artifacts().await,
        0,
        "the JWT path writes nothing to the store"
    );
}

#[tokio::test]
async fn opaque_tokens_are_256_bit_handles_stored_as_digests() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Opaque).await;
    let t = h.token(&c, "").await;
    let token = t["access_token"].as_str().expect("token");
    assert_eq!(
        token.len(),
        54,
        "a time prefix and 256 random bits, base64url"
    );
    assert!(!token.contains('.'));
    let i = h.introspect(&c, token).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["aud"], API);
    assert_eq!(h.drain_artifacts().await, 1);
}

#[tokio::test]
async fn client_secret_post_and_method_mismatch() {
    let h = Harness::new().await;
    let post = h
        .client_with(ClientSpec {
            auth_method: Some(AuthMethod::ClientSecretPost),
            ..Harness::spec("post")
        })
        .await;
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        post.id, post.secret
    );
    assert_eq!(h.post("/token", None, &body).await.status, StatusCode::OK);
    let r = h
        .post(
            "/token",
            Some(&post.basic()),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    assert!(r.json["error_description"]
        .as_str()
        .is_some_and(|d| d.contains("client_secret_post")));

    let basic = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        basic.id, basic.secret
    );
    let r = h.post("/token", None, &body).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
}

#[tokio::test]
async fn scopes_default_and_escalation() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    assert_eq!(
        h.token(&c, "").await["scope"],
        "read:things write:things",
        "no default marked: all allowed scopes"
    );
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .update_scope(&tessera_core::admin::ScopeSpec {
            name: "read:things".into(),
            default: true,
            ..Default::default()
        })
        .await
        .expect("mark default");
    assert_eq!(
        h.token(&c, "").await["scope"],
        "read:things",
        "default scopes when none is requested"
    );

    h.scope("admin", false).await;
    let r = h
        .post(
            "/token",
            Some(&c.basic()),
            "grant_type=client_credentials&scope=read:things%20admin",
        )
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );
    assert!(r.json["error_description"]
        .as_str()
        .is_some_and(|d| d.contains("admin")));
    let r = h
        .post(
            "/token",
            Some(&c.basic()),
            "grant_type=client_credentials&scope=bad%22quote",
        )
        .await;
    assert_eq!(r.error(), "invalid_scope");
}

#[tokio::test]
async fn resource_indicators_select_the_audience() {
    let h = Harness::new().await;
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .create_api(&tessera_core::admin::ApiSpec {
            identifier: "https://other.example.com".into(),
            ..Default::default()
        })
        .await
        .expect("api");
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    let t = h.token(&c, "&resource=https%3A%2F%2Fapi.example.com").await;
    let claims = verify(
        &h,
        t["access_token"].as_str().expect("token"),
        Alg::ES256,
        API,
    )
    .await;
    assert_eq!(claims["aud"], API);

    let r = h
        .post(
            "/token",
            Some(&c.basic()),
            "grant_type=client_credentials&resource=https%3A%2F%2Fnope.example.com",
        )
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_target")
    );
    let r = h
        .post(
            "/token",
            Some(&c.basic()),
            "grant_type=client_credentials&resource=https%3A%2F%2Fother.example.com",
        )
        .await;
    assert_eq!(
        r.error(),
        "invalid_target",
        "a registered API the client may not use"
    );
    let r = h
        .post(
            "/token",
            Some(&c.basic()),
            "grant_type=client_credentials&resource=not-absolute",
        )
        .await;
    assert_eq!(r.error(), "invalid_target");
}

#[tokio::test]
async fn lifetime_and_migration_with_explicit_credentials() {
    let h = Harness::new().await;
    let spec = ClientSpec {
        client_id: Some("legacy-billing".into()),
        client_secret: Some("a-legacy-secret-of-enough-length".into()),
        access_token_ttl: Some(120),
        ..Harness::spec("legacy")
    };
    let c = h.client_with(spec).await;
    assert_eq!(
        (c.id.as_str(), c.secret.as_str()),
        ("legacy-billing", "a-legacy-secret-of-enough-length")
    );
    assert_eq!(h.token(&c, "").await["expires_in"], 120);
    let bad = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .create_client(&ClientSpec {
            access_token_ttl: Some(86_401),
            ..Harness::spec("x")
        })
        .await;
    assert!(bad.unwrap_err().to_string().contains("access_token_ttl"));
    let short = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .create_client(&ClientSpec {
            client_secret: Some("short".into()),
            ..Harness::spec("x")
        })
        .await;
    assert!(short.unwrap_err().to_string().contains("client_secret"));
}

#[tokio::test]
async fn rotation_and_disabling_take_effect_at_once() {
    let h = Harness::new().await;
    let c = h.client(Alg::ES256, TokenFormat::Jwt).await;
    h.token(&c, "").await;
    let new = h
        .provider
        .admin(tessera_core::admin::Caller::local())
        .rotate_client_secret(&c.id)
        .await
        .expect("rotate");
    let r = h
        .post("/token", Some(&c.basic()), "grant_type=client_credentials")
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_client"),
        "the old secret fails at once"
    );
    let rotated = crate::support::TestClient {
        id: c.id.clone(),
        secret: new.1,
    };
    h.token(&rotated, "").await;

    let patch = tessera_core::admin::ClientPatch {
        enabled: Some(false),
        ..Default::default()
    };
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .update_client(&c.id, &patch)
        .await
        .expect("disable");
    let r = h
        .post(
            "/token",
            Some(&rotated.basic()),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
}

#[tokio::test]
async fn scopes_must_fit_the_requested_resource() {
    let h = Harness::new().await;
    h.provider
        .admin(tessera_core::admin::Caller::local())
        .create_api(&tessera_core::admin::ApiSpec {
            identifier: "https://billing.example.com".into(),
            name: "Billing".into(),
            scopes: vec!["billing:read".into()],
        })
        .await
        .expect("api");
    let both = ClientSpec {
        apis: vec![API.into(), "https://billing.example.com".into()],
        scopes: vec!["read:things".into(), "billing:read".into()],
        ..Harness::spec("both")
    };
    let c = h.client_with(both).await;
    let r = h.post("/token", Some(&c.basic()), "grant_type=client_credentials&resource=https%3A%2F%2Fapi.example.com&scope=billing:read").await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_scope"),
        "another API's scope"
    );
    let t = h.token(&c, "&resource=https%3A%2F%2Fapi.example.com").await;
    assert_eq!(
        t["scope"], "read:things",
        "defaults are limited to the audience's scopes"
    );
    let t = h.token(&c, "").await;
    assert_eq!(
        t["scope"], "read:things billing:read",
        "both APIs are the audience without resource"
    );
}
