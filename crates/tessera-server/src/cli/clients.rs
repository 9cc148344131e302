//! `tessera client …`: create (secret printed once), list, show, update, delete, rotate-secret.

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use tessera_core::admin::{
    ApplicationView, Caller, ClientPatch, ClientSpec, MtlsPatch, ProtectionPatch,
};
use tessera_core::model::{
    Alg, AuthMethod, Backchannel, BackchannelMode, Client, ClientType, ConsentMode,
    ContentEncryption, Encryption, GrantType, JwsAlg, JwtBearerSubject, KeyManagement, MutualTls,
    OAuthPolicy, ResponseProtection, SecurityProfile, SubjectType, TokenFormat, TrustedIssuer,
};
use tessera_core::Provider;

use super::{print, Output};

#[derive(Debug, Subcommand)]
pub enum ClientCmd {
    /// Register an application; prints its client_id and secret (the secret only this once).
    Create(CreateArgs),
    List,
    Show {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Change settings of an application; unset options keep their value.
    Update {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        opts: Options,
    },
    Delete {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Replace the secret: the old one stops working at once; the new one is printed once.
    RotateSecret {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Make an initial access token for dynamic client registration (RFC 7591), printed once.
    InitialToken {
        /// How many registrations it allows (default 1).
        #[arg(long)]
        uses: Option<i64>,
        /// Seconds it is good for (default 86400, at most 90 days).
        #[arg(long)]
        expires_in: Option<i64>,
        /// A grant type the registered clients may use (repeat; default: the policy's).
        #[arg(long = "grant-type", value_parser = parse_grant)]
        grant_types: Vec<GrantType>,
        /// A scope the registered clients may ask for (repeat; default: the policy's).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Application type: web (regular web app), spa, native, or m2m (machine to machine).
    #[arg(long = "type", value_parser = parse_type)]
    pub client_type: ClientType,
    #[arg(long)]
    pub name: String,
    /// An explicit client_id, to migrate an existing integration.
    #[arg(long)]
    pub client_id: Option<String>,
    /// An explicit secret, to migrate an existing integration (at least 16 characters).
    #[arg(long, env = "TESSERA_NEW_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    #[command(flatten)]
    pub opts: Options,
}

#[derive(Debug, Args, Default)]
pub struct Options {
    #[arg(long)]
    pub description: Option<String>,
    /// A grant type: authorization_code, refresh_token, client_credentials, password, device_code, ciba,
    /// token_exchange, jwt_bearer, saml2_bearer (repeat for several).
    #[arg(long = "grant-type", value_parser = parse_grant)]
    pub grant_types: Vec<GrantType>,
    /// A scope the client may request (repeat for several).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// An API identifier (audience) the client may obtain tokens for (repeat for several).
    #[arg(long = "api")]
    pub apis: Vec<String>,
    /// Access token format: jwt or opaque.
    #[arg(long, value_parser = parse_format)]
    pub token_format: Option<TokenFormat>,
    /// JWT access token signing algorithm: RS256, PS256, ES256, EdDSA, or HS256 (with the
    /// client secret).
    #[arg(long, value_parser = parse_id_alg)]
    pub signing_alg: Option<JwsAlg>,
    /// client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt,
    /// tls_client_auth, self_signed_tls_client_auth (RFC 8705: no secret is made), or none
    /// (public clients).
    #[arg(long, value_parser = parse_auth)]
    pub auth_method: Option<AuthMethod>,
    /// Access token lifetime in seconds (60-86400).
    #[arg(long)]
    pub access_token_ttl: Option<i64>,
    /// May the client call the introspection endpoint (for its own tokens and those addressed
    /// to it).
    #[arg(long)]
    pub introspection: Option<bool>,
    /// May the client introspect any token (administrator's decision).
    #[arg(long)]
    pub introspect_any_token: Option<bool>,
    /// Seconds a rotated refresh token may be retried for the same answer (confidential
    /// applications; 0, the default, detects every reuse).
    #[arg(long)]
    pub refresh_grace_secs: Option<i64>,
    /// OAuth policy: 2.0 (default) or 2.1 (PKCE S256 always, only the code response type, no
    /// password grant).
    #[arg(long, value_parser = parse_policy)]
    pub oauth_policy: Option<OAuthPolicy>,
    /// Security profile: fapi2 (FAPI 2.0: PAR, private_key_jwt, PS256/ES256/EdDSA, codes of at
    /// most 60 s, DPoP- or certificate-bound access tokens), or none.
    #[arg(long, value_parser = parse_profile)]
    pub profile: Option<ProfileArg>,
    /// Pin ID tokens and access tokens to one signing key by kid (seed 000 "Certificate"; its
    /// algorithm must be --signing-alg and --id-token-alg); '' unpins.
    #[arg(long)]
    pub signing_kid: Option<String>,
    /// Every token request must carry a DPoP proof, so every access token is DPoP-bound
    /// (RFC 9449; on by default with --profile fapi2).
    #[arg(long)]
    pub dpop_bound_access_tokens: Option<bool>,
    /// tls_client_auth (RFC 8705 §2.1): the certificate's subject DN (RFC 4514, e.g.
    /// "CN=client,O=Example"); or one of the --tls-client-auth-san-* options; '' clears.
    #[arg(long)]
    pub tls_client_auth_subject_dn: Option<String>,
    /// tls_client_auth: a DNS name among the certificate's subject alternative names.
    #[arg(long)]
    pub tls_client_auth_san_dns: Option<String>,
    /// tls_client_auth: a URI among the certificate's subject alternative names.
    #[arg(long)]
    pub tls_client_auth_san_uri: Option<String>,
    /// tls_client_auth: an IP address among the certificate's subject alternative names.
    #[arg(long)]
    pub tls_client_auth_san_ip: Option<String>,
    /// tls_client_auth: an e-mail address among the certificate's subject alternative names.
    #[arg(long)]
    pub tls_client_auth_san_email: Option<String>,
    /// Bind access tokens to the client certificate of the token request (RFC 8705 §3).
    #[arg(long)]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// CIBA: how the application learns that a backchannel authentication was decided: poll
    /// (the default) or ping.
    #[arg(long, value_parser = parse_delivery)]
    pub backchannel_token_delivery_mode: Option<BackchannelMode>,
    /// CIBA ping mode: where Tessera posts the decided auth_req_id (https); '' clears.
    #[arg(long)]
    pub backchannel_client_notification_endpoint: Option<String>,
    #[arg(long)]
    pub enabled: Option<bool>,
    /// A redirect URI, matched exactly (repeat for several).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// A URI the user may be sent to after logout (repeat for several).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A CORS origin such as https://app.example.com or https://*.example.com (repeat).
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,
    /// An enabled response type: code, "code id_token", "id_token token", … (repeat).
    #[arg(long = "response-type")]
    pub response_types: Vec<String>,
    /// Require PKCE (always on for spa and native).
    #[arg(long)]
    pub pkce_required: Option<bool>,
    /// Accept only authorization requests pushed first (PAR, RFC 9126).
    #[arg(long)]
    pub require_pushed_authorization_requests: Option<bool>,
    /// Accept only authorization requests as signed request objects (RFC 9101).
    #[arg(long)]
    pub require_signed_request_object: Option<bool>,
    /// A URL Tessera may fetch the application's request objects from (request_uri by
    /// reference, RFC 9101 §5.2; repeat for several).
    #[arg(long = "request-uri")]
    pub request_uris: Vec<String>,
    /// explicit or auto-accept.
    #[arg(long, value_parser = parse_consent)]
    pub consent: Option<ConsentMode>,
    /// The user attribute that becomes sub: id, username, email, or a custom attribute.
    #[arg(long)]
    pub subject_attribute: Option<String>,
    /// public or pairwise.
    #[arg(long, value_parser = parse_subject_type)]
    pub subject_type: Option<SubjectType>,
    /// ID token algorithm: RS256, PS256, ES256, EdDSA, or HS256 (with the client secret).
    #[arg(long, value_parser = parse_id_alg)]
    pub id_token_alg: Option<JwsAlg>,
    /// ID token lifetime in seconds (60-86400).
    #[arg(long)]
    pub id_token_ttl: Option<i64>,
    /// Authorization code lifetime in seconds (10-600).
    #[arg(long)]
    pub code_ttl: Option<i64>,
    /// Refresh token lifetime in seconds (86400-31536000).
    #[arg(long)]
    pub refresh_token_ttl: Option<i64>,
    /// An additional audience of ID tokens (repeat for several).
    #[arg(long = "additional-audience")]
    pub additional_audiences: Vec<String>,
    /// Only members of this group may sign in (repeat for several).
    #[arg(long = "allowed-group")]
    pub allowed_groups: Vec<String>,
    /// OIDC Front-Channel Logout URI ('' clears it).
    #[arg(long)]
    pub frontchannel_logout_uri: Option<String>,
    /// OIDC Back-Channel Logout URI, which Tessera POSTs to ('' clears it).
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// How its users sign in: an authentication scheme's name (`password` by default).
    #[arg(long)]
    pub authentication_scheme: Option<String>,
    /// The client's public keys for private_key_jwt: a JWK Set file ('' clears them).
    #[arg(long = "jwks-file", value_parser = read_jwks)]
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its public keys (private_key_jwt; '' clears it).
    #[arg(long)]
    pub jwks_uri: Option<String>,
    /// An issuer whose JWTs the client may present (token exchange, JWT bearer), as
    /// ISSUER=JWKS_URI or ISSUER=@jwks.json (repeat for several).
    #[arg(long = "trusted-issuer", value_parser = parse_issuer)]
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// May exchange tokens without an actor token (RFC 8693 impersonation).
    #[arg(long)]
    pub impersonation_allowed: Option<bool>,
    /// Token exchange policy webhook: the exchange context is POSTed here as JSON ('' clears
    /// it).
    #[arg(long)]
    pub exchange_policy_url: Option<String>,
    /// What a JWT bearer assertion's sub names: user or client.
    #[arg(long, value_parser = parse_bearer_subject)]
    pub jwt_bearer_subject: Option<JwtBearerSubject>,
    /// An identity provider whose ID tokens the client may exchange for its user's tokens
    /// (repeat for several; give '' alone to clear them).
    #[arg(long = "exchange-identity-provider")]
    pub exchange_identity_providers: Vec<String>,
    /// Encrypt ID tokens to the application's keys (jwks/jwks_uri): ALG or ALG/ENC, with ALG
    /// RSA-OAEP-256, ECDH-ES, ECDH-ES+A128KW or ECDH-ES+A256KW and ENC A128CBC-HS256 (the
    /// default), A256CBC-HS512, A128GCM or A256GCM; none to stop.
    #[arg(long, value_parser = parse_encryption)]
    pub id_token_encryption: Option<EncryptionArg>,
    /// Answer userinfo as a JWT signed with this algorithm (RS256, PS256, ES256, EdDSA, HS256);
    /// none for JSON.
    #[arg(long, value_parser = parse_optional_alg)]
    pub userinfo_signing_alg: Option<AlgArg>,
    /// Encrypt userinfo answers: as --id-token-encryption.
    #[arg(long, value_parser = parse_encryption)]
    pub userinfo_encryption: Option<EncryptionArg>,
    /// Encrypt JWT introspection answers (RFC 9701): as --id-token-encryption.
    #[arg(long, value_parser = parse_encryption)]
    pub introspection_encryption: Option<EncryptionArg>,
    /// Sign JWT-secured authorization responses (JARM) with this algorithm; none: the ID
    /// token's.
    #[arg(long, value_parser = parse_optional_alg)]
    pub authorization_signing_alg: Option<AlgArg>,
    /// Encrypt JWT-secured authorization responses (JARM): as --id-token-encryption.
    #[arg(long, value_parser = parse_encryption)]
    pub authorization_encryption: Option<EncryptionArg>,
}

fn parse_policy(s: &str) -> Result<OAuthPolicy, String> {
    match s {
        "2.0" => Ok(OAuthPolicy::V2_0),
        "2.1" => Ok(OAuthPolicy::V2_1),
        _ => Err(format!("unknown OAuth policy {s:?}: 2.0 or 2.1")),
    }
}

/// A security profile or `none`.
#[derive(Debug, Clone, Copy)]
pub struct ProfileArg(Option<SecurityProfile>);

fn parse_profile(s: &str) -> Result<ProfileArg, String> {
    match s {
        "fapi2" => Ok(ProfileArg(Some(SecurityProfile::Fapi2))),
        "none" => Ok(ProfileArg(None)),
        _ => Err(format!("unknown profile {s:?}: fapi2 or none")),
    }
}

/// `ALG[/ENC]` or `none`.
#[derive(Debug, Clone, Copy)]
pub struct EncryptionArg(Option<Encryption>);

/// A JWS algorithm or `none`.
#[derive(Debug, Clone, Copy)]
pub struct AlgArg(Option<JwsAlg>);

fn parse_encryption(s: &str) -> Result<EncryptionArg, String> {
    if s == "none" {
        return Ok(EncryptionArg(None));
    }
    let (alg, enc) = s.split_once('/').map_or((s, None), |(a, e)| (a, Some(e)));
    let alg = KeyManagement::parse(alg).ok_or_else(|| {
        format!("unknown key management {alg:?}: RSA-OAEP-256, ECDH-ES, ECDH-ES+A128KW or ECDH-ES+A256KW")
    })?;
    let enc = match enc {
        None => ContentEncryption::A128CbcHs256,
        Some(e) => ContentEncryption::parse(e).ok_or_else(|| {
            format!("unknown content encryption {e:?}: A128CBC-HS256, A256CBC-HS512, A128GCM or A256GCM")
        })?,
    };
    Ok(EncryptionArg(Some(Encryption { alg, enc })))
}

fn parse_optional_alg(s: &str) -> Result<AlgArg, String> {
    if s == "none" {
        return Ok(AlgArg(None));
    }
    parse_id_alg(s).map(|a| AlgArg(Some(a)))
}

impl Options {
    /// The response-protection settings as a partial update.
    fn protection_patch(&self) -> ProtectionPatch {
        let alg = |e: Option<EncryptionArg>| e.map(|e| e.0.map(|x| x.alg));
        let enc = |e: Option<EncryptionArg>| e.map(|e| e.0.map(|x| x.enc));
        ProtectionPatch {
            id_token_encrypted_response_alg: alg(self.id_token_encryption),
            id_token_encrypted_response_enc: enc(self.id_token_encryption),
            userinfo_signed_response_alg: self.userinfo_signing_alg.map(|a| a.0),
            userinfo_encrypted_response_alg: alg(self.userinfo_encryption),
            userinfo_encrypted_response_enc: enc(self.userinfo_encryption),
            introspection_encrypted_response_alg: alg(self.introspection_encryption),
            introspection_encrypted_response_enc: enc(self.introspection_encryption),
            authorization_signed_response_alg: self.authorization_signing_alg.map(|a| a.0),
            authorization_encrypted_response_alg: alg(self.authorization_encryption),
            authorization_encrypted_response_enc: enc(self.authorization_encryption),
        }
    }

    /// The mutual-TLS settings as a partial update ('' clears a subject field).
    fn mtls_patch(&self) -> MtlsPatch {
        MtlsPatch {
            tls_client_auth_subject_dn: clearable(self.tls_client_auth_subject_dn.clone()),
            tls_client_auth_san_dns: clearable(self.tls_client_auth_san_dns.clone()),
            tls_client_auth_san_uri: clearable(self.tls_client_auth_san_uri.clone()),
            tls_client_auth_san_ip: clearable(self.tls_client_auth_san_ip.clone()),
            tls_client_auth_san_email: clearable(self.tls_client_auth_san_email.clone()),
            tls_client_certificate_bound_access_tokens: self
                .tls_client_certificate_bound_access_tokens,
        }
    }

    /// The mutual-TLS settings of a new application.
    fn mtls(&self) -> MutualTls {
        let p = self.mtls_patch();
        MutualTls {
            tls_client_auth_subject_dn: p.tls_client_auth_subject_dn.flatten(),
            tls_client_auth_san_dns: p.tls_client_auth_san_dns.flatten(),
            tls_client_auth_san_uri: p.tls_client_auth_san_uri.flatten(),
            tls_client_auth_san_ip: p.tls_client_auth_san_ip.flatten(),
            tls_client_auth_san_email: p.tls_client_auth_san_email.flatten(),
            tls_client_certificate_bound_access_tokens: p
                .tls_client_certificate_bound_access_tokens
                .unwrap_or(false),
        }
    }

    /// The response-protection settings of a new application.
    fn protection(&self) -> ResponseProtection {
        let p = self.protection_patch();
        ResponseProtection {
            id_token_encrypted_response_alg: p.id_token_encrypted_response_alg.flatten(),
            id_token_encrypted_response_enc: p.id_token_encrypted_response_enc.flatten(),
            userinfo_signed_response_alg: p.userinfo_signed_response_alg.flatten(),
            userinfo_encrypted_response_alg: p.userinfo_encrypted_response_alg.flatten(),
            userinfo_encrypted_response_enc: p.userinfo_encrypted_response_enc.flatten(),
            introspection_encrypted_response_alg: p.introspection_encrypted_response_alg.flatten(),
            introspection_encrypted_response_enc: p.introspection_encrypted_response_enc.flatten(),
            authorization_signed_response_alg: p.authorization_signed_response_alg.flatten(),
            authorization_encrypted_response_alg: p.authorization_encrypted_response_alg.flatten(),
            authorization_encrypted_response_enc: p.authorization_encrypted_response_enc.flatten(),
        }
    }
}

/// A JWK Set file; '' stands for none (`null`).
fn read_jwks(path: &str) -> Result<serde_json::Value, String> {
    if path.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    read_json(path)
}

/// An optional value on `update`: absent keeps it, '' (or a JSON `null`) clears it.
fn clearable<T: Default + PartialEq>(v: Option<T>) -> Option<Option<T>> {
    v.map(|x| (x != T::default()).then_some(x))
}

/// An optional value on `create`: '' is none.
fn given<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|x| *x != T::default())
}

fn parse_delivery(s: &str) -> Result<BackchannelMode, String> {
    match s {
        "poll" => Ok(BackchannelMode::Poll),
        "ping" => Ok(BackchannelMode::Ping),
        _ => Err("poll or ping".into()),
    }
}

fn read_json(path: &str) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: not JSON: {e}"))
}

fn parse_issuer(s: &str) -> Result<TrustedIssuer, String> {
    let (issuer, keys) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} must be ISSUER=JWKS_URI or ISSUER=@jwks.json"))?;
    let (jwks, jwks_uri) = match keys.strip_prefix('@') {
        Some(path) => (Some(read_json(path)?), None),
        None => (None, Some(keys.to_owned())),
    };
    Ok(TrustedIssuer {
        issuer: issuer.to_owned(),
        jwks,
        jwks_uri,
    })
}

