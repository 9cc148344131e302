//! Authorization server metadata (RFC 8414 §2) and OpenID Provider metadata (OIDC Discovery §3),
//! derived from settings: only what is implemented is advertised.

use serde_json::{json, Value};

use crate::model::{Alg, AuthMethod, GrantType};
use crate::provider::Provider;

impl Provider {
    /// The same document serves `/.well-known/openid-configuration` and
    /// `/.well-known/oauth-authorization-server`.
    pub fn discovery(&self) -> Value {
        let s = &self.settings;
        let auth_methods: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.as_str()).collect();
        let algs: Vec<&str> = Alg::ALL
            .iter()
            .filter(|a| s.keys.algorithms.contains(a))
            .map(|a| a.as_str())
            .collect();
        json!({
            "issuer": s.issuer,
            "token_endpoint": s.endpoint("/token"),
            "jwks_uri": s.endpoint("/jwks"),
            "introspection_endpoint": s.endpoint("/introspect"),
            "revocation_endpoint": s.endpoint("/revoke"),
            "grant_types_supported": [GrantType::ClientCredentials.as_str()],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "scopes_supported": self.scope_names(),
            "access_token_signing_alg_values_supported": algs,
        })
    }
}
