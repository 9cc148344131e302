//! Dynamic client registration (RFC 7591) and management (RFC 7592), off unless enabled: a
//! client registers itself at `/register`, open or with an initial access token an
//! administrator made (its own limits: grant types, scopes, expiry, uses), optionally with a
//! software statement of a trusted issuer (§2.3, taking precedence over what is sent); what it
//! may ask for is clamped to the server's registration policy. It gets a
//! `registration_access_token` to read, replace and delete its registration (RFC 7592 §2).
//! A registered client is an ordinary application: it appears in the Portal, its consent is
//! always explicit, and it never reaches the admin API, asserts users or exchanges tokens.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::admin::{AdminError, Caller, ClientPatch, ClientSpec};
use crate::clock::Timestamp;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    Artifact, ArtifactKind, AuthMethod, Client, ClientType, ConsentMode, GrantType, OPENID_SCOPES,
};
use crate::provider::Provider;
use crate::secret::{b64url, handle_key, new_handle};

/// How long a registration access token lasts: as long as the registration, in practice.
const REGISTRATION_TOKEN_LIFETIME: i64 = 10 * 365 * 86_400;

/// The grants registration never gives, whatever the policy says: they assert or exchange users'
/// identities, or take their passwords.
const NEVER: [GrantType; 4] = [
    GrantType::Password,
    GrantType::TokenExchange,
    GrantType::JwtBearer,
    GrantType::Saml2Bearer,
];

/// RFC 7591 §2: the client metadata Tessera takes (anything else is ignored, §3.1).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// OIDC Registration §2: `web` (default) or `native`, for a public client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_statement: Option<String>,
    /// RFC 9449 §5.2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
}

/// What an initial access token allows (RFC 7591 §3: "limits" are the server's to define).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct InitialTokenSpec {
    /// Seconds the token is good for (default one day, at most 90 days).
    pub expires_in: Option<i64>,
    /// How many registrations it allows (default 1).
    pub uses: Option<i64>,
    /// Narrower than the server's registration policy, when given.
    pub grant_types: Option<Vec<GrantType>>,
    pub scopes: Option<Vec<String>>,
}

/// A new initial access token, shown once.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CreatedInitialToken {
    pub token: String,
    pub expires_at: Timestamp,
    pub uses: i64,
}

/// How a registration request is authorized.
#[derive(Debug, Clone, Copy)]
pub enum RegistrationAuth<'a> {
    /// No `Authorization` header: open registration only.
    None,
    /// `Authorization: Bearer <initial access token>` at `/register`, or the registration access
    /// token at `/register/{client_id}`.
    Bearer(&'a str),
}

fn metadata_error(d: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorCode::InvalidClientMetadata, d)
}

fn invalid_token() -> Error {
    Error::new(
        ErrorCode::InvalidToken,
        "the access token is invalid, expired, used up or for another client",
    )
}

/// A refusal of the admin rules as a registration error (RFC 7591 §3.2.2).
fn from_admin(e: AdminError) -> Error {
    match e {
        AdminError::Invalid { field, message } if field.contains("redirect_uri") => {
            Error::new(ErrorCode::InvalidRedirectUri, format!("{field}: {message}"))
        }
        AdminError::Invalid { field, message } => metadata_error(format!("{field}: {message}")),
        AdminError::Conflict(m) => metadata_error(m),
        // Deleted meanwhile, or beyond what registration may change (an administrator made the
        // client more than registered): not the registrant's any more.
        AdminError::NotFound(_) | AdminError::Forbidden { .. } => invalid_token(),
        other => Error::server(other),
    }
}