fn parse_bearer_subject(s: &str) -> Result<JwtBearerSubject, String> {
    match s {
        "user" => Ok(JwtBearerSubject::User),
        "client" => Ok(JwtBearerSubject::Client),
        _ => Err(format!("unknown subject {s:?}: user or client")),
    }
}

impl Options {
    fn patch(self, name: Option<String>) -> ClientPatch {
        ClientPatch {
            protection: self.protection_patch(),
            mtls: self.mtls_patch(),
            backchannel_token_delivery_mode: self.backchannel_token_delivery_mode.map(Some),
            backchannel_client_notification_endpoint: clearable(
                self.backchannel_client_notification_endpoint.clone(),
            ),
            name,
            description: self.description,
            grant_types: non_empty(self.grant_types),
            scopes: non_empty(self.scopes),
            apis: non_empty(self.apis),
            token_format: self.token_format,
            signing_alg: self.signing_alg,
            auth_method: self.auth_method,
            access_token_ttl: self.access_token_ttl,
            introspection_allowed: self.introspection,
            introspect_any_token: self.introspect_any_token,
            refresh_grace_secs: self.refresh_grace_secs,
            oauth_policy: self.oauth_policy,
            profile: self.profile.map(|p| p.0),
            signing_kid: clearable(self.signing_kid),
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            enabled: self.enabled,
            redirect_uris: non_empty(self.redirect_uris),
            post_logout_redirect_uris: non_empty(self.post_logout_redirect_uris),
            allowed_origins: non_empty(self.allowed_origins),
            response_types: non_empty(self.response_types),
            pkce_required: self.pkce_required,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            require_signed_request_object: self.require_signed_request_object,
            request_uris: non_empty(self.request_uris),
            consent: self.consent,
            subject_attribute: self.subject_attribute,
            subject_type: self.subject_type,
            id_token_alg: self.id_token_alg,
            id_token_ttl: self.id_token_ttl,
            code_ttl: self.code_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            additional_audiences: non_empty(self.additional_audiences),
            allowed_groups: non_empty(self.allowed_groups),
            frontchannel_logout_uri: clearable(self.frontchannel_logout_uri),
            backchannel_logout_uri: clearable(self.backchannel_logout_uri),
            authentication_scheme: self.authentication_scheme,
            jwks: clearable(self.jwks),
            jwks_uri: clearable(self.jwks_uri),
            trusted_issuers: non_empty(self.trusted_issuers),
            impersonation_allowed: self.impersonation_allowed,
            exchange_policy_url: clearable(self.exchange_policy_url),
            jwt_bearer_subject: self.jwt_bearer_subject,
            exchange_identity_providers: (!self.exchange_identity_providers.is_empty()).then(
                || {
                    self.exchange_identity_providers
                        .into_iter()
                        .filter(|i| !i.is_empty())
                        .collect()
                },
            ),
        }
    }
}

