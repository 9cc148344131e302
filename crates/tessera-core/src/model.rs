//! The domain (DESIGN §6): applications (clients), APIs (resource servers), scopes, signing-key
//! records and short-lived artifacts. Constructors and `validate` keep every value in range.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// Seed 000 "Application Type".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    ClientCredentials,
    AuthorizationCode,
    RefreshToken,
    /// RFC 6749 §4.3, seed 001 "Resource Owner Credential Grant".
    Password,
    /// RFC 8693.
    TokenExchange,
    /// RFC 7523 §2.1.
    JwtBearer,
    /// RFC 7522 §2.1: a SAML 2.0 assertion of an identity provider the client is allowed.
    Saml2Bearer,
    /// RFC 8628: a device without a browser has its user sign in elsewhere.
    DeviceCode,
    /// OpenID CIBA Core 1.0: the application names the user, who approves elsewhere.
    Ciba,
}

impl GrantType {
    pub const ALL: [GrantType; 9] = [
        GrantType::AuthorizationCode,
        GrantType::ClientCredentials,
        GrantType::RefreshToken,
        GrantType::Password,
        GrantType::TokenExchange,
        GrantType::JwtBearer,
        GrantType::Saml2Bearer,
        GrantType::DeviceCode,
        GrantType::Ciba,
    ];
    /// The `grant_type` value at the token endpoint.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::Password => "password",
            GrantType::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            GrantType::JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer",
            GrantType::Saml2Bearer => "urn:ietf:params:oauth:grant-type:saml2-bearer",
            GrantType::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            GrantType::Ciba => "urn:openid:params:grant-type:ciba",
        }
    }
    /// The short name in configuration (`token_exchange`, `jwt_bearer`, …).
    pub fn name(self) -> &'static str {
        match self {
            GrantType::TokenExchange => "token_exchange",
            GrantType::JwtBearer => "jwt_bearer",
            GrantType::Saml2Bearer => "saml2_bearer",
            GrantType::DeviceCode => "device_code",
            GrantType::Ciba => "ciba",
            other => other.as_str(),
        }
    }
    /// By `grant_type` value or short name.
    pub fn parse(s: &str) -> Option<GrantType> {
        GrantType::ALL
            .into_iter()
            .find(|g| g.as_str() == s || g.name() == s)
    }
}

/// RFC 7591 §2 `token_endpoint_auth_method` values Tessera implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 §2.2 with an HMAC of the client secret (OIDC Core §9).
    ClientSecretJwt,
    /// RFC 7523 §2.2 signed with the client's own key (`jwks` or `jwks_uri`).
    PrivateKeyJwt,
    /// A public client (RFC 6749 §2.1): it sends its client_id and proves nothing else.
    None,
    /// RFC 8705 §2.1: a client certificate issued by a trusted CA, matched by subject DN or SAN.
    TlsClientAuth,
    /// RFC 8705 §2.2: a self-signed client certificate whose key is in the client's `jwks`.
    SelfSignedTlsClientAuth,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 7] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::ClientSecretJwt,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::None,
        AuthMethod::TlsClientAuth,
        AuthMethod::SelfSignedTlsClientAuth,
    ];

    /// Whether the method authenticates with the TLS client certificate (RFC 8705 §2).
    pub fn is_certificate(self) -> bool {
        matches!(
            self,
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretJwt => "client_secret_jwt",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
            AuthMethod::TlsClientAuth => "tls_client_auth",
            AuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }
    pub fn parse(s: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// Seed 001 "Access Token Type".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    PartialOrd,
    Ord,
    schemars::JsonSchema,
)]
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

/// The algorithm of an application's JWTs (seeds 001, 003): one of the signing-key algorithms,
/// or HS256 with the client's own secret (OIDC Core §10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum JwsAlg {
    Key(Alg),
    HS256,
}

impl JwsAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlg::Key(a) => a.as_str(),
            JwsAlg::HS256 => "HS256",
        }
    }
    pub fn parse(s: &str) -> Option<JwsAlg> {
        match s {
            "HS256" => Some(JwsAlg::HS256),
            other => Alg::parse(other).map(JwsAlg::Key),
        }
    }
}

impl TryFrom<String> for JwsAlg {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        JwsAlg::parse(&s).ok_or_else(|| format!("unknown ID token algorithm {s}"))
    }
}

