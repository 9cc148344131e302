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
        d["grant_types_supported"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert!(
        d.get("authorization_endpoint").is_none(),
        "not implemented yet, so not advertised"
    );
    assert_eq!(
        d["scopes_supported"],
        serde_json::json!(["read:things", "write:things"])
    );
}
