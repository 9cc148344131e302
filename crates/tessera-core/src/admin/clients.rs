//! Applications (clients): create with a secret shown once, read, update, delete, rotate the secret.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::permission::{Operation, TargetKind};
use super::rules;
use super::subjects::Written;
use super::{invalid, text, Admin, AdminError, AdminResult};
use crate::clock::Timestamp;
use crate::model::{
    Alg, AuthMethod, Backchannel, BackchannelMode, BrowserSettings, Client, ClientType,
    ConsentMode, ContentEncryption, Federation, GrantType, JwsAlg, JwtBearerSubject, KeyManagement,
    MutualTls, OAuthPolicy, ResponseProtection, SecurityProfile, SubjectType, TokenFormat,
    TrustedIssuer, ACCESS_TOKEN_TTL_RANGE,
};
use crate::provider::Provider;
use crate::scheme::DEFAULT_SCHEME;
use crate::secret::{new_client_id, new_client_secret};
use crate::settings::check_range;
use crate::store::{Change, Record, Table};

/// A client as an administrator describes it; absent options take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// An explicit id, to migrate an existing integration; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// An explicit secret, to migrate an existing integration; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "type")]
    pub client_type: ClientType,
    /// Defaults by type: m2m client_credentials; web, spa, native authorization_code and refresh_token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<GrantType>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apis: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_format: Option<TokenFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<JwsAlg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<AuthMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_allowed: Option<bool>,
    /// May introspect any token, not only its own and those addressed to it (administrator only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspect_any_token: Option<bool>,
    /// Seconds a rotated refresh token may be retried for the same answer (confidential
    /// applications only; default 0: every reuse revokes the grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_grace_secs: Option<i64>,
    /// `2.0` (default) or `2.1` (seed 001 "OAuth Policy").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_policy: Option<OAuthPolicy>,
    /// `fapi2`: the FAPI 2.0 Security Profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<SecurityProfile>,
    /// The signing key (`kid`) its ID tokens and access tokens are pinned to (seed 000
    /// "Certificate"); its algorithm must be the application's `signing_alg` and `id_token_alg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_kid: Option<String>,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof (default false; true with
    /// the FAPI 2.0 profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce_required: Option<bool>,
    /// RFC 9126 §6: authorization requests only pushed first (PAR); default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
    /// RFC 9101 §10.5: authorization requests only as signed request objects; default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_signed_request_object: Option<bool>,
    /// RFC 9101 §5.2: URLs Tessera may fetch the application's request objects from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_type: Option<SubjectType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_alg: Option<JwsAlg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_audiences: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// How its users sign in: an authentication scheme's name (default `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_issuers: Vec<TrustedIssuer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonation_allowed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_policy_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_bearer_subject: Option<JwtBearerSubject>,
    /// Identity providers whose ID tokens the client may exchange for its user's tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exchange_identity_providers: Vec<String>,
    /// Signed and encrypted responses (`id_token_encrypted_response_alg`, …).
    #[serde(flatten)]
    pub protection: ResponseProtection,
    /// Mutual TLS (`tls_client_auth_subject_dn`, …, `tls_client_certificate_bound_access_tokens`).
    #[serde(flatten)]
    pub mtls: MutualTls,
    /// CIBA (`backchannel_token_delivery_mode`, `backchannel_client_notification_endpoint`).
    #[serde(flatten)]
    pub backchannel: Backchannel,
}