/// RFC 7518 §4.1: how a JWE's content key reaches the recipient (the `alg` Tessera encrypts
/// responses to an application with, its `*_encrypted_response_alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum KeyManagement {
    #[serde(rename = "RSA-OAEP-256")]
    RsaOaep256,
    #[serde(rename = "ECDH-ES")]
    EcdhEs,
    #[serde(rename = "ECDH-ES+A128KW")]
    EcdhEsA128Kw,
    #[serde(rename = "ECDH-ES+A256KW")]
    EcdhEsA256Kw,
}

impl KeyManagement {
    pub const ALL: [KeyManagement; 4] = [
        KeyManagement::RsaOaep256,
        KeyManagement::EcdhEs,
        KeyManagement::EcdhEsA128Kw,
        KeyManagement::EcdhEsA256Kw,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            KeyManagement::RsaOaep256 => "RSA-OAEP-256",
            KeyManagement::EcdhEs => "ECDH-ES",
            KeyManagement::EcdhEsA128Kw => "ECDH-ES+A128KW",
            KeyManagement::EcdhEsA256Kw => "ECDH-ES+A256KW",
        }
    }
    pub fn parse(s: &str) -> Option<KeyManagement> {
        KeyManagement::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// RFC 7518 §5.1: how a JWE's content is encrypted (`*_encrypted_response_enc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ContentEncryption {
    #[serde(rename = "A128GCM")]
    A128Gcm,
    #[serde(rename = "A256GCM")]
    A256Gcm,
    #[serde(rename = "A128CBC-HS256")]
    A128CbcHs256,
    #[serde(rename = "A256CBC-HS512")]
    A256CbcHs512,
}

impl ContentEncryption {
    pub const ALL: [ContentEncryption; 4] = [
        ContentEncryption::A128Gcm,
        ContentEncryption::A256Gcm,
        ContentEncryption::A128CbcHs256,
        ContentEncryption::A256CbcHs512,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ContentEncryption::A128Gcm => "A128GCM",
            ContentEncryption::A256Gcm => "A256GCM",
            ContentEncryption::A128CbcHs256 => "A128CBC-HS256",
            ContentEncryption::A256CbcHs512 => "A256CBC-HS512",
        }
    }
    pub fn parse(s: &str) -> Option<ContentEncryption> {
        ContentEncryption::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// On the wire a JWS algorithm is its name.
impl schemars::JsonSchema for JwsAlg {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "JwsAlg".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "enum": ["RS256", "PS256", "ES256", "EdDSA", "HS256"]
        })
    }
}

impl From<JwsAlg> for String {
    fn from(a: JwsAlg) -> String {
        a.as_str().to_owned()
    }
}

/// Seed 003 "Auto Accept User Consent": whether users are asked before an application gets scopes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentMode {
    #[default]
    Explicit,
    AutoAccept,
}

/// OIDC Core §8: the same `sub` for every application, or one per application (pairwise).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SubjectType {
    #[default]
    Public,
    Pairwise,
}

/// Lifetime ranges from seed 004: access and ID tokens 1-1440 minutes, refresh tokens 1-365 days.
pub const ACCESS_TOKEN_TTL_RANGE: (i64, i64) = (60, 86_400);
pub const REFRESH_TOKEN_TTL_RANGE: (i64, i64) = (86_400, 365 * 86_400);
pub const ID_TOKEN_TTL_RANGE: (i64, i64) = (60, 86_400);
pub const CODE_TTL_RANGE: (i64, i64) = (10, 600);

/// The authentication scheme of an application that names none: a password
/// ([`crate::scheme`] owns the schemes).
pub const DEFAULT_SCHEME: &str = "password";

