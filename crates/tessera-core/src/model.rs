//! The domain (DESIGN §6): applications (clients), APIs (resource servers), scopes, signing-key
//! records and short-lived artifacts. Constructors and `validate` keep every value in range.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// Seed 000 "Application Type".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Regular Web App: confidential, authorization code.
    Web,
    /// Machine to machine: confidential, client credentials.
    M2m,
    /// Single page application: public, authorization code + PKCE.
    Spa,
    /// Native application: public, authorization code + PKCE.
    Native,
}

impl ClientType {
    pub fn is_confidential(self) -> bool {
        matches!(self, ClientType::Web | ClientType::M2m)
    }
    pub fn parse(s: &str) -> Option<ClientType> {
        match s {
            "web" => Some(ClientType::Web),
            "m2m" => Some(ClientType::M2m),
            "spa" => Some(ClientType::Spa),
            "native" => Some(ClientType::Native),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Web => "web",
            ClientType::M2m => "m2m",
            ClientType::Spa => "spa",
            ClientType::Native => "native",
        }
    }
}

/// The grant types a client may use (RFC 6749 §4, the `grant_type` values Tessera implements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    ClientCredentials,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
        }
    }
    pub fn parse(s: &str) -> Option<GrantType> {
        match s {
            "client_credentials" => Some(GrantType::ClientCredentials),
            _ => None,
        }
    }
}

/// RFC 7591 §2 `token_endpoint_auth_method` values Tessera implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 2] = [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost];
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
        }
    }
    pub fn parse(s: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// Seed 001 "Access Token Type".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    Jwt,
    Opaque,
}

impl TokenFormat {
    pub fn parse(s: &str) -> Option<TokenFormat> {
        match s {
            "jwt" => Some(TokenFormat::Jwt),
            "opaque" => Some(TokenFormat::Opaque),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Jwt => "jwt",
            TokenFormat::Opaque => "opaque",
        }
    }
}

/// JWS algorithms (RFC 7518 §3, RFC 8037 §3.1) Tessera signs with. `none` does not exist here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Alg {
    RS256,
    PS256,
    ES256,
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 4] = [Alg::RS256, Alg::PS256, Alg::ES256, Alg::EdDSA];
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::PS256 => "PS256",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
        }
    }
    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Lifetime ranges from seed 004: access and ID tokens 1-1440 minutes, refresh tokens 1-365 days.
pub const ACCESS_TOKEN_TTL_RANGE: (i64, i64) = (60, 86_400);
pub const REFRESH_TOKEN_TTL_RANGE: (i64, i64) = (86_400, 365 * 86_400);
pub const ID_TOKEN_TTL_RANGE: (i64, i64) = (60, 86_400);
pub const CODE_TTL_RANGE: (i64, i64) = (10, 600);

/// An application integration (OAuth client).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub client_type: ClientType,
    pub enabled: bool,
    pub grant_types: Vec<GrantType>,
    pub auth_method: AuthMethod,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// Identifiers of the APIs (resource servers) the client may obtain tokens for.
    pub apis: Vec<String>,
    pub token_format: TokenFormat,
    pub signing_alg: Alg,
    /// Access-token lifetime in seconds.
    pub access_token_ttl: i64,
    /// Seed 003 "Allowed Flows: Introspection".
    pub introspection_allowed: bool,
    /// AES-256-GCM ciphertext of the client secret (base64url), never the secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ciphertext: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An API (resource server): its identifier becomes the `aud` of tokens issued for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Api {
    pub identifier: String,
    pub name: String,
    /// Names of the scopes this API defines.
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A scope: a permission a client may request (RFC 6749 §3.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    /// Granted when a request names no scope (seed 001 "Is Default?").
    #[serde(default)]
    pub default: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A signing key as stored: public parts in clear, the PKCS#8 private key encrypted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: Alg,
    /// DER certificates, leaf first (base64 standard, as in `x5c`).
    pub x5c: Vec<String>,
    /// AES-256-GCM ciphertext of the PKCS#8 private key (base64url).
    pub private_ciphertext: String,
    /// Seed 002 "Used From": the key signs from here.
    pub not_before: Timestamp,
    /// Seed 002 "Used Until": the key signs no more from here; it stays published for verification.
    pub not_after: Timestamp,
    pub created_at: Timestamp,
}

/// Kinds of short-lived artifacts in the `artifacts` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    AccessToken,
    RevokedJti,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::AccessToken => "access_token",
            ArtifactKind::RevokedJti => "revoked_jti",
        }
    }
}

/// The store key of an artifact: an 8-byte time-ordered prefix, then the SHA-256 of the secret
/// handle (DESIGN §2). The prefix makes inserts append to the B-tree instead of landing on random
/// pages, which doubles SQLite's write throughput; it reveals only when the handle was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArtifactKey(pub [u8; 40]);

impl ArtifactKey {
    pub fn new(prefix: [u8; 8], digest: [u8; 32]) -> ArtifactKey {
        let mut k = [0u8; 40];
        k[..8].copy_from_slice(&prefix);
        k[8..].copy_from_slice(&digest);
        ArtifactKey(k)
    }
}

/// A short-lived artifact (DESIGN §2): never the handle itself, only its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub key: ArtifactKey,
    pub kind: ArtifactKind,
    pub client_id: String,
    pub grant_id: Option<String>,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// JSON payload: what introspection reports for a token.
    pub payload: serde_json::Value,
}
