//! Discovery documents (RFC 8414, OIDC Discovery): derived from settings, only what is implemented.

use http::StatusCode;

use crate::support::{Harness, ISSUER};

#[tokio::test]
async fn both_documents_describe_the_implemented_endpoints() {
    let h = Harness::new().await;
    let oidc = h.get("/.well-known/openid-configuration").await;
    let oauth = h.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(oidc.status, StatusCode::OK);
    assert_eq!(oidc.json, oauth.json);
    let d = oidc.json;
    assert_eq!(d["issuer"], ISSUER);
    assert_eq!(d["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(d["jwks_uri"], format!("{ISSUER}/jwks"));
    assert_eq!(d["introspection_endpoint"], format!("{ISSUER}/introspect"));
    assert_eq!(d["revocation_endpoint"], format!("{ISSUER}/revoke"));
    assert_eq!(
        d["pushed_authorization_request_endpoint"],
        format!("{ISSUER}/par")
    );
    assert_eq!(d["require_pushed_authorization_requests"], false);
    assert_eq!(
        d["device_authorization_endpoint"],
        format!("{ISSUER}/device_authorization")
    );
    assert_eq!(
        d["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "password",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:saml2-bearer",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:openid:params:grant-type:ciba",
            "implicit"
        ])
    );
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none"
        ])
    );
    assert_eq!(
        d["introspection_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt"
        ])
    );
    let algs = d["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(
        algs.contains(&serde_json::json!("ES256")) && !algs.contains(&serde_json::json!("none"))
    );
    for (k, path) in [
        ("authorization_endpoint", "/authorize"),
        ("userinfo_endpoint", "/userinfo"),
        ("end_session_endpoint", "/logout"),
        ("check_session_iframe", "/check_session"),
    ] {
        assert_eq!(d[k], format!("{ISSUER}{path}"), "{k}");
    }
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        d["response_modes_supported"],
        serde_json::json!([
            "query",
            "fragment",
            "form_post",
            "jwt",
            "query.jwt",
            "fragment.jwt",
            "form_post.jwt"
        ])
    );
    assert_eq!(
        d["subject_types_supported"],
        serde_json::json!(["public", "pairwise"])
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert!(d["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("HS256")));
    assert!(d["claims_supported"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("email")));
    assert!(d["response_types_supported"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("code id_token token")));
    // The OpenID scopes and every discoverable scope (seed 003).
    assert_eq!(
        d["scopes_supported"],
        serde_json::json!([
            "address",
            "email",
            "offline_access",
            "openid",
            "phone",
            "profile",
            "read:things",
            "write:things"
        ])
    );
}