/// An application integration (OAuth client).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The JWS algorithm of JWT access tokens: a signing-key algorithm, or HS256 with the
    /// client's own secret (seed 001).
    pub signing_alg: JwsAlg,
    /// Access-token lifetime in seconds.
    pub access_token_ttl: i64,
    /// Seed 003 "Allowed Flows: Introspection": of the tokens issued to it and those addressed to
    /// it (its client_id is the identifier of the API it serves).
    pub introspection_allowed: bool,
    /// May introspect any token (RFC 7662 §2.1 leaves it to the server): an explicit permission,
    /// given only by an administrator.
    #[serde(default)]
    pub introspect_any_token: bool,
    /// RFC 9700 §4.14.2: seconds during which a just-rotated refresh token, presented again,
    /// answers with the very same new pair instead of counting as reuse (a retry after a lost
    /// response). 0, the default, detects every reuse; never for public clients, whose refresh
    /// tokens are not sender-constrained.
    #[serde(default)]
    pub refresh_grace_secs: i64,
    /// Seed 001 "OAuth Policy": the rules of OAuth 2.0, or the stricter ones of OAuth 2.1.
    #[serde(default)]
    pub oauth_policy: OAuthPolicy,
    /// A security profile the application follows (FAPI 2.0), on top of its OAuth policy.
    #[serde(default)]
    pub profile: Option<SecurityProfile>,
    /// Seed 000 "Certificate": the one signing key (by `kid`) its ID tokens and access tokens
    /// are signed with, within that key's window; none: the current key of the algorithm.
    #[serde(default)]
    pub signing_kid: Option<String>,
    /// RFC 9449 §5.2 `dpop_bound_access_tokens`: every token request must carry a DPoP proof,
    /// so all its access tokens are DPoP-bound.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// AES-256-GCM ciphertext of the client secret (base64url), never the secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ciphertext: Option<String>,
    #[serde(flatten)]
    pub browser: BrowserSettings,
    #[serde(flatten)]
    pub federation: Federation,
    #[serde(flatten)]
    pub protection: ResponseProtection,
    #[serde(flatten)]
    pub mtls: MutualTls,
    #[serde(flatten)]
    pub backchannel: Backchannel,
    /// The version of the application's logo (a digest of the image) when it has one; the image
    /// itself is a [`Logo`] record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An application's logo (seed 000: "visible in the applications list and on the authentication
/// pages"): a PNG, JPEG, GIF or WebP image of at most [`Logo::MAX_BYTES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logo {
    pub client_id: String,
    pub content_type: String,
    /// The image, base64url.
    pub data: String,
    pub updated_at: Timestamp,
}

impl Logo {
    pub const MAX_BYTES: usize = 256 * 1024;
}

/// Keys and trust beyond the client secret: the client's own keys (private_key_jwt), the
/// issuers whose JWTs it may present (JWT bearer, token exchange), and exchange policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Federation {
    /// The client's public keys (RFC 7517 JWK Set), for private_key_jwt.
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its keys, for private_key_jwt.
    pub jwks_uri: Option<String>,
    /// Seed 001 "Token Exchange Allowed IDPs"; also the JWT bearer grant's issuers.
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// RFC 8693 §1.1: may exchange without an actor token (impersonation).
    pub impersonation_allowed: bool,
    /// Seed 001 "Token Exchange Policy Workflow": a URL the exchange context is POSTed to.
    pub exchange_policy_url: Option<String>,
    /// RFC 7523 §3: what an assertion's `sub` names: a user (by id or username), or the client.
    pub jwt_bearer_subject: JwtBearerSubject,
    /// Seed 002 "Allowed IDPs": upstream identity providers (by name) whose ID tokens the client
    /// may exchange (RFC 8693) for tokens of the user they name here.
    pub exchange_identity_providers: Vec<String>,
}

/// Seed 001 "OAuth Policy".
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum OAuthPolicy {
    /// OAuth 2.0 (RFC 6749 and its extensions) as each setting allows.
    #[default]
    #[serde(rename = "2.0")]
    V2_0,
    /// OAuth 2.1 (draft-ietf-oauth-v2-1): PKCE with S256 for every client, only the `code`
    /// response type, no password grant; exact redirect URIs, rotated refresh tokens and bearer
    /// tokens never in a query string are Tessera's rules anyway.
    #[serde(rename = "2.1")]
    V2_1,
}

/// A security profile an application follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum SecurityProfile {
    /// FAPI 2.0 Security Profile: OAuth 2.1's rules, and PAR required, a confidential client
    /// authenticating with `private_key_jwt`, authorization codes of at most 60 s, and only
    /// PS256, ES256 or EdDSA signatures (its tokens, its assertions and request objects).
    #[serde(rename = "fapi2")]
    Fapi2,
}