/// The spec that gives back this record: every setting spelled out, so that no default of
/// the day decides it (`tessera export`); the secret stays behind, and so does the logo.
impl From<&Client> for ClientSpec {
    fn from(c: &Client) -> ClientSpec {
        let b = &c.browser;
        let f = &c.federation;
        ClientSpec {
            client_id: Some(c.client_id.clone()),
            client_secret: None,
            name: c.name.clone(),
            description: c.description.clone(),
            client_type: c.client_type,
            grant_types: Some(c.grant_types.clone()),
            scopes: c.scopes.clone(),
            apis: c.apis.clone(),
            token_format: Some(c.token_format),
            signing_alg: Some(c.signing_alg),
            auth_method: Some(c.auth_method),
            access_token_ttl: Some(c.access_token_ttl),
            introspection_allowed: Some(c.introspection_allowed),
            introspect_any_token: Some(c.introspect_any_token),
            refresh_grace_secs: Some(c.refresh_grace_secs),
            oauth_policy: Some(c.oauth_policy),
            profile: c.profile,
            signing_kid: c.signing_kid.clone(),
            dpop_bound_access_tokens: Some(c.dpop_bound_access_tokens),
            enabled: Some(c.enabled),
            redirect_uris: b.redirect_uris.clone(),
            post_logout_redirect_uris: b.post_logout_redirect_uris.clone(),
            allowed_origins: b.allowed_origins.clone(),
            response_types: Some(b.response_types.clone()),
            pkce_required: Some(b.pkce_required),
            require_pushed_authorization_requests: Some(b.require_pushed_authorization_requests),
            require_signed_request_object: Some(b.require_signed_request_object),
            request_uris: b.request_uris.clone(),
            consent: Some(b.consent),
            subject_attribute: Some(b.subject_attribute.clone()),
            subject_type: Some(b.subject_type),
            id_token_alg: Some(b.id_token_alg),
            id_token_ttl: Some(b.id_token_ttl),
            code_ttl: Some(b.code_ttl),
            refresh_token_ttl: Some(b.refresh_token_ttl),
            additional_audiences: b.additional_audiences.clone(),
            allowed_groups: b.allowed_groups.clone(),
            frontchannel_logout_uri: b.frontchannel_logout_uri.clone(),
            backchannel_logout_uri: b.backchannel_logout_uri.clone(),
            authentication_scheme: Some(b.authentication_scheme.clone()),
            jwks: f.jwks.clone(),
            jwks_uri: f.jwks_uri.clone(),
            trusted_issuers: f.trusted_issuers.clone(),
            impersonation_allowed: Some(f.impersonation_allowed),
            exchange_policy_url: f.exchange_policy_url.clone(),
            jwt_bearer_subject: Some(f.jwt_bearer_subject),
            exchange_identity_providers: f.exchange_identity_providers.clone(),
            protection: c.protection.clone(),
            mtls: c.mtls.clone(),
            backchannel: c.backchannel.clone(),
        }
    }
}

impl ClientSpec {
    /// A spec with every option at its default.
    pub fn new(name: &str, client_type: ClientType) -> ClientSpec {
        ClientSpec {
            client_id: None,
            client_secret: None,
            name: name.to_owned(),
            description: String::new(),
            client_type,
            grant_types: None,
            scopes: Vec::new(),
            apis: Vec::new(),
            token_format: None,
            signing_alg: None,
            auth_method: None,
            access_token_ttl: None,
            introspection_allowed: None,
            introspect_any_token: None,
            refresh_grace_secs: None,
            oauth_policy: None,
            profile: None,
            signing_kid: None,
            dpop_bound_access_tokens: None,
            enabled: None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            allowed_origins: Vec::new(),
            response_types: None,
            pkce_required: None,
            require_pushed_authorization_requests: None,
            require_signed_request_object: None,
            request_uris: Vec::new(),
            consent: None,
            subject_attribute: None,
            subject_type: None,
            id_token_alg: None,
            id_token_ttl: None,
            code_ttl: None,
            refresh_token_ttl: None,
            additional_audiences: Vec::new(),
            allowed_groups: Vec::new(),
            frontchannel_logout_uri: None,
            backchannel_logout_uri: None,
            authentication_scheme: None,
            jwks: None,
            jwks_uri: None,
            trusted_issuers: Vec::new(),
            impersonation_allowed: None,
            exchange_policy_url: None,
            jwt_bearer_subject: None,
            exchange_identity_providers: Vec::new(),
            protection: ResponseProtection::default(),
            mtls: MutualTls::default(),
            backchannel: Backchannel::default(),
        }
    }
}

