//! Authorization server metadata (RFC 8414 §2) and OpenID Provider metadata (OIDC Discovery §3),
//! derived from settings: only what is implemented is advertised.

use serde_json::{json, Value};

use crate::claims::{scope_claims, PROTOCOL_CLAIMS};
use crate::model::{Alg, AuthMethod, ContentEncryption, GrantType, KeyManagement};
use crate::provider::Provider;
use crate::response_type::RESPONSE_TYPES;

/// The JWS algorithms of client assertions and request objects: HS256 with the client secret, the rest for
/// the client's registered keys (RFC 7518 §3.1; `none` never).
const ASSERTION_ALGS: [&str; 10] = [
    "HS256", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl Provider {
    /// The same document serves `/.well-known/openid-configuration` and
    /// `/.well-known/oauth-authorization-server`.
    pub fn discovery(&self) -> Value {
        let s = &self.settings;
        // RFC 8705: the certificate methods only when client certificates reach Tessera, and
        // tls_client_auth only with CAs to validate them against.
        let offered = |m: &&AuthMethod| match m {
            AuthMethod::TlsClientAuth => s.mtls.enabled && !s.mtls.trust_anchors.is_empty(),
            AuthMethod::SelfSignedTlsClientAuth => s.mtls.enabled,
            _ => true,
        };
        let auth_methods: Vec<&str> = AuthMethod::ALL
            .iter()
            .filter(offered)
            .map(|m| m.as_str())
            .collect();
        let secret_methods: Vec<&str> = AuthMethod::ALL
            .iter()
            .filter(offered)
            .filter(|m| **m != AuthMethod::None)
            .map(|m| m.as_str())
            .collect();
        let algs: Vec<&str> = Alg::ALL
            .iter()
            .filter(|a| s.keys.algorithms.contains(a))
            .map(|a| a.as_str())
            .collect();
        let mut id_token_algs = algs.clone();
        id_token_algs.push("HS256");
        let mut pkce_methods = vec!["S256"];
        if s.pkce_plain {
            pkce_methods.push("plain");
        }
        let mut grants: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
        // OIDC Discovery §3: implicit, for the response types that return tokens.
        grants.push("implicit");
        let mut claims: Vec<String> = PROTOCOL_CLAIMS.iter().map(|c| (*c).to_owned()).collect();
        for scope in ["profile", "email", "address", "phone"] {
            for c in scope_claims(scope) {
                if !claims.iter().any(|x| x == c) {
                    claims.push((*c).to_owned());
                }
            }
        }
        for c in self.custom_claim_names() {
            if !claims.contains(&c) {
                claims.push(c);
            }
        }
        let enc_algs: Vec<&str> = KeyManagement::ALL.iter().map(|a| a.as_str()).collect();
        let encrypts = s.keys.algorithms.contains(&Alg::ES256);
        let request_enc_algs: Vec<&str> = if encrypts {
            vec!["ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW"]
        } else {
            Vec::new()
        };
        let request_enc_encs: Vec<&str> = if encrypts {
            ContentEncryption::ALL.iter().map(|e| e.as_str()).collect()
        } else {
            Vec::new()
        };
        let enc_encs: Vec<&str> = ContentEncryption::ALL.iter().map(|e| e.as_str()).collect();
        let mut doc = json!({
            "issuer": s.issuer,
            "authorization_endpoint": s.endpoint("/authorize"),
            "token_endpoint": s.endpoint("/token"),
            "userinfo_endpoint": s.endpoint("/userinfo"),
            "jwks_uri": s.endpoint("/jwks"),
            "introspection_endpoint": s.endpoint("/introspect"),
            "revocation_endpoint": s.endpoint("/revoke"),
            // RFC 9126 §5.
            "pushed_authorization_request_endpoint": s.endpoint("/par"),
            "require_pushed_authorization_requests": s.require_pushed_requests,
            "end_session_endpoint": s.endpoint("/logout"),
            "check_session_iframe": s.endpoint("/check_session"),
            "frontchannel_logout_supported": true,
            "frontchannel_logout_session_supported": true,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "grant_types_supported": grants,
            "response_types_supported": RESPONSE_TYPES,
            // JARM §3: the JWT modes too.
            "response_modes_supported": [
                "query", "fragment", "form_post", "jwt", "query.jwt", "fragment.jwt", "form_post.jwt"
            ],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": id_token_algs,
            "token_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_methods_supported": secret_methods,
            // RFC 9701 §6: the signed answer's algorithms (the application's JWT algorithm).
            "introspection_signing_alg_values_supported": algs,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "code_challenge_methods_supported": pkce_methods,
            "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
            "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
            "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
            "scopes_supported": self.scope_names(),
            "claims_supported": claims,
            "claims_parameter_supported": true,
            // RFC 9101: signed request objects by value (`request`), also pushed.
            "request_parameter_supported": true,
            "request_object_signing_alg_values_supported": ASSERTION_ALGS,
            // RFC 9101 §5.2: by reference, from URLs the application registered.
            "request_uri_parameter_supported": true,
            "require_request_uri_registration": true,
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "acr_values_supported": self.acr_values(),
            "claim_types_supported": ["normal"],
            "authorization_response_iss_parameter_supported": true,
            "access_token_signing_alg_values_supported": id_token_algs,
        });
        // RFC 9449 §5.1.
        doc["dpop_signing_alg_values_supported"] = json!(crate::dpop::DPOP_ALGS);
        // RFC 8628 §4.
        doc["device_authorization_endpoint"] = json!(s.endpoint("/device_authorization"));
        // RFC 7591 §3, RFC 8414 §2: only when registration is enabled.
        if s.registration.enabled {
            doc["registration_endpoint"] = json!(s.endpoint("/register"));
        }
        // OpenID CIBA Core §4.
        doc["backchannel_authentication_endpoint"] = json!(s.endpoint("/bc-authorize"));
        doc["backchannel_token_delivery_modes_supported"] = json!(["poll", "ping"]);
        doc["backchannel_user_code_parameter_supported"] = json!(false);
        // JARM §3 and OIDC Discovery §3: signed and encrypted responses (JWE to the
        // application's keys).
        let protection = json!({
            // RFC 9101 §6.1: encrypted to Tessera's ECDH-ES keys (with its ES256 keys).
            "request_object_encryption_alg_values_supported": request_enc_algs,
            "request_object_encryption_enc_values_supported": request_enc_encs,
            "authorization_signing_alg_values_supported": id_token_algs,
            "authorization_encryption_alg_values_supported": enc_algs,
            "authorization_encryption_enc_values_supported": enc_encs,
            "id_token_encryption_alg_values_supported": enc_algs,
            "id_token_encryption_enc_values_supported": enc_encs,
            "userinfo_signing_alg_values_supported": id_token_algs,
            "userinfo_encryption_alg_values_supported": enc_algs,
            "userinfo_encryption_enc_values_supported": enc_encs,
            "introspection_encryption_alg_values_supported": enc_algs,
            "introspection_encryption_enc_values_supported": enc_encs,
        });
        if let (Some(d), Value::Object(p)) = (doc.as_object_mut(), protection) {
            d.extend(p);
        }
        if s.mtls.enabled {
            // RFC 8705 §3.3.
            doc["tls_client_certificate_bound_access_tokens"] = json!(true);
            // RFC 8705 §5: where the endpoints are reached with mutual TLS, when elsewhere.
            if s.mtls.endpoint_base.is_some() {
                doc["mtls_endpoint_aliases"] = json!({
                    "token_endpoint": s.mtls_alias("/token"),
                    "revocation_endpoint": s.mtls_alias("/revoke"),
                    "introspection_endpoint": s.mtls_alias("/introspect"),
                    "userinfo_endpoint": s.mtls_alias("/userinfo"),
                    "pushed_authorization_request_endpoint": s.mtls_alias("/par"),
                });
            }
        }
        doc
    }
}