impl Client {
    /// OAuth 2.1 §4.1.1 / FAPI 2.0 §5.3.2.2: PKCE with S256 only.
    pub fn s256_only(&self) -> bool {
        self.oauth_policy == OAuthPolicy::V2_1 || self.profile == Some(SecurityProfile::Fapi2)
    }
    /// FAPI 2.0 §5.4.1: the JWS algorithms the application's JWTs, and those it sends, may use.
    pub fn fapi2(&self) -> bool {
        self.profile == Some(SecurityProfile::Fapi2)
    }
}

/// FAPI 2.0 §5.4.1: the signature algorithms a FAPI 2.0 application's JWTs may use.
pub const FAPI2_ALGS: [Alg; 3] = [Alg::PS256, Alg::ES256, Alg::EdDSA];

/// How Tessera protects what it answers an application beyond TLS: signed and encrypted (JWE)
/// responses, by the names of OpenID Connect Dynamic Client Registration §2, JARM §3 and
/// RFC 9701 §6. Encryption is to the application's own keys (`jwks` or `jwks_uri`, seed 003); an
/// `*_alg` without its `*_enc` encrypts with A128CBC-HS256 (OIDC Registration §2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ResponseProtection {
    /// ID tokens: signed, then encrypted.
    pub id_token_encrypted_response_alg: Option<KeyManagement>,
    pub id_token_encrypted_response_enc: Option<ContentEncryption>,
    /// The UserInfo response as a signed JWT (`application/jwt`) instead of JSON.
    pub userinfo_signed_response_alg: Option<JwsAlg>,
    /// The UserInfo response encrypted (its JWT, or its JSON when it is not signed).
    pub userinfo_encrypted_response_alg: Option<KeyManagement>,
    pub userinfo_encrypted_response_enc: Option<ContentEncryption>,
    /// JWT introspection responses (RFC 9701) encrypted.
    pub introspection_encrypted_response_alg: Option<KeyManagement>,
    pub introspection_encrypted_response_enc: Option<ContentEncryption>,
    /// JARM: the algorithm authorization responses are signed with (default: the ID token's).
    pub authorization_signed_response_alg: Option<JwsAlg>,
    /// JARM: authorization responses encrypted.
    pub authorization_encrypted_response_alg: Option<KeyManagement>,
    pub authorization_encrypted_response_enc: Option<ContentEncryption>,
}

/// One JWE setting: key management and content encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encryption {
    pub alg: KeyManagement,
    pub enc: ContentEncryption,
}

fn encryption(alg: Option<KeyManagement>, enc: Option<ContentEncryption>) -> Option<Encryption> {
    alg.map(|alg| Encryption {
        alg,
        enc: enc.unwrap_or(ContentEncryption::A128CbcHs256),
    })
}

impl ResponseProtection {
    pub fn id_token(&self) -> Option<Encryption> {
        encryption(
            self.id_token_encrypted_response_alg,
            self.id_token_encrypted_response_enc,
        )
    }
    pub fn userinfo(&self) -> Option<Encryption> {
        encryption(
            self.userinfo_encrypted_response_alg,
            self.userinfo_encrypted_response_enc,
        )
    }
    pub fn introspection(&self) -> Option<Encryption> {
        encryption(
            self.introspection_encrypted_response_alg,
            self.introspection_encrypted_response_enc,
        )
    }
    pub fn authorization(&self) -> Option<Encryption> {
        encryption(
            self.authorization_encrypted_response_alg,
            self.authorization_encrypted_response_enc,
        )
    }
    /// Each encryption setting by its `*_alg` name, with its `*_enc`, to check them alike.
    pub fn encryptions(
        &self,
    ) -> [(
        &'static str,
        Option<KeyManagement>,
        Option<ContentEncryption>,
    ); 4] {
        [
            (
                "id_token_encrypted_response_alg",
                self.id_token_encrypted_response_alg,
                self.id_token_encrypted_response_enc,
            ),
            (
                "userinfo_encrypted_response_alg",
                self.userinfo_encrypted_response_alg,
                self.userinfo_encrypted_response_enc,
            ),
            (
                "introspection_encrypted_response_alg",
                self.introspection_encrypted_response_alg,
                self.introspection_encrypted_response_enc,
            ),
            (
                "authorization_encrypted_response_alg",
                self.authorization_encrypted_response_alg,
                self.authorization_encrypted_response_enc,
            ),
        ]
    }
}