fn parse_grant(s: &str) -> Result<GrantType, String> {
    GrantType::parse(s).ok_or_else(|| {
        format!("unknown grant type {s:?}: authorization_code, refresh_token, client_credentials, password, token_exchange, jwt_bearer or saml2_bearer")
    })
}
fn parse_consent(s: &str) -> Result<ConsentMode, String> {
    match s {
        "explicit" => Ok(ConsentMode::Explicit),
        "auto-accept" => Ok(ConsentMode::AutoAccept),
        _ => Err(format!(
            "unknown consent mode {s:?}: explicit or auto-accept"
        )),
    }
}
fn parse_subject_type(s: &str) -> Result<SubjectType, String> {
    match s {
        "public" => Ok(SubjectType::Public),
        "pairwise" => Ok(SubjectType::Pairwise),
        _ => Err(format!("unknown subject type {s:?}: public or pairwise")),
    }
}
fn parse_id_alg(s: &str) -> Result<JwsAlg, String> {
    JwsAlg::parse(s)
        .ok_or_else(|| format!("unknown algorithm {s:?}: RS256, PS256, ES256, EdDSA or HS256"))
}

fn parse_type(s: &str) -> Result<ClientType, String> {
    ClientType::parse(s).ok_or_else(|| format!("unknown type {s:?}: web, m2m, spa or native"))
}
fn parse_format(s: &str) -> Result<TokenFormat, String> {
    TokenFormat::parse(s).ok_or_else(|| format!("unknown token format {s:?}: jwt or opaque"))
}
pub(crate) fn parse_alg(s: &str) -> Result<Alg, String> {
    Alg::parse(s).ok_or_else(|| format!("unknown algorithm {s:?}: RS256, PS256, ES256 or EdDSA"))
}
fn parse_auth(s: &str) -> Result<AuthMethod, String> {
    AuthMethod::parse(s).ok_or_else(|| {
        format!(
            "unknown method {s:?}: client_secret_basic, client_secret_post, client_secret_jwt, \
             private_key_jwt or none"
        )
    })
}

