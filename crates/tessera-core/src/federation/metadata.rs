//! What Tessera reads from an upstream's metadata: an OpenID Connect provider's endpoints, a
//! SAML identity provider's services and certificates.

/// The upstream's endpoints, from its discovery document or its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub issuer: Option<String>,
    pub authorization: String,
    pub token: String,
    pub userinfo: Option<String>,
    pub jwks_uri: Option<String>,
    pub end_session: Option<String>,
    /// RFC 9207: the upstream puts `iss` in its authorization responses.
    pub iss_parameter: bool,
    /// `token_endpoint_auth_signing_alg_values_supported`.
    pub assertion_algs: Vec<String>,
}

/// What Tessera reads from an identity provider's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// The HTTP-Redirect SingleSignOnService.
    pub sso: String,
    /// The HTTP-Redirect SingleLogoutService, when there is one.
    pub slo: Option<String>,
    /// The DER certificates of its signing keys.
    pub certs: Vec<Vec<u8>>,
}