/// OpenID CIBA Core §4: how the application learns that a user decided on its backchannel
/// authentication request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Backchannel {
    /// `poll` (the default) or `ping`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_token_delivery_mode: Option<BackchannelMode>,
    /// `ping`: where Tessera posts the `auth_req_id` of a decided request (https).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_client_notification_endpoint: Option<String>,
}

/// CIBA §5: the token delivery modes Tessera implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackchannelMode {
    Poll,
    Ping,
}

/// RFC 8705: how an application authenticates with its TLS client certificate (by the OAuth
/// Dynamic Client Registration names of §2.1.2) and whether its access tokens are bound to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct MutualTls {
    /// `tls_client_auth`: the certificate's subject DN (RFC 4514 string), or one of the SANs
    /// below: exactly one of the five.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_email: Option<String>,
    /// RFC 8705 §3: its access tokens are bound to the client certificate of the token request
    /// (`cnf` `x5t#S256`), so every token request must present one.
    pub tls_client_certificate_bound_access_tokens: bool,
}

impl MutualTls {
    /// The names and values of the subject fields that are set.
    pub fn subject_fields(&self) -> Vec<(&'static str, &str)> {
        [
            (
                "tls_client_auth_subject_dn",
                &self.tls_client_auth_subject_dn,
            ),
            ("tls_client_auth_san_dns", &self.tls_client_auth_san_dns),
            ("tls_client_auth_san_uri", &self.tls_client_auth_san_uri),
            ("tls_client_auth_san_ip", &self.tls_client_auth_san_ip),
            ("tls_client_auth_san_email", &self.tls_client_auth_san_email),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// An issuer whose JWTs an application may present, with its keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    pub issuer: String,
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
}

/// RFC 7523 §3 `sub` of a JWT bearer assertion.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum JwtBearerSubject {
    #[default]
    User,
    Client,
}

/// What an application that signs users in through the browser (`web`, `spa`, `native`) adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct BrowserSettings {
    /// Exact-match redirect URIs (RFC 6749 §3.1.2, RFC 9700 §2.1).
    pub redirect_uris: Vec<String>,
    /// OIDC RP-Initiated Logout §3: where the user may be sent after logout.
    pub post_logout_redirect_uris: Vec<String>,
    /// CORS origins; `https://*.example.com` allows every subdomain (seed 002).
    pub allowed_origins: Vec<String>,
    /// Enabled `response_type` values, each a space-separated set in canonical order (`code` by
    /// default for browser applications, none for m2m).
    pub response_types: Vec<String>,
    /// PKCE (RFC 7636) required; always true for public clients.
    pub pkce_required: bool,
    /// RFC 9126 §6: its authorization requests must be pushed first (PAR).
    pub require_pushed_authorization_requests: bool,
    /// RFC 9101 §10.5: its authorization requests must be signed request objects.
    pub require_signed_request_object: bool,
    /// RFC 9101 §5.2, OIDC Core §6.2 (seed 001 "Request URIs"): where its request objects may be
    /// fetched from by reference (`request_uri`); matched exactly, any fragment aside.
    pub request_uris: Vec<String>,
    pub consent: ConsentMode,
    /// The user attribute that becomes `sub` (seed 000 "Subject Management"): `id`, `username`,
    /// `email`, or a custom attribute.
    pub subject_attribute: String,
    pub subject_type: SubjectType,
    pub id_token_alg: JwsAlg,
    pub id_token_ttl: i64,
    pub code_ttl: i64,
    pub refresh_token_ttl: i64,
    /// Further `aud` values of ID tokens.
    pub additional_audiences: Vec<String>,
    /// Authorization policy: when not empty, only members of one of these groups may sign in.
    pub allowed_groups: Vec<String>,
    /// OIDC Front-Channel Logout §2.
    pub frontchannel_logout_uri: Option<String>,
    /// OIDC Back-Channel Logout §2.2.
    pub backchannel_logout_uri: Option<String>,
    /// How its users sign in: the name of an authentication scheme (`password` by default).
    pub authentication_scheme: String,
}