/// A field of a partial update that can be cleared: absent keeps it, `null` clears it, a value
/// sets it.
fn clearable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A partial update: only the fields that are set change (an optional URI or key set is cleared
/// with `null`). Field names are those of [`Client`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<GrantType>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apis: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_format: Option<TokenFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<JwsAlg>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<AuthMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_allowed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspect_any_token: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_grace_secs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth_policy: Option<OAuthPolicy>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub profile: Option<Option<SecurityProfile>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub signing_kid: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkce_required: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_signed_request_object: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_uris: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_type: Option<SubjectType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_alg: Option<JwsAlg>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_audiences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_groups: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub frontchannel_logout_uri: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub backchannel_logout_uri: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_scheme: Option<String>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub jwks: Option<Option<serde_json::Value>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub jwks_uri: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_issuers: Option<Vec<TrustedIssuer>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impersonation_allowed: Option<bool>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub exchange_policy_url: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_bearer_subject: Option<JwtBearerSubject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_identity_providers: Option<Vec<String>>,
    #[serde(flatten)]
    pub protection: ProtectionPatch,
    #[serde(flatten)]
    pub mtls: MtlsPatch,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub backchannel_token_delivery_mode: Option<Option<BackchannelMode>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub backchannel_client_notification_endpoint: Option<Option<String>>,
}

/// The mutual-TLS fields of a [`ClientPatch`]: each set, cleared with `null`, or kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MtlsPatch {
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_client_auth_subject_dn: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_client_auth_san_dns: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_client_auth_san_uri: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_client_auth_san_ip: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_client_auth_san_email: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
}

/// The response-protection fields of a [`ClientPatch`]: each set, cleared with `null`, or kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProtectionPatch {
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub id_token_encrypted_response_alg: Option<Option<KeyManagement>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub id_token_encrypted_response_enc: Option<Option<ContentEncryption>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub userinfo_signed_response_alg: Option<Option<JwsAlg>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub userinfo_encrypted_response_alg: Option<Option<KeyManagement>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub userinfo_encrypted_response_enc: Option<Option<ContentEncryption>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub introspection_encrypted_response_alg: Option<Option<KeyManagement>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub introspection_encrypted_response_enc: Option<Option<ContentEncryption>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub authorization_signed_response_alg: Option<Option<JwsAlg>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub authorization_encrypted_response_alg: Option<Option<KeyManagement>>,
    #[serde(
        default,
        deserialize_with = "clearable",
        skip_serializing_if = "Option::is_none"
    )]
    pub authorization_encrypted_response_enc: Option<Option<ContentEncryption>>,
}

/// What clients name that must exist: scopes, APIs, authentication schemes (stored ones; the
/// built-in `password` always exists) and identity providers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    pub scopes: HashSet<String>,
    pub apis: HashSet<String>,
    pub schemes: HashSet<String>,
    pub idps: HashSet<String>,
}

/// A new client and its secret, which is never shown again.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedClient {
    pub client: Client,
    pub client_secret: Option<String>,
}

/// RFC 6749 Appendix A.1: client_id is VSCHAR; Tessera also keeps it free of spaces and bounded.
fn client_id(id: &str) -> AdminResult<String> {
    if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(invalid(
            "client_id",
            "must be 1-255 printable ASCII characters without spaces",
        ));
    }
    Ok(id.to_owned())
}

/// An imported secret: printable ASCII, at least 16 characters (seed 004), at most 512.
fn client_secret(secret: &str) -> AdminResult<String> {
    if secret.len() < 16
        || secret.len() > 512
        || !secret.bytes().all(|b| (0x21..=0x7e).contains(&b))
    {
        return Err(invalid(
            "client_secret",
            "must be 16-512 printable ASCII characters without spaces",
        ));
    }
    Ok(secret.to_owned())
}