/// An application as printed: its typed view, which has no secret.
pub fn view(p: &Provider, c: &Client) -> Value {
    serde_json::to_value(ApplicationView::of(p, c)).unwrap_or_default()
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

pub async fn run(p: &Provider, cmd: ClientCmd, out: Output) -> anyhow::Result<()> {
    let p = &p.admin(Caller::local());
    match cmd {
        ClientCmd::Create(a) => {
            let o = a.opts;
            let spec = ClientSpec {
                protection: o.protection(),
                mtls: o.mtls(),
                backchannel: Backchannel {
                    backchannel_token_delivery_mode: o.backchannel_token_delivery_mode,
                    backchannel_client_notification_endpoint: given(
                        o.backchannel_client_notification_endpoint.clone(),
                    ),
                },
                client_id: a.client_id,
                client_secret: a.client_secret,
                name: a.name,
                description: o.description.unwrap_or_default(),
                client_type: a.client_type,
                grant_types: non_empty(o.grant_types),
                scopes: o.scopes,
                apis: o.apis,
                token_format: o.token_format,
                signing_alg: o.signing_alg,
                auth_method: o.auth_method,
                access_token_ttl: o.access_token_ttl,
                introspection_allowed: o.introspection,
                introspect_any_token: o.introspect_any_token,
                refresh_grace_secs: o.refresh_grace_secs,
                oauth_policy: o.oauth_policy,
                profile: o.profile.and_then(|p| p.0),
                signing_kid: given(o.signing_kid),
                dpop_bound_access_tokens: o.dpop_bound_access_tokens,
                enabled: o.enabled,
                redirect_uris: o.redirect_uris,
                post_logout_redirect_uris: o.post_logout_redirect_uris,
                allowed_origins: o.allowed_origins,
                response_types: non_empty(o.response_types),
                pkce_required: o.pkce_required,
                require_pushed_authorization_requests: o.require_pushed_authorization_requests,
                require_signed_request_object: o.require_signed_request_object,
                request_uris: o.request_uris,
                consent: o.consent,
                subject_attribute: o.subject_attribute,
                subject_type: o.subject_type,
                id_token_alg: o.id_token_alg,
                id_token_ttl: o.id_token_ttl,
                code_ttl: o.code_ttl,
                refresh_token_ttl: o.refresh_token_ttl,
                additional_audiences: o.additional_audiences,
                allowed_groups: o.allowed_groups,
                frontchannel_logout_uri: given(o.frontchannel_logout_uri),
                backchannel_logout_uri: given(o.backchannel_logout_uri),
                authentication_scheme: o.authentication_scheme,
                jwks: given(o.jwks),
                jwks_uri: given(o.jwks_uri),
                trusted_issuers: o.trusted_issuers,
                impersonation_allowed: o.impersonation_allowed,
                exchange_policy_url: given(o.exchange_policy_url),
                jwt_bearer_subject: o.jwt_bearer_subject,
                exchange_identity_providers: o.exchange_identity_providers,
            };
            let created = p.create_client(&spec).await?;
            let mut v = view(p, &created.client);
            v["client_secret"] = json!(created.client_secret);
            print(out, &v);
            if out == Output::Text && created.client_secret.is_some() {
                eprintln!("\nCopy the client secret now: it will not be displayed again.");
            }
        }
        ClientCmd::List => {
            let all: Vec<Value> = p.applications().await?.iter().map(|c| view(p, c)).collect();
            print(out, &Value::Array(all));
        }
        ClientCmd::Show { client_id } => print(out, &view(p, &p.application(&client_id).await?)),
        ClientCmd::Update {
            client_id,
            name,
            opts,
        } => {
            let patch = opts.patch(name);
            print(out, &view(p, &p.update_client(&client_id, &patch).await?));
        }
        ClientCmd::Delete { client_id } => {
            p.delete_client(&client_id).await?;
            print(out, &json!({"deleted": client_id}));
        }
        ClientCmd::InitialToken {
            uses,
            expires_in,
            grant_types,
            scopes,
        } => {
            let spec = tessera_core::registration::InitialTokenSpec {
                expires_in,
                uses,
                grant_types: (!grant_types.is_empty()).then_some(grant_types),
                scopes: (!scopes.is_empty()).then_some(scopes),
            };
            print(
                out,
                &serde_json::to_value(p.create_initial_token(&spec).await?)?,
            );
            if out == Output::Text {
                eprintln!("\nCopy the token now: it will not be displayed again.");
            }
        }
        ClientCmd::RotateSecret { client_id } => {
            let (_, secret) = p.rotate_client_secret(&client_id).await?;
            print(
                out,
                &json!({"client_id": client_id, "client_secret": secret}),
            );
            if out == Output::Text {
                eprintln!("\nThe previous secret no longer works. Copy the new one now: it will not be displayed again.");
            }
        }
    }
    Ok(())
}