impl Default for BrowserSettings {
    fn default() -> Self {
        BrowserSettings {
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            allowed_origins: Vec::new(),
            response_types: Vec::new(),
            pkce_required: false,
            require_pushed_authorization_requests: false,
            require_signed_request_object: false,
            request_uris: Vec::new(),
            consent: ConsentMode::Explicit,
            subject_attribute: "id".into(),
            subject_type: SubjectType::Public,
            id_token_alg: JwsAlg::Key(Alg::RS256),
            id_token_ttl: 3_600,
            code_ttl: 60,
            refresh_token_ttl: 86_400,
            additional_audiences: Vec::new(),
            allowed_groups: Vec::new(),
            frontchannel_logout_uri: None,
            backchannel_logout_uri: None,
            authentication_scheme: DEFAULT_SCHEME.into(),
        }
    }
}

/// A person who signs in (DESIGN §6).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Stable random id; the default `sub`.
    pub id: String,
    /// Unique, compared case-insensitively.
    pub username: String,
    /// Argon2id PHC string (`$argon2id$v=19$…`), or an imported hash of another system until the
    /// next sign-in replaces it ([`crate::password::stored_form`]); `None` until a password is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// The SHA-256 (base64url) of the imported hash that a sign-in (with argon2id) or a new
    /// password replaced: an apply file that still declares that hash leaves the password as it
    /// is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehashed_from: Option<String>,
    /// OIDC Core §5.1 standard claims (name, email, address, …), validated by name and type.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Custom attributes, released through scope claim mappings (seed 003 "Custom Claims").
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub blocked: bool,
    /// Moves on each time every session and grant of the user must end at once (a password
    /// set, a block, joining or leaving the administrators). Sessions and grants record the value they
    /// were made under and stop when it moves on: the change and the sign-out are one write, so
    /// nothing signed in before or during the change outlives it, however many there are.
    #[serde(default)]
    pub sign_out_epoch: u64,
    /// TOTP, passkeys and recovery codes (never shown: [`crate::factor::FactorView`]).
    #[serde(default, skip_serializing_if = "crate::factor::Factors::is_empty")]
    pub factors: crate::factor::Factors,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// How many times the record was written: an update lands only on the revision it was
    /// read at ([`crate::store::Store::update_user`]). Kept by the store, not in the document.
    #[serde(skip)]
    pub revision: i64,
}

/// Id and username only: claims and the password hash stay out of logs.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Consent: the scopes a user granted an application (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Consent {
    pub user_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub updated_at: Timestamp,
}

/// An API (resource server): its identifier becomes the `aud` of tokens issued for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Api {
    pub identifier: String,
    pub name: String,
    /// Names of the scopes this API defines.
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Scopes every browser application may request (OIDC Core §5.4, §11).
pub const OPENID_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// A scope: a permission a client may request (RFC 6749 §3.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Scope {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    /// Granted when a request names no scope (seed 001 "Is Default?").
    #[serde(default)]
    pub default: bool,
    /// Listed in discovery's `scopes_supported` (seed 003).
    #[serde(default = "yes")]
    pub discoverable: bool,
    /// Custom claims it releases: claim name <- user attribute (seed 003 "Custom Claims").
    #[serde(default)]
    pub claims: std::collections::BTreeMap<String, String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Settings an administrator changed at runtime (admin API, Admin Portal). They are stored with
/// the configuration, so every node uses them; what is not set keeps the configuration file's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSettings {
    /// Default lifetimes of new applications, in seconds.
    pub lifetimes: LifetimeOverrides,
    pub updated_at: Timestamp,
}

impl StoredSettings {
    /// The one stored settings record's key.
    pub const KEY: &'static str = "defaults";
}

/// Nothing changed yet: every setting is the configuration file's.
impl Default for StoredSettings {
    fn default() -> Self {
        StoredSettings {
            lifetimes: LifetimeOverrides::default(),
            updated_at: Timestamp(0),
        }
    }
}

/// What a database was set up for: the issuer its tokens, keys, admin API and Portal are bound
/// to. A process configured with another issuer refuses to start on it (a CLI run without the
/// server's `TESSERA_ISSUER` would otherwise create a second admin API); `tessera issuer change`
/// moves it deliberately.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    pub issuer: String,
    pub updated_at: Timestamp,
}

impl Installation {
    /// Its key among the stored settings.
    pub const KEY: &'static str = "installation";
}