/// RFC 7591 §2.3: a statement's values take precedence over those sent beside it (its JWT
/// claims aside).
fn merge_claims(meta: &mut ClientMetadata, claims: &Value) -> Result<()> {
    let mut merged = serde_json::to_value(&*meta).map_err(Error::server)?;
    if let (Some(m), Some(c)) = (merged.as_object_mut(), claims.as_object()) {
        for (k, v) in c {
            if !["iss", "iat", "exp", "nbf", "jti", "aud", "sub"].contains(&k.as_str()) {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    *meta = serde_json::from_value(merged).map_err(|e| {
        Error::new(
            ErrorCode::InvalidSoftwareStatement,
            format!("software statement claims are not metadata: {e}"),
        )
    })?;
    Ok(())
}

impl Provider {
    /// `POST /register` (RFC 7591 §3.1).
    pub async fn register_client(
        &self,
        auth: RegistrationAuth<'_>,
        body: &[u8],
        address: &str,
    ) -> Result<Value> {
        let now = self.now();
        let policy = &self.settings.registration;
        if !policy.enabled {
            return Err(Error::new(
                ErrorCode::RequestNotSupported,
                "dynamic client registration is not enabled",
            ));
        }
        // The limits of the initial access token, or of open registration.
        let token = match auth {
            RegistrationAuth::Bearer(t) => Some(self.initial_token(t, now).await?),
            RegistrationAuth::None if policy.open => {
                let t = &self.settings.throttle;
                let key = format!("register:{}", crate::throttle::address_bucket(address));
                if self.store.count_failure(&key, now, t.window).await? > t.per_address {
                    return Err(Error::throttled(ErrorCode::InvalidRequest, t.window));
                }
                None
            }
            RegistrationAuth::None => return Err(invalid_token()),
        };
        let mut meta: ClientMetadata = serde_json::from_slice(body)
            .map_err(|e| metadata_error(format!("the body is not client metadata (JSON): {e}")))?;
        let statement = self.software_statement(&mut meta, None, now).await?;
        let limits = token.as_ref().map(|(_, spec, _)| spec.clone());
        let spec = self.registered_spec(&meta, limits.as_ref())?;
        // The use is counted before the client is made (one atomic increment): parallel
        // registrations cannot all pass the check. A registration the rules then refuse has
        // spent its use.
        if let Some((key, _, uses)) = &token {
            if self.spend_initial_token(key, now).await? > *uses {
                return Err(invalid_token());
            }
        }
        let admin = self.admin(Caller::registration("registration"));
        let created = admin.create_client(&spec).await.map_err(from_admin)?;
        let (registration_token, reg_key) = new_handle();
        self.store
            .insert_artifact(&Artifact {
                key: reg_key,
                kind: ArtifactKind::RegistrationAccessToken,
                client_id: created.client.client_id.clone(),
                grant_id: None,
                user_id: None,
                expires_at: now.plus(REGISTRATION_TOKEN_LIFETIME),
                revoked_at: None,
                consumed_at: None,
                // What later changes are held to: the token's limits and the statement's claims,
                // and the very client (a client made again with the same id is another).
                payload: json!({
                    "limits": limits,
                    "statement": statement.as_ref().map(|s| &s.1),
                    "created_at": created.client.created_at.0,
                }),
            })
            .await?;
        let actor = crate::audit::Actor::client(&created.client.client_id);
        self.record(
            &actor,
            "client.registered",
            &format!("client:{}", created.client.client_id),
            Some(&created.client.client_id),
            json!({
                "initial_access_token": token.as_ref().map(|(k, _, _)| b64url(&k.0[..16])),
                "software_statement_iss": statement.as_ref().map(|s| &s.0),
                "software_id": meta.software_id,
                "address": address,
            }),
        )
        .await;
        let mut answer = self.client_information(&created.client, &meta);
        answer["client_id_issued_at"] = json!(created.client.created_at.0);
        if let Some(secret) = &created.client_secret {
            answer["client_secret"] = json!(secret);
            answer["client_secret_expires_at"] = json!(0);
        }
        answer["registration_access_token"] = json!(registration_token);
        if let Some(jwt) = &meta.software_statement {
            answer["software_statement"] = json!(jwt);
        }
        Ok(answer)
    }

    /// RFC 7591 §2.3: a software statement of a trusted issuer; its claims replace the metadata
    /// sent beside it (on a change, those of the statement registered with, when none comes).
    /// Returns the issuer and the claims.
    async fn software_statement(
        &self,
        meta: &mut ClientMetadata,
        registered: Option<&Value>,
        now: Timestamp,
    ) -> Result<Option<(String, Value)>> {
        let policy = &self.settings.registration;
        let Some(jwt) = meta.software_statement.clone() else {
            if let Some(claims) = registered.filter(|c| c.is_object()) {
                merge_claims(meta, claims)?;
                return Ok(None);
            }
            if policy.require_software_statement {
                return Err(Error::new(
                    ErrorCode::UnapprovedSoftwareStatement,
                    "a software statement of a trusted issuer is required",
                ));
            }
            return Ok(None);
        };
        let refused = |why: String| Error::new(ErrorCode::InvalidSoftwareStatement, why);
        let (issuer, claims) = self
            .verify_jwt_of(&policy.software_statement_issuers, &jwt)
            .await
            .map_err(|why| {
                // An issuer Tessera does not take is unapproved; anything else is invalid.
                let code = if why.contains("is not a trusted issuer") {
                    ErrorCode::UnapprovedSoftwareStatement
                } else {
                    ErrorCode::InvalidSoftwareStatement
                };
                Error::new(code, format!("software statement refused: {why}"))
            })?;
        if claims.get("exp").is_some() {
            crate::assertion::check_times(&claims, now, self.settings.clock_skew, None)
                .map_err(|why| refused(format!("software statement refused: {why}")))?;
        }
        merge_claims(meta, &claims)?;
        meta.software_statement = Some(jwt);
        Ok(Some((issuer.issuer, claims)))
    }

    /// The application a registration describes, within the policy and the token's limits.
    fn registered_spec(
        &self,
        meta: &ClientMetadata,
        limits: Option<&InitialTokenSpec>,
    ) -> Result<ClientSpec> {
        let policy = &self.settings.registration;
        let grant_types: Vec<GrantType> = match &meta.grant_types {
            Some(list) => list
                .iter()
                .map(|g| {
                    GrantType::parse(g)
                        .ok_or_else(|| metadata_error(format!("grant type {g} is not supported")))
                })
                .collect::<Result<_>>()?,
            None => vec![GrantType::AuthorizationCode],
        };
        for g in &grant_types {
            let allowed = policy.grant_types.contains(g)
                && !NEVER.contains(g)
                && limits
                    .and_then(|l| l.grant_types.as_ref())
                    .is_none_or(|l| l.contains(g));
            if !allowed {
                return Err(metadata_error(format!(
                    "grant type {} is not allowed for registered clients",
                    g.as_str()
                )));
            }
        }
        let scopes: Vec<String> = match &meta.scope {
            Some(s) => crate::params::parse_scope(s).map_err(|e| metadata_error(e.description))?,
            None => Vec::new(),
        };
        for s in &scopes {
            let allowed = policy.scopes.contains(s)
                && limits
                    .and_then(|l| l.scopes.as_ref())
                    .is_none_or(|l| l.contains(s));
            if !allowed {
                return Err(metadata_error(format!(
                    "scope {s} is not allowed for registered clients"
                )));
            }
        }
        let method = match meta.token_endpoint_auth_method.as_deref() {
            None => AuthMethod::ClientSecretBasic,
            Some(m) => AuthMethod::parse(m)
                .filter(|m| !m.is_certificate())
                .ok_or_else(|| {
                    metadata_error(format!("token_endpoint_auth_method {m} is not supported"))
                })?,
        };
        let client_type = match (method, meta.application_type.as_deref()) {
            (AuthMethod::None, Some("native")) => ClientType::Native,
            (AuthMethod::None, None | Some("web")) => ClientType::Spa,
            (_, None | Some("web"))
                if grant_types
                    .iter()
                    .all(|g| *g == GrantType::ClientCredentials) =>
            {
                ClientType::M2m
            }
            (_, None | Some("web")) => ClientType::Web,
            (_, Some(other)) => {
                return Err(metadata_error(format!(
                    "application_type {other} is not supported for this client (web or native)"
                )))
            }
        };
        let name = meta
            .client_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "Registered client".into());
        // RFC 7591 §2.1, RFC 9700 §2.1.2: the code flow only (no implicit or hybrid tokens).
        if let Some(bad) = meta
            .response_types
            .iter()
            .flatten()
            .find(|r| r.as_str() != "code")
        {
            return Err(metadata_error(format!(
                "response type {bad} is not allowed for registered clients (code only)"
            )));
        }
        Ok(ClientSpec {
            grant_types: Some(grant_types),
            response_types: meta.response_types.clone(),
            auth_method: Some(method),
            // Standard OpenID scopes need no registration of their own.
            scopes: scopes
                .into_iter()
                .filter(|s| !OPENID_SCOPES.contains(&s.as_str()))
                .collect(),
            redirect_uris: meta.redirect_uris.clone(),
            post_logout_redirect_uris: meta.post_logout_redirect_uris.clone(),
            jwks: meta.jwks.clone(),
            jwks_uri: meta.jwks_uri.clone(),
            dpop_bound_access_tokens: meta.dpop_bound_access_tokens,
            // A registered client is a third party: the user is always asked.
            consent: Some(ConsentMode::Explicit),
            introspection_allowed: Some(false),
            ..ClientSpec::new(&name, client_type)
        })
    }

    /// An initial access token in force and not used up: its key and limits.
    async fn initial_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<(crate::model::ArtifactKey, InitialTokenSpec, i64)> {
        let key = handle_key(token).ok_or_else(invalid_token)?;
        let a = self
            .store
            .get_artifact(&key)
            .await?
            .filter(|a| {
                a.kind == ArtifactKind::InitialAccessToken
                    && a.expires_at > now
                    && a.revoked_at.is_none()
                    && a.consumed_at.is_none()
            })
            .ok_or_else(invalid_token)?;
        let spec: InitialTokenSpec =
            serde_json::from_value(a.payload["limits"].clone()).map_err(Error::server)?;
        let uses = a.payload["uses"].as_i64().unwrap_or(1);
        let used = self
            .store
            .failures(&Self::uses_key(&key), now, REGISTRATION_TOKEN_LIFETIME)
            .await?;
        if used.count >= uses {
            return Err(invalid_token());
        }
        Ok((key, spec, uses))
    }

    fn uses_key(key: &crate::model::ArtifactKey) -> String {
        format!("initial-token-uses:{}", b64url(&key.0))
    }

    /// Counts one registration against the token's uses; returns the uses counted so far.
    async fn spend_initial_token(
        &self,
        key: &crate::model::ArtifactKey,
        now: Timestamp,
    ) -> Result<i64> {
        Ok(self
            .store
            .count_failure(&Self::uses_key(key), now, REGISTRATION_TOKEN_LIFETIME)
            .await?)
    }

    /// RFC 7591 §3.2.1 / RFC 7592 §3: the client information response, without the secret
    /// (Tessera never shows a secret again).
    fn client_information(&self, c: &Client, meta: &ClientMetadata) -> Value {
        let mut v = json!({
            "client_id": c.client_id,
            "client_name": c.name,
            "redirect_uris": c.browser.redirect_uris,
            "post_logout_redirect_uris": c.browser.post_logout_redirect_uris,
            "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            "response_types": c.browser.response_types,
            "token_endpoint_auth_method": c.auth_method.as_str(),
            "registration_client_uri": self.settings.endpoint(&format!("/register/{}", c.client_id)),
            "dpop_bound_access_tokens": c.dpop_bound_access_tokens,
        });
        if let Some(s) = &meta.scope {
            v["scope"] = json!(s);
        }
        if let Some(u) = &c.federation.jwks_uri {
            v["jwks_uri"] = json!(u);
        }
        if let Some(j) = &c.federation.jwks {
            v["jwks"] = j.clone();
        }
        for (k, x) in [
            ("software_id", &meta.software_id),
            ("software_version", &meta.software_version),
        ] {
            if let Some(x) = x {
                v[k] = json!(x);
            }
        }
        v
    }

    /// RFC 7592 §2: the registered client a registration access token speaks for, and what its
    /// registration holds it to. The token names one client record: a client deleted and made
    /// again under the same id is not the registrant's.
    async fn registered(
        &self,
        client_id: &str,
        auth: RegistrationAuth<'_>,
    ) -> Result<(Client, Artifact, String)> {
        let RegistrationAuth::Bearer(token) = auth else {
            return Err(invalid_token());
        };
        let key = handle_key(token).ok_or_else(invalid_token)?;
        let registration = self
            .store
            .get_artifact(&key)
            .await?
            .filter(|a| {
                a.kind == ArtifactKind::RegistrationAccessToken
                    && a.client_id == client_id
                    && a.revoked_at.is_none()
                    && a.expires_at > self.now()
            })
            .ok_or_else(invalid_token)?;
        let client = self
            .store
            .get_client(client_id)
            .await?
            .filter(|c| registration.payload["created_at"].as_i64() == Some(c.created_at.0))
            .ok_or_else(invalid_token)?;
        Ok((client, registration, token.to_owned()))
    }

    /// `GET /register/{client_id}` (RFC 7592 §2.1).
    pub async fn read_registration(
        &self,
        client_id: &str,
        auth: RegistrationAuth<'_>,
    ) -> Result<Value> {
        let (c, _, token) = self.registered(client_id, auth).await?;
        let mut v = self.client_information(&c, &ClientMetadata::default());
        v["registration_access_token"] = json!(token);
        Ok(v)
    }

    /// `PUT /register/{client_id}` (RFC 7592 §2.2): the metadata replaced, held to the same
    /// limits as the registration (the initial access token's, the software statement's claims),
    /// and judged by the admin model as a `config:write` change (an administrator's later
    /// elevation of the client is out of the registrant's reach).
    pub async fn update_registration(
        &self,
        client_id: &str,
        auth: RegistrationAuth<'_>,
        body: &[u8],
    ) -> Result<Value> {
        let (existing, registration, token) = self.registered(client_id, auth).await?;
        let mut meta: ClientMetadata = serde_json::from_slice(body)
            .map_err(|e| metadata_error(format!("the body is not client metadata (JSON): {e}")))?;
        let raw: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if raw["client_id"].as_str() != Some(client_id) {
            return Err(Error::invalid_request(
                "client_id is required and must be the registration's (RFC 7592 §2.2)",
            ));
        }
        let stored = &registration.payload;
        self.software_statement(&mut meta, Some(&stored["statement"]), self.now())
            .await?;
        let limits: Option<InitialTokenSpec> =
            serde_json::from_value(stored["limits"].clone()).unwrap_or(None);
        let spec = self.registered_spec(&meta, limits.as_ref())?;
        if spec.client_type != existing.client_type {
            return Err(metadata_error(
                "the change would make another kind of client (public or confidential); register anew",
            ));
        }
        let patch = ClientPatch {
            name: Some(spec.name.clone()),
            grant_types: spec.grant_types.clone(),
            response_types: spec.response_types.clone(),
            auth_method: spec.auth_method,
            scopes: Some(spec.scopes.clone()),
            redirect_uris: Some(spec.redirect_uris.clone()),
            post_logout_redirect_uris: Some(spec.post_logout_redirect_uris.clone()),
            jwks: Some(spec.jwks.clone()),
            jwks_uri: Some(spec.jwks_uri.clone()),
            dpop_bound_access_tokens: spec.dpop_bound_access_tokens.or(Some(false)),
            ..ClientPatch::default()
        };
        let updated = self
            .admin(Caller::registration(client_id))
            .update_client(client_id, &patch)
            .await
            .map_err(from_admin)?;
        let actor = crate::audit::Actor::client(client_id);
        self.record(
            &actor,
            "client.registration.updated",
            &format!("client:{client_id}"),
            Some(client_id),
            json!({}),
        )
        .await;
        let mut v = self.client_information(&updated, &meta);
        v["registration_access_token"] = json!(token);
        Ok(v)
    }

    /// `DELETE /register/{client_id}` (RFC 7592 §2.3): the client goes, and its registration
    /// access token with it.
    pub async fn delete_registration(
        &self,
        client_id: &str,
        auth: RegistrationAuth<'_>,
    ) -> Result<()> {
        let (_, registration, _) = self.registered(client_id, auth).await?;
        self.admin(Caller::registration(client_id))
            .delete_client(client_id)
            .await
            .map_err(from_admin)?;
        self.store
            .revoke_artifact(&registration.key, self.now())
            .await?;
        let actor = crate::audit::Actor::client(client_id);
        self.record(
            &actor,
            "client.registration.deleted",
            &format!("client:{client_id}"),
            Some(client_id),
            json!({}),
        )
        .await;
        Ok(())
    }
}

impl crate::admin::Admin<'_> {
    /// RFC 7591 §3: a new initial access token with its limits (shown once).
    pub async fn create_initial_token(
        &self,
        spec: &InitialTokenSpec,
    ) -> crate::admin::AdminResult<CreatedInitialToken> {
        self.authorize(
            crate::admin::Operation::CreateInitialToken,
            crate::admin::TargetKind::Ordinary,
        )?;
        let now = self.now();
        let expires_in = spec.expires_in.unwrap_or(86_400);
        if !(60..=90 * 86_400).contains(&expires_in) {
            return Err(crate::admin::invalid(
                "expires_in",
                "between 60 seconds and 90 days",
            ));
        }
        let uses = spec.uses.unwrap_or(1);
        if !(1..=100_000).contains(&uses) {
            return Err(crate::admin::invalid("uses", "between 1 and 100000"));
        }
        if let Some(g) = spec
            .grant_types
            .iter()
            .flatten()
            .find(|g| NEVER.contains(g))
        {
            return Err(crate::admin::invalid(
                "grant_types",
                format!("registered clients never use {}", g.as_str()),
            ));
        }
        let (token, key) = new_handle();
        let expires_at = now.plus(expires_in);
        self.store
            .insert_artifact(&Artifact {
                key,
                kind: ArtifactKind::InitialAccessToken,
                client_id: String::new(),
                grant_id: None,
                user_id: None,
                expires_at,
                revoked_at: None,
                consumed_at: None,
                payload: json!({ "limits": spec, "uses": uses }),
            })
            .await?;
        self.audit(
            "registration.initial_token.created",
            "registration",
            None,
            json!({ "uses": uses, "expires_at": expires_at.0 }),
        )
        .await;
        Ok(CreatedInitialToken {
            token,
            expires_at,
            uses,
        })
    }
}
