//! Upstream identity providers (DESIGN §6 "Identity provider"): the OpenID Connect and plain
//! OAuth 2.0 providers an authentication scheme lets users sign in at, how their claims map onto
//! Tessera's users, and the identities linked to users. [`oidc`] speaks to the upstream as a
//! relying party (OIDC Core §3.1), [`mapping`] turns what it says into a profile, [`accounts`]
//! finds or makes the user it names (just-in-time provisioning, linking); the sign-in steps are
//! in [`crate::authorize`].

pub mod accounts;
pub mod cache;
pub mod exchange;
pub mod logout;
pub mod mapping;
pub mod metadata;
pub mod oidc;
pub mod saml;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// How Tessera talks to an upstream.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum IdpProtocol {
    /// OpenID Connect: discovery from the issuer, an ID token verified against its keys.
    #[default]
    Oidc,
    /// Plain OAuth 2.0 with a userinfo endpoint (providers that are not OpenID Connect).
    Oauth2,
    /// SAML 2.0 Web Browser SSO, from the provider's metadata.
    Saml,
}

impl IdpProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            IdpProtocol::Oidc => "oidc",
            IdpProtocol::Oauth2 => "oauth2",
            IdpProtocol::Saml => "saml",
        }
    }
}

/// How Tessera authenticates to the upstream's token endpoint (RFC 7591 §2 names).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 §2.2, signed with Tessera's own signing key (the upstream reads `/jwks`).
    PrivateKeyJwt,
    /// A public client: PKCE alone.
    None,
}

impl UpstreamAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamAuth::ClientSecretBasic => "client_secret_basic",
            UpstreamAuth::ClientSecretPost => "client_secret_post",
            UpstreamAuth::PrivateKeyJwt => "private_key_jwt",
            UpstreamAuth::None => "none",
        }
    }

    pub fn needs_secret(self) -> bool {
        matches!(
            self,
            UpstreamAuth::ClientSecretBasic | UpstreamAuth::ClientSecretPost
        )
    }
}

/// One upstream claim copied onto the user (seed 001 "propagated to the attribute set").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The upstream claim (a top-level name of the ID token or userinfo answer).
    pub claim: String,
    /// `username`, `groups`, an OpenID Connect standard claim (`email`, `name`, …), or
    /// `attributes.{name}` for a custom attribute.
    pub to: String,
}

/// An upstream identity provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IdentityProvider {
    /// Unique; part of its callback URL (`/federation/{name}/callback`).
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    pub enabled: bool,
    pub protocol: IdpProtocol,
    /// OpenID Connect: the issuer; its metadata is read from
    /// `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Plain OAuth 2.0 (or instead of what discovery says): the endpoints.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// The client Tessera is registered as at the upstream.
    pub client_id: String,
    /// AES-256-GCM ciphertext of the client secret (bound to the provider's name), never the
    /// secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ciphertext: Option<String>,
    pub auth_method: UpstreamAuth,
    pub scopes: Vec<String>,
    /// OpenID Connect: also read the userinfo endpoint (its `sub` must be the ID token's).
    #[serde(default)]
    pub use_userinfo: bool,
    /// The upstream claim that identifies the user there (`sub`; `id` for GitHub's shape).
    pub subject_claim: String,
    pub mappings: Vec<Mapping>,
    /// Just-in-time provisioning: a user the upstream names for the first time is created.
    pub jit: bool,
    /// Trusted for email: a first sign-in whose verified email is one existing user's links to
    /// that user, and `email_verified` is taken from the upstream.
    pub link_by_email: bool,
    /// Home-realm discovery: an email address of these domains signs in here.
    pub domains: Vec<String>,
    /// Upstream `amr` (and `acr`) values → the RFC 8176 value Tessera records; others are
    /// dropped, never copied.
    pub amr_map: BTreeMap<String, String>,
    /// Tessera's logout goes on to the upstream's `end_session_endpoint` (RP-Initiated Logout)
    /// for sessions signed in there.
    #[serde(default = "yes")]
    pub upstream_logout: bool,
    /// SAML: the provider's metadata, from this URL (read through the guarded outbound path)…
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// …or as given.
    #[serde(default)]
    pub metadata_xml: Option<String>,
    /// SAML: the NameID format Tessera asks for (`NameIDPolicy`), if any.
    #[serde(default)]
    pub name_id_format: Option<String>,
    /// SAML: Tessera's metadata offers an encryption key (its RS256 key's certificate), and the
    /// provider's assertions must come encrypted; without it, one that comes encrypted anyway
    /// is decrypted all the same.
    #[serde(default)]
    pub encrypted_assertions: bool,
    /// Token exchange: the client ids at the upstream whose ID tokens applications may exchange
    /// besides Tessera's own `client_id` there (a mobile app's, signed in at the upstream itself).
    #[serde(default)]
    pub exchange_audiences: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

fn yes() -> bool {
    true
}

impl IdentityProvider {
    /// The label of its button on the sign-in page.
    pub fn label(&self) -> &str {
        if self.display_name.is_empty() {
            &self.name
        } else {
            &self.display_name
        }
    }
}

/// A user's identity at an upstream, linked to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LinkedIdentity {
    /// The identity provider's name.
    pub idp: String,
    /// The user's subject at the upstream.
    pub subject: String,
    pub user_id: String,
    /// The email address the upstream gave, for people to recognise the identity.
    #[serde(default)]
    pub email: Option<String>,
    /// The groups the upstream's mapping gave the user last time (replaced at each sign-in).
    #[serde(default)]
    pub groups: Vec<String>,
    pub linked_at: Timestamp,
    #[serde(default)]
    pub last_sign_in: Option<Timestamp>,
}