/// Default lifetimes an administrator set; `None` keeps the configuration file's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct LifetimeOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<i64>,
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
    /// A client assertion's or JWT bearer assertion's `jti`, kept until its `exp` (replay).
    SeenJti,
    /// One user-client authorization; every code and token below hangs off it.
    Grant,
    AuthorizationCode,
    RefreshToken,
    /// An SSO session in the browser (the cookie's handle).
    Session,
    /// A grant made in a session: who to tell at logout.
    SessionGrant,
    /// A paused authorization request waiting for login or consent.
    Interaction,
    /// A sign-in at an upstream identity provider under way (its `state`).
    Federation,
    /// A logout at an upstream identity provider under way (its `state`): where to go after.
    FederationLogout,
    /// A SAML Response posted to the ACS, kept until the browser fetches it back with its cookies.
    SamlResponse,
    /// A pushed authorization request (RFC 9126), until its `request_uri` is used.
    PushedRequest,
    /// RFC 8628: a device authorization request, by its `device_code`; consumed when its tokens
    /// are issued.
    DeviceCode,
    /// RFC 8628 §6.1: the user code of a device authorization request, naming its device code.
    UserCode,
    /// CIBA: a backchannel authentication request, by its `auth_req_id`; consumed when its tokens
    /// are issued.
    BackchannelRequest,
    /// The user's decision on a device authorization or backchannel authentication request
    /// (approved with a grant, or denied): made once.
    Decision,
    /// RFC 7591 §3: an initial access token an administrator made for registering clients.
    InitialAccessToken,
    /// RFC 7592 §1: the registration access token of a registered client.
    RegistrationAccessToken,
}

impl ArtifactKind {
    pub const ALL: [ArtifactKind; 19] = [
        ArtifactKind::AccessToken,
        ArtifactKind::RevokedJti,
        ArtifactKind::SeenJti,
        ArtifactKind::Grant,
        ArtifactKind::AuthorizationCode,
        ArtifactKind::RefreshToken,
        ArtifactKind::Session,
        ArtifactKind::SessionGrant,
        ArtifactKind::Interaction,
        ArtifactKind::Federation,
        ArtifactKind::FederationLogout,
        ArtifactKind::SamlResponse,
        ArtifactKind::PushedRequest,
        ArtifactKind::DeviceCode,
        ArtifactKind::UserCode,
        ArtifactKind::BackchannelRequest,
        ArtifactKind::Decision,
        ArtifactKind::InitialAccessToken,
        ArtifactKind::RegistrationAccessToken,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::AccessToken => "access_token",
            ArtifactKind::RevokedJti => "revoked_jti",
            ArtifactKind::SeenJti => "seen_jti",
            ArtifactKind::Grant => "grant",
            ArtifactKind::AuthorizationCode => "authorization_code",
            ArtifactKind::RefreshToken => "refresh_token",
            ArtifactKind::Session => "session",
            ArtifactKind::SessionGrant => "session_grant",
            ArtifactKind::Interaction => "interaction",
            ArtifactKind::Federation => "federation",
            ArtifactKind::FederationLogout => "federation_logout",
            ArtifactKind::SamlResponse => "saml_response",
            ArtifactKind::PushedRequest => "pushed_request",
            ArtifactKind::DeviceCode => "device_code",
            ArtifactKind::UserCode => "user_code",
            ArtifactKind::BackchannelRequest => "backchannel_request",
            ArtifactKind::Decision => "decision",
            ArtifactKind::InitialAccessToken => "initial_access_token",
            ArtifactKind::RegistrationAccessToken => "registration_access_token",
        }
    }
    pub fn parse(s: &str) -> Option<ArtifactKind> {
        ArtifactKind::ALL.into_iter().find(|k| k.as_str() == s)
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
    /// The user an SSO session or a grant belongs to: how an administrator finds a user's
    /// sessions and grants ([`crate::store::Store::user_artifacts`]); `None` for everything else.
    pub user_id: Option<String>,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// Set once by [`crate::store::Store::consume_artifact`] (codes, rotated refresh tokens).
    pub consumed_at: Option<Timestamp>,
    /// JSON payload: what introspection reports for a token.
    pub payload: serde_json::Value,
}

impl Artifact {
    /// The payload as the record its kind keeps, read from the JSON in place (no copy of it).
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        T::deserialize(&self.payload)
    }
}

fn yes() -> bool {
    true
}