impl Provider {
    /// Checks a full client record against the catalog (scope names, API identifiers) and the
    /// ranges of seed 004.
    pub(crate) fn validate_client(&self, c: &Client, catalog: &Catalog) -> AdminResult<()> {
        // Tokens are addressed to an application by its client_id: one named like the admin API
        // would receive (and may introspect) the admin API's tokens.
        if self.is_own_api(&c.client_id) {
            return Err(invalid(
                "client_id",
                "is the admin API's identifier, which no application may take",
            ));
        }
        rules::check_client(c, self.settings.allow_private_addresses)?;
        self.check_mtls_available(c)?;
        check_range(
            "access_token_ttl",
            c.access_token_ttl,
            ACCESS_TOKEN_TTL_RANGE,
        )
        .map_err(|m| invalid("access_token_ttl", m))?;
        if let Some(s) = c.scopes.iter().find(|s| !catalog.scopes.contains(*s)) {
            return Err(invalid("scopes", format!("scope {s} does not exist")));
        }
        if let Some(a) = c.apis.iter().find(|a| !catalog.apis.contains(*a)) {
            return Err(invalid("apis", format!("API {a} does not exist")));
        }
        let exchange = &c.federation.exchange_identity_providers;
        if let Some(i) = exchange.iter().find(|i| !catalog.idps.contains(*i)) {
            return Err(invalid(
                "exchange_identity_providers",
                format!("there is no identity provider {i}"),
            ));
        }
        let takes = [GrantType::TokenExchange, GrantType::Saml2Bearer];
        if !exchange.is_empty() && !takes.iter().any(|g| c.grant_types.contains(g)) {
            return Err(invalid(
                "exchange_identity_providers",
                "an application presents an identity provider's tokens with the token exchange or SAML bearer grant",
            ));
        }
        let scheme = &c.browser.authentication_scheme;
        if scheme != DEFAULT_SCHEME && !catalog.schemes.contains(scheme) {
            return Err(invalid(
                "authentication_scheme",
                format!("scheme {scheme} does not exist"),
            ));
        }
        self.check_pinned_key(c)?;
        let p = &c.protection;
        let optional = [
            (
                "userinfo_signed_response_alg",
                p.userinfo_signed_response_alg,
            ),
            (
                "authorization_signed_response_alg",
                p.authorization_signed_response_alg,
            ),
        ];
        let algs = [
            ("signing_alg", c.signing_alg),
            ("id_token_alg", c.browser.id_token_alg),
        ]
        .into_iter()
        .chain(optional.into_iter().filter_map(|(f, a)| Some((f, a?))));
        for (field, alg) in algs {
            match alg {
                JwsAlg::Key(a) if !self.settings.keys.algorithms.contains(&a) => {
                    return Err(invalid(
                        field,
                        format!("{} has no signing key (see keys.algorithms)", a.as_str()),
                    ))
                }
                JwsAlg::HS256 if !c.client_type.is_confidential() => {
                    return Err(invalid(
                        field,
                        "HS256 needs a client secret; public applications have none",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Seed 000 "Certificate": a pinned key exists, still signs or will, and is of the
    /// application's algorithms for ID tokens and access tokens.
    /// RFC 8705 needs client certificates to reach Tessera, and `tls_client_auth` the CAs they
    /// chain to.
    fn check_mtls_available(&self, c: &Client) -> AdminResult<()> {
        let m = &self.settings.mtls;
        let wants =
            c.auth_method.is_certificate() || c.mtls.tls_client_certificate_bound_access_tokens;
        if wants && !m.enabled {
            let field = if c.auth_method.is_certificate() {
                "auth_method"
            } else {
                "tls_client_certificate_bound_access_tokens"
            };
            return Err(invalid(
                field,
                "mutual TLS is not enabled on this server (tls.client_certificates, or mtls.proxy_header behind a TLS-terminating proxy)",
            ));
        }
        if c.auth_method == AuthMethod::TlsClientAuth && m.trust_anchors.is_empty() {
            return Err(invalid(
                "auth_method",
                "tls_client_auth needs the CAs client certificates chain to (mtls.client_ca_file)",
            ));
        }
        Ok(())
    }

    fn check_pinned_key(&self, c: &Client) -> AdminResult<()> {
        let Some(kid) = &c.signing_kid else {
            return Ok(());
        };
        let keys = self.keys();
        let key = keys
            .by_kid(kid)
            .ok_or_else(|| invalid("signing_kid", format!("there is no signing key {kid}")))?;
        if key.not_after <= self.now() {
            return Err(invalid(
                "signing_kid",
                format!(
                    "key {kid} signs no more (its window has ended); pin a current or upcoming key"
                ),
            ));
        }
        let alg = JwsAlg::Key(key.alg);
        // A machine-to-machine application has no ID tokens; every JWT signed with a key of
        // Tessera's for the application (not HS256 with its secret) is signed with the pinned one.
        let browser = c.client_type != ClientType::M2m;
        let p = &c.protection;
        let algs = [
            ("signing_alg", Some(c.signing_alg)),
            ("id_token_alg", browser.then_some(c.browser.id_token_alg)),
            (
                "userinfo_signed_response_alg",
                p.userinfo_signed_response_alg,
            ),
            (
                "authorization_signed_response_alg",
                p.authorization_signed_response_alg,
            ),
        ];
        for (field, a) in algs {
            let Some(a) = a else { continue };
            let keyed = field == "signing_alg" || field == "id_token_alg" || a != JwsAlg::HS256;
            if a != alg && keyed {
                return Err(invalid(
                    field,
                    format!(
                        "must be {}, the algorithm of the pinned key {kid}",
                        key.alg.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The scope names, API identifiers and scheme names in the store.
    pub(crate) async fn catalog(&self) -> AdminResult<Catalog> {
        let scopes = self
            .store
            .list_scopes()
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect();
        let apis = self
            .store
            .list_apis()
            .await?
            .into_iter()
            .map(|a| a.identifier)
            .collect();
        let schemes = self
            .store
            .list_schemes()
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect();
        let idps = self
            .store
            .list_idps()
            .await?
            .into_iter()
            .map(|i| i.name)
            .collect();
        Ok(Catalog {
            scopes,
            apis,
            schemes,
            idps,
        })
    }

    /// The full record a spec describes; `existing` keeps id, secret and creation time.
    pub(crate) fn client_from_spec(
        &self,
        spec: &ClientSpec,
        existing: Option<&Client>,
        now: Timestamp,
    ) -> AdminResult<Client> {
        let client_id = match (&spec.client_id, existing) {
            (Some(id), _) => client_id(id)?,
            (None, Some(e)) => e.client_id.clone(),
            (None, None) => new_client_id(),
        };
        let dedup = |v: &[String]| {
            let mut out: Vec<String> = Vec::new();
            for x in v {
                if !out.contains(x) {
                    out.push(x.clone());
                }
            }
            out
        };
        let ty = spec.client_type;
        // The policy's and profile's rules are the defaults of what the spec leaves out.
        let fapi = spec.profile == Some(SecurityProfile::Fapi2);
        let strict = fapi || spec.oauth_policy == Some(OAuthPolicy::V2_1);
        let defaults = BrowserSettings::default();
        let lifetimes = self.default_lifetimes();
        let grant_types = match &spec.grant_types {
            Some(g) => g.iter().fold(Vec::new(), |mut v, x| {
                if !v.contains(x) {
                    v.push(*x);
                }
                v
            }),
            None if ty == ClientType::M2m => vec![GrantType::ClientCredentials],
            None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        };
        let browser = BrowserSettings {
            redirect_uris: dedup(&spec.redirect_uris),
            post_logout_redirect_uris: dedup(&spec.post_logout_redirect_uris),
            allowed_origins: dedup(&spec.allowed_origins),
            response_types: match &spec.response_types {
                Some(v) => rules::response_types(v)?,
                // Without the code grant (an m2m or device-only application), none.
                None if !grant_types.contains(&GrantType::AuthorizationCode) => Vec::new(),
                None => vec!["code".to_owned()],
            },
            pkce_required: spec
                .pkce_required
                .unwrap_or(!ty.is_confidential() || strict),
            require_pushed_authorization_requests: spec
                .require_pushed_authorization_requests
                .unwrap_or(fapi),
            require_signed_request_object: spec.require_signed_request_object.unwrap_or(false),
            request_uris: dedup(&spec.request_uris),
            consent: spec.consent.unwrap_or_default(),
            subject_attribute: spec
                .subject_attribute
                .clone()
                .unwrap_or(defaults.subject_attribute),
            subject_type: spec.subject_type.unwrap_or_default(),
            id_token_alg: spec.id_token_alg.unwrap_or(if fapi {
                JwsAlg::Key(Alg::PS256)
            } else {
                defaults.id_token_alg
            }),
            id_token_ttl: spec.id_token_ttl.unwrap_or(lifetimes.id_token),
            code_ttl: spec.code_ttl.unwrap_or(if fapi {
                lifetimes.authorization_code.min(60)
            } else {
                lifetimes.authorization_code
            }),
            refresh_token_ttl: spec.refresh_token_ttl.unwrap_or(lifetimes.refresh_token),
            additional_audiences: dedup(&spec.additional_audiences),
            allowed_groups: dedup(&spec.allowed_groups),
            frontchannel_logout_uri: spec.frontchannel_logout_uri.clone(),
            backchannel_logout_uri: spec.backchannel_logout_uri.clone(),
            authentication_scheme: spec
                .authentication_scheme
                .clone()
                .unwrap_or(defaults.authentication_scheme),
        };
        let default_auth = if fapi && ty.is_confidential() {
            AuthMethod::PrivateKeyJwt
        } else if ty.is_confidential() {
            AuthMethod::ClientSecretBasic
        } else {
            AuthMethod::None
        };
        Ok(Client {
            client_id,
            name: text("name", &spec.name, true, 200)?,
            description: text("description", &spec.description, false, 1000)?,
            client_type: spec.client_type,
            enabled: spec.enabled.unwrap_or(true),
            grant_types,
            auth_method: spec.auth_method.unwrap_or(default_auth),
            scopes: dedup(&spec.scopes),
            apis: dedup(&spec.apis),
            token_format: spec.token_format.unwrap_or(TokenFormat::Jwt),
            signing_alg: spec.signing_alg.unwrap_or(JwsAlg::Key(if fapi {
                Alg::PS256
            } else {
                Alg::RS256
            })),
            access_token_ttl: spec.access_token_ttl.unwrap_or(lifetimes.access_token),
            introspection_allowed: spec
                .introspection_allowed
                .unwrap_or(spec.client_type.is_confidential()),
            introspect_any_token: spec.introspect_any_token.unwrap_or(false),
            refresh_grace_secs: spec.refresh_grace_secs.unwrap_or(0),
            oauth_policy: spec.oauth_policy.unwrap_or_default(),
            profile: spec.profile,
            signing_kid: spec.signing_kid.clone(),
            dpop_bound_access_tokens: spec.dpop_bound_access_tokens.unwrap_or(fapi),
            secret_ciphertext: existing.and_then(|e| e.secret_ciphertext.clone()),
            logo: existing.and_then(|e| e.logo.clone()),
            browser,
            federation: Federation {
                jwks: spec.jwks.clone(),
                jwks_uri: spec.jwks_uri.clone(),
                trusted_issuers: spec.trusted_issuers.clone(),
                impersonation_allowed: spec.impersonation_allowed.unwrap_or(false),
                exchange_policy_url: spec.exchange_policy_url.clone(),
                jwt_bearer_subject: spec.jwt_bearer_subject.unwrap_or_default(),
                exchange_identity_providers: spec.exchange_identity_providers.clone(),
            },
            protection: spec.protection.clone(),
            mtls: spec.mtls.clone(),
            backchannel: spec.backchannel.clone(),
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        })
    }

    /// Encrypts `secret` for the client; the plaintext leaves only through the caller.
    pub(crate) fn seal_secret(&self, client: &mut Client, secret: &str) {
        client.secret_ciphertext = Some(self.master.encrypt(&client.client_id, secret.as_bytes()));
    }

    /// The secret a spec asks for: the explicit one, or a new 256-bit secret; none for a public
    /// client, nor for one that authenticates with its certificate (RFC 8705) and signs nothing
    /// with HS256 (a secret it never uses would still be a way in if its method changed).
    pub(crate) fn spec_secret(spec: &ClientSpec) -> AdminResult<Option<String>> {
        if !spec.client_type.is_confidential() {
            if spec.client_secret.is_some() {
                return Err(invalid(
                    "client_secret",
                    "a public client (spa, native) has no secret",
                ));
            }
            return Ok(None);
        }
        let hs256 = [spec.signing_alg, spec.id_token_alg].contains(&Some(JwsAlg::HS256));
        let certificate = spec.auth_method.is_some_and(|m| m.is_certificate());
        if certificate && !hs256 && spec.client_secret.is_none() {
            return Ok(None);
        }
        spec.client_secret
            .as_deref()
            .map(client_secret)
            .transpose()
            .map(|s| Some(s.unwrap_or_else(new_client_secret)))
    }

    pub(crate) fn decrypt_secret(&self, client: &Client) -> Option<Vec<u8>> {
        client
            .secret_ciphertext
            .as_ref()
            .and_then(|ct| self.master.decrypt(&client.client_id, ct).ok())
    }

    pub(crate) async fn get_client(&self, client_id: &str) -> AdminResult<Client> {
        self.store
            .get_client(client_id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("client {client_id}")))
    }
}

impl Admin<'_> {
    pub async fn applications(&self) -> AdminResult<Vec<Client>> {
        self.authorize(Operation::ListApplications, TargetKind::Ordinary)?;
        Ok(self.store.list_clients().await?)
    }

    pub async fn application(&self, client_id: &str) -> AdminResult<Client> {
        self.authorize(Operation::ReadApplication, TargetKind::Ordinary)?;
        self.provider.get_client(client_id).await
    }

    /// The application `client_id`, once the caller may perform `op` on it.
    pub(crate) async fn reach_client(&self, op: Operation, client_id: &str) -> AdminResult<Client> {
        self.authorize(op, TargetKind::Ordinary)?;
        let c = self.provider.get_client(client_id).await?;
        self.authorize(op, self.client_kind(&c))?;
        Ok(c)
    }

    pub async fn create_client(&self, spec: &ClientSpec) -> AdminResult<CreatedClient> {
        self.authorize(Operation::CreateApplication, TargetKind::Ordinary)?;
        let now = self.now();
        let mut client = self.client_from_spec(spec, None, now)?;
        let kind = self.client_kind(&client);
        self.authorize(Operation::CreateApplication, kind)?;
        let one_at_a_time = self.subject_writes.lock().await;
        self.check_subjects(&Written::client(&client)).await?;
        let secret = Provider::spec_secret(spec)?;
        if let Some(secret) = &secret {
            self.seal_secret(&mut client, secret);
        }
        let client = &client;
        // Checked against the scopes and APIs as they are when the client is written.
        self.settle(|| async move {
            let version = self.read_version().await?;
            self.validate_client(client, &self.catalog().await?)?;
            let mut detail = json!({"name": client.name, "type": client.client_type.as_str()});
            if kind == TargetKind::AssertsUsers {
                detail["asserts_users"] = json!(true);
            }
            let change = Change::Create(Record::Client(client.clone()));
            self.commit_as(version, &[change], None, detail).await
        })
        .await?;
        drop(one_at_a_time);
        tracing::info!(client_id = %client.client_id, "client created");
        Ok(CreatedClient {
            client: client.clone(),
            client_secret: secret,
        })
    }

    /// Changes the fields `patch` sets. `enabled` alone is audited as `client.enabled` or
    /// `client.disabled`.
    pub async fn update_client(&self, client_id: &str, patch: &ClientPatch) -> AdminResult<Client> {
        self.settle(|| self.try_update_client(client_id, patch))
            .await
    }

    async fn try_update_client(&self, client_id: &str, patch: &ClientPatch) -> AdminResult<Client> {
        let version = self.read_version().await?;
        // The patch's fields are named as the client's, so it overlays the stored record.
        let overlay = serde_json::to_value(patch).map_err(|e| invalid("patch", e.to_string()))?;
        let fields: Vec<String> = overlay
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let op = match (fields.as_slice(), patch.enabled) {
            ([only], Some(true)) if only == "enabled" => Operation::EnableApplication,
            ([only], Some(false)) if only == "enabled" => Operation::DisableApplication,
            _ => Operation::ChangeApplication,
        };
        let existing = self.reach_client(op, client_id).await?;
        self.precondition(&existing)?;
        let mut doc =
            serde_json::to_value(&existing).map_err(|e| invalid("patch", e.to_string()))?;
        if let (Some(d), Some(o)) = (doc.as_object_mut(), overlay.as_object()) {
            for (k, v) in o {
                d.insert(k.clone(), v.clone());
            }
        }
        let mut c: Client =
            serde_json::from_value(doc).map_err(|e| invalid("patch", e.to_string()))?;
        c.name = text("name", &c.name, true, 200)?;
        c.description = text("description", &c.description, false, 1000)?;
        if let Some(v) = &patch.response_types {
            c.browser.response_types = rules::response_types(v)?;
        }
        if !c.client_type.is_confidential() {
            c.browser.pkce_required = true;
        }
        c.updated_at = self.now();
        // What the application becomes needs the caller's permission too.
        self.authorize(op, self.client_kind(&c))?;
        let mut one_at_a_time = None;
        if c.browser.subject_attribute != existing.browser.subject_attribute {
            one_at_a_time = Some(self.subject_writes.lock().await);
            self.check_subjects(&Written::client(&c)).await?;
        }
        self.validate_client(&c, &self.catalog().await?)?;
        let action = match op {
            Operation::EnableApplication => Some("client.enabled"),
            Operation::DisableApplication => Some("client.disabled"),
            _ => None,
        };
        let mut detail = json!({ "fields": fields });
        if self.client_kind(&c) == TargetKind::AssertsUsers {
            detail["asserts_users"] = json!(true);
        }
        self.commit_as(
            version,
            &[Change::Update(Record::Client(c.clone()))],
            action,
            detail,
        )
        .await?;
        drop(one_at_a_time);
        Ok(c)
    }

    pub async fn delete_client(&self, client_id: &str) -> AdminResult<()> {
        self.settle(|| async move {
            let version = self.read_version().await?;
            let existing = self
                .reach_client(Operation::DeleteApplication, client_id)
                .await?;
            self.precondition(&existing)?;
            let change = Change::Delete(Table::Clients, client_id.to_owned());
            self.commit_as(version, &[change], None, Value::Null).await
        })
        .await?;
        tracing::info!(client_id, "client deleted");
        Ok(())
    }

    /// Seed 000 "Revoke a client secret": the old secret stops working at once; the new one is
    /// returned once, with the application as it now is.
    pub async fn rotate_client_secret(&self, client_id: &str) -> AdminResult<(Client, String)> {
        self.settle(|| self.try_rotate_client_secret(client_id))
            .await
    }

    async fn try_rotate_client_secret(&self, client_id: &str) -> AdminResult<(Client, String)> {
        let version = self.read_version().await?;
        let mut c = self
            .reach_client(Operation::RotateSecret, client_id)
            .await?;
        self.precondition(&c)?;
        if !c.client_type.is_confidential() {
            return Err(AdminError::Conflict(format!(
                "client {client_id} is public and has no secret"
            )));
        }
        let secret = new_client_secret();
        self.seal_secret(&mut c, &secret);
        c.updated_at = self.now();
        self.commit_as(
            version,
            &[Change::Update(Record::Client(c.clone()))],
            Some("client.secret_rotated"),
            Value::Null,
        )
        .await?;
        tracing::info!(client_id, "client secret rotated");
        Ok((c, secret))
    }
}
