//! What administrators are shown: typed read views of applications, users and signing keys.
//! They have no field for a secret (a client secret's ciphertext, a password hash, a private
//! key), so no serialiser can leak one; the OpenAPI schemas are generated from these types.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::keys::{KeyState, PUBLISH_AFTER_RETIREMENT};
use crate::model::{
    AuthMethod, BrowserSettings, Client, ClientType, Federation, GrantType, JwsAlg, KeyRecord,
    MutualTls, OAuthPolicy, ResponseProtection, SecurityProfile, TokenFormat, User,
};
use crate::provider::Provider;

/// An application (OAuth client) as administrators see it: never its secret, only whether it
/// has one; where its logo is served, when it has one.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ApplicationView {
    pub client_id: String,
    pub name: String,
    pub description: String,
    pub client_type: ClientType,
    pub enabled: bool,
    pub grant_types: Vec<GrantType>,
    pub auth_method: AuthMethod,
    pub scopes: Vec<String>,
    pub apis: Vec<String>,
    pub token_format: TokenFormat,
    pub signing_alg: JwsAlg,
    pub access_token_ttl: i64,
    pub introspection_allowed: bool,
    /// May introspect any token, not only its own and those addressed to it.
    pub introspect_any_token: bool,
    /// Seconds a rotated refresh token may be retried for the same answer (0: never).
    pub refresh_grace_secs: i64,
    pub oauth_policy: OAuthPolicy,
    pub profile: Option<SecurityProfile>,
    /// The signing key its tokens are pinned to, if any.
    pub signing_kid: Option<String>,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// Whether the application has a client secret (shown once, when set).
    pub has_secret: bool,
    /// Where the logo is served, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(flatten)]
    pub browser: BrowserSettings,
    #[serde(flatten)]
    pub federation: Federation,
    #[serde(flatten)]
    pub protection: ResponseProtection,
    #[serde(flatten)]
    pub mtls: MutualTls,
    #[serde(flatten)]
    pub backchannel: crate::model::Backchannel,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ApplicationView {
    pub fn of(p: &Provider, c: &Client) -> ApplicationView {
        ApplicationView {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            client_type: c.client_type,
            enabled: c.enabled,
            grant_types: c.grant_types.clone(),
            auth_method: c.auth_method,
            scopes: c.scopes.clone(),
            apis: c.apis.clone(),
            token_format: c.token_format,
            signing_alg: c.signing_alg,
            access_token_ttl: c.access_token_ttl,
            introspection_allowed: c.introspection_allowed,
            introspect_any_token: c.introspect_any_token,
            refresh_grace_secs: c.refresh_grace_secs,
            oauth_policy: c.oauth_policy,
            profile: c.profile,
            signing_kid: c.signing_kid.clone(),
            dpop_bound_access_tokens: c.dpop_bound_access_tokens,
            has_secret: c.secret_ciphertext.is_some(),
            logo_uri: p.logo_uri(c),
            browser: c.browser.clone(),
            federation: c.federation.clone(),
            protection: c.protection.clone(),
            mtls: c.mtls.clone(),
            backchannel: c.backchannel.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A user as administrators see it: never the password hash, only whether there is a password.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    /// OIDC Core §5.1 standard claims.
    pub claims: Map<String, Value>,
    pub attributes: Map<String, Value>,
    pub groups: Vec<String>,
    pub blocked: bool,
    pub has_password: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&User> for UserView {
    fn from(u: &User) -> UserView {
        UserView {
            id: u.id.clone(),
            username: u.username.clone(),
            claims: u.claims.clone(),
            attributes: u.attributes.clone(),
            groups: u.groups.clone(),
            blocked: u.blocked,
            has_password: u.password_hash.is_some(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A signing key: its public parts, its window, and where it is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct KeyView {
    pub kid: String,
    pub alg: crate::model::Alg,
    pub state: KeyState,
    /// Seed 002 "Used From".
    pub not_before: Timestamp,
    /// Seed 002 "Used Until".
    pub not_after: Timestamp,
    /// Published in the JWKS until then, for the tokens it signed.
    pub published_until: Timestamp,
    /// The certificate chain, leaf first (base64 DER, as in `x5c`).
    pub x5c: Vec<String>,
    pub created_at: Timestamp,
}

impl KeyView {
    pub fn of(k: &KeyRecord, now: Timestamp) -> KeyView {
        KeyView {
            kid: k.kid.clone(),
            alg: k.alg,
            state: k.state(now),
            not_before: k.not_before,
            not_after: k.not_after,
            published_until: k.not_after.plus(PUBLISH_AFTER_RETIREMENT),
            x5c: k.x5c.clone(),
            created_at: k.created_at,
        }
    }
}
