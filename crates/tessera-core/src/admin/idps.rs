//! Upstream identity providers as administrators set them up. An identity provider asserts who
//! users are (it creates them, and links to them by email when trusted for it), so changing one
//! is a power over users: `config:write` with `users:write`, or `administrator`. One the admin
//! API's applications sign in with, or at which an administrator's identity is linked, is
//! protected: whoever repoints it signs in as that administrator. Its client secret is stored encrypted and never
//! shown; its URLs pass the outbound destination rules when written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::permission::{Operation, TargetKind};
use super::{invalid, text, Admin, AdminError, AdminResult};
use crate::clock::Timestamp;
use crate::federation::mapping::{check_target, default_mappings, AMR_VALUES};
use crate::federation::oidc::secret_context;
use crate::federation::saml::parse_idp_metadata;
use crate::federation::{IdentityProvider, IdpProtocol, Mapping, UpstreamAuth};
use crate::model::Client;
use crate::provider::Provider;
use crate::store::{Change, Record, Table};

/// An identity provider as an administrator describes it.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdpSpec {
    /// Lower-case letters, digits, `-`, `_` and `.`; part of the callback URL.
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `oidc` (default) or `oauth2`.
    #[serde(default)]
    pub protocol: IdpProtocol,
    /// OpenID Connect: the issuer (discovery reads `{issuer}/.well-known/openid-configuration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// Tessera's client id at an OpenID Connect or OAuth 2.0 provider.
    #[serde(default)]
    pub client_id: String,
    /// Write-only; absent on a change keeps the stored one.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<String>,
    /// Default `client_secret_basic`.
    #[serde(default)]
    pub auth_method: UpstreamAuth,
    /// Default `openid email profile` for OpenID Connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub use_userinfo: bool,
    /// Default `sub` (OpenID Connect) or `id` (OAuth 2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_claim: Option<String>,
    /// Default: the protocol's usual claims to username, email and names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mappings: Option<Vec<Mapping>>,
    /// Just-in-time provisioning (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jit: Option<bool>,
    #[serde(default)]
    pub link_by_email: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    #[serde(default)]
    pub amr_map: BTreeMap<String, String>,
    /// Tessera's logout goes on to the upstream's `end_session_endpoint` (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_logout: Option<bool>,
    /// Token exchange: client ids at the upstream whose ID tokens may be exchanged, besides
    /// `client_id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exchange_audiences: Vec<String>,
    /// SAML: the provider's metadata URL (read through the guarded outbound path)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_url: Option<String>,
    /// …or its metadata document itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_xml: Option<String>,
    /// SAML: the NameID format to ask for (`NameIDPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_id_format: Option<String>,
    /// SAML: offer an encryption key in Tessera's metadata and accept only encrypted
    /// assertions (default false).
    #[serde(default)]
    pub encrypted_assertions: bool,
}

/// The client id only: the secret stays out of logs.
impl std::fmt::Debug for IdpSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpSpec")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// An identity provider as it is shown: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IdpView {
    #[serde(flatten)]
    pub spec: IdpSpec,
    pub has_client_secret: bool,
    /// Register this at the upstream as Tessera's redirect URI.
    pub redirect_uri: String,
    /// Register this at the upstream as a post-logout redirect URI (RP-Initiated Logout).
    pub post_logout_redirect_uri: String,
    /// Register this at the upstream as Tessera's back-channel logout URI.
    pub backchannel_logout_uri: String,
    /// SAML: Tessera's entity ID towards the provider, where its SP metadata is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sp_entity_id: Option<String>,
    /// SAML: Tessera's assertion consumer service (HTTP-POST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acs_url: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

fn idp_name(n: &str) -> AdminResult<String> {
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if ok {
        Ok(n.to_owned())
    } else {
        Err(invalid(
            "name",
            "must be 1-64 lower-case letters, digits, '-', '_' or '.'",
        ))
    }
}

fn browser_url(field: &str, u: &str) -> AdminResult<()> {
    match url::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "https" | "http") && u.len() <= 2000 => Ok(()),
        _ => Err(invalid(
            field,
            "must be an http(s) URL of at most 2000 characters",
        )),
    }
}

impl IdpSpec {
    pub(crate) fn to_idp(
        &self,
        existing: Option<&IdentityProvider>,
        allow_private: bool,
        master: &crate::secret::MasterKey,
        now: Timestamp,
    ) -> AdminResult<IdentityProvider> {
        let name = idp_name(&self.name)?;
        let destination = |field: &str, u: &str| -> AdminResult<()> {
            crate::outbound::check_destination(u, allow_private)
                .map_err(|m| invalid(field, format!("{}: {m}", crate::outbound::redact_url(u))))
        };
        match self.protocol {
            IdpProtocol::Oidc => {
                let issuer = self.issuer.as_deref().ok_or_else(|| {
                    invalid("issuer", "an OpenID Connect provider needs its issuer")
                })?;
                destination("issuer", issuer)?;
            }
            IdpProtocol::Oauth2 => {
                for (field, v) in [
                    ("authorization_endpoint", &self.authorization_endpoint),
                    ("token_endpoint", &self.token_endpoint),
                    ("userinfo_endpoint", &self.userinfo_endpoint),
                ] {
                    if v.is_none() {
                        return Err(invalid(field, "a plain OAuth 2.0 provider needs it"));
                    }
                }
            }
            IdpProtocol::Saml => {
                let oidc_only = [
                    ("issuer", self.issuer.is_some()),
                    (
                        "authorization_endpoint",
                        self.authorization_endpoint.is_some(),
                    ),
                    ("token_endpoint", self.token_endpoint.is_some()),
                    ("userinfo_endpoint", self.userinfo_endpoint.is_some()),
                    ("client_secret", self.client_secret.is_some()),
                    ("scopes", self.scopes.is_some()),
                    ("use_userinfo", self.use_userinfo),
                    ("exchange_audiences", !self.exchange_audiences.is_empty()),
                ];
                if let Some((field, _)) = oidc_only.iter().find(|(_, given)| *given) {
                    return Err(invalid(field, "is not a setting of a SAML provider"));
                }
                match (&self.metadata_url, &self.metadata_xml) {
                    (Some(u), None) => destination("metadata_url", u)?,
                    (None, Some(x)) => {
                        parse_idp_metadata(x).map_err(|e| invalid("metadata_xml", e))?;
                    }
                    _ => {
                        return Err(invalid(
                            "metadata_url",
                            "a SAML provider needs its metadata: metadata_url or metadata_xml, one of them",
                        ))
                    }
                }
                if let Some(f) = &self.name_id_format {
                    text("name_id_format", f, true, 256)?;
                }
            }
        }
        if self.protocol != IdpProtocol::Saml {
            for (field, given) in [
                ("metadata_url", self.metadata_url.is_some()),
                ("metadata_xml", self.metadata_xml.is_some()),
                ("name_id_format", self.name_id_format.is_some()),
                ("encrypted_assertions", self.encrypted_assertions),
            ] {
                if given {
                    return Err(invalid(field, "is a setting of SAML providers only"));
                }
            }
        }
        if let Some(u) = &self.authorization_endpoint {
            browser_url("authorization_endpoint", u)?;
        }
        for (field, v) in [
            ("token_endpoint", &self.token_endpoint),
            ("userinfo_endpoint", &self.userinfo_endpoint),
        ] {
            if let Some(u) = v {
                destination(field, u)?;
            }
        }
        let (client_id, secret_ciphertext, scopes) = if self.protocol == IdpProtocol::Saml {
            (String::new(), None, Vec::new())
        } else {
            self.client_settings(&name, existing, master)?
        };
        let subject_claim = self.subject_claim.clone().unwrap_or_else(|| {
            match self.protocol {
                IdpProtocol::Oidc => "sub",
                IdpProtocol::Oauth2 => "id",
                IdpProtocol::Saml => "name_id",
            }
            .to_owned()
        });
        text("subject_claim", &subject_claim, true, 128)?;
        let mappings = self
            .mappings
            .clone()
            .unwrap_or_else(|| default_mappings(self.protocol));
        for m in &mappings {
            text("mappings", &m.claim, true, 128)?;
            check_target(&m.to).map_err(|e| invalid("mappings", e))?;
        }
        let mut domains: Vec<String> = Vec::new();
        for d in &self.domains {
            let ok = !d.is_empty()
                && d.len() <= 253
                && d.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.')
                })
                && !d.starts_with('.')
                && !d.ends_with('.');
            if !ok {
                return Err(invalid(
                    "domains",
                    format!("{d:?} is not a lower-case domain name"),
                ));
            }
            if !domains.contains(d) {
                domains.push(d.clone());
            }
        }
        for (k, v) in &self.amr_map {
            if k.is_empty() || k.len() > 256 {
                return Err(invalid("amr_map", "an upstream value is 1-256 characters"));
            }
            if !AMR_VALUES.contains(&v.as_str()) {
                return Err(invalid(
                    "amr_map",
                    format!("{v} is not an RFC 8176 authentication method reference"),
                ));
            }
        }
        Ok(IdentityProvider {
            name,
            display_name: text("display_name", &self.display_name, false, 200)?,
            enabled: self.enabled.unwrap_or(true),
            protocol: self.protocol,
            issuer: self.issuer.clone(),
            authorization_endpoint: self.authorization_endpoint.clone(),
            token_endpoint: self.token_endpoint.clone(),
            userinfo_endpoint: self.userinfo_endpoint.clone(),
            client_id,
            secret_ciphertext,
            auth_method: if self.protocol == IdpProtocol::Saml {
                UpstreamAuth::None
            } else {
                self.auth_method
            },
            scopes,
            use_userinfo: self.use_userinfo,
            subject_claim,
            mappings,
            jit: self.jit.unwrap_or(true),
            link_by_email: self.link_by_email,
            domains,
            amr_map: self.amr_map.clone(),
            upstream_logout: self.upstream_logout.unwrap_or(true),
            metadata_url: self.metadata_url.clone(),
            metadata_xml: self.metadata_xml.clone(),
            name_id_format: self.name_id_format.clone(),
            encrypted_assertions: self.encrypted_assertions,
            exchange_audiences: self
                .exchange_audiences
                .iter()
                .map(|a| text("exchange_audiences", a, true, 255))
                .collect::<AdminResult<Vec<String>>>()?,
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        })
    }

    /// Tessera's client at an OpenID Connect or OAuth 2.0 provider: its id, its sealed secret
    /// and the scopes it asks for.
    fn client_settings(
        &self,
        name: &str,
        existing: Option<&IdentityProvider>,
        master: &crate::secret::MasterKey,
    ) -> AdminResult<(String, Option<String>, Vec<String>)> {
        let client_id = text("client_id", &self.client_id, true, 255)?;
        let secret_ciphertext = match &self.client_secret {
            Some(s) if s.is_empty() || s.len() > 1024 => {
                return Err(invalid("client_secret", "must be 1-1024 characters"))
            }
            Some(s) => Some(master.encrypt(&secret_context(name), s.as_bytes())),
            None => existing.and_then(|e| e.secret_ciphertext.clone()),
        };
        // The secret is sent to the token endpoint: one kept from before goes only where it
        // went before, so whoever moves the provider must know it.
        let moved = existing.is_some_and(|e| {
            (e.protocol, &e.issuer, &e.token_endpoint)
                != (self.protocol, &self.issuer, &self.token_endpoint)
        });
        if moved && self.client_secret.is_none() && self.auth_method.needs_secret() {
            return Err(invalid(
                "client_secret",
                "give the client secret again when the issuer or the token endpoint changes: the stored one is not sent to a new place",
            ));
        }
        if self.auth_method.needs_secret() && secret_ciphertext.is_none() {
            return Err(invalid(
                "client_secret",
                format!("{} needs the client secret", self.auth_method.as_str()),
            ));
        }
        let scopes = self.scopes.clone().unwrap_or_else(|| match self.protocol {
            IdpProtocol::Oidc => vec!["openid".into(), "email".into(), "profile".into()],
            IdpProtocol::Oauth2 | IdpProtocol::Saml => Vec::new(),
        });
        for s in &scopes {
            super::catalog::scope_name("scopes", s)?;
        }
        if self.protocol == IdpProtocol::Oidc && !scopes.iter().any(|s| s == "openid") {
            return Err(invalid(
                "scopes",
                "an OpenID Connect sign-in asks for openid",
            ));
        }
        Ok((client_id, secret_ciphertext, scopes))
    }
}

impl From<&IdentityProvider> for IdpSpec {
    fn from(i: &IdentityProvider) -> IdpSpec {
        IdpSpec {
            name: i.name.clone(),
            display_name: i.display_name.clone(),
            enabled: Some(i.enabled),
            protocol: i.protocol,
            issuer: i.issuer.clone(),
            authorization_endpoint: i.authorization_endpoint.clone(),
            token_endpoint: i.token_endpoint.clone(),
            userinfo_endpoint: i.userinfo_endpoint.clone(),
            client_id: i.client_id.clone(),
            client_secret: None,
            auth_method: i.auth_method,
            // SAML has no scopes: what is read back can be written back.
            scopes: (i.protocol != IdpProtocol::Saml).then(|| i.scopes.clone()),
            use_userinfo: i.use_userinfo,
            subject_claim: Some(i.subject_claim.clone()),
            mappings: Some(i.mappings.clone()),
            jit: Some(i.jit),
            link_by_email: i.link_by_email,
            domains: i.domains.clone(),
            amr_map: i.amr_map.clone(),
            upstream_logout: Some(i.upstream_logout),
            metadata_url: i.metadata_url.clone(),
            metadata_xml: i.metadata_xml.clone(),
            name_id_format: i.name_id_format.clone(),
            encrypted_assertions: i.encrypted_assertions,
            exchange_audiences: i.exchange_audiences.clone(),
        }
    }
}

impl Provider {
    pub fn idp_view(&self, i: &IdentityProvider) -> IdpView {
        IdpView {
            spec: IdpSpec::from(i),
            has_client_secret: i.secret_ciphertext.is_some(),
            redirect_uri: self.federation_callback(&i.name),
            post_logout_redirect_uri: self.federation_endpoint(&i.name, "logged-out"),
            backchannel_logout_uri: self.federation_endpoint(&i.name, "backchannel-logout"),
            sp_entity_id: (i.protocol == IdpProtocol::Saml).then(|| self.saml_entity_id(&i.name)),
            acs_url: (i.protocol == IdpProtocol::Saml).then(|| self.saml_acs(&i.name)),
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }

    /// An identity provider a scheme of the admin API's applications names, or at which an
    /// administrator's identity is linked, is protected.
    pub(crate) async fn idp_kind(&self, name: &str, clients: &[Client]) -> AdminResult<TargetKind> {
        for s in self.store.list_schemes().await? {
            if s.identity_providers.iter().any(|n| n == name)
                && self.scheme_kind(&s.name, clients) == TargetKind::Protected
            {
                return Ok(TargetKind::Protected);
            }
        }
        for admin in self
            .store
            .list_users()
            .await?
            .iter()
            .filter(|u| super::is_administrator(u))
        {
            let linked = self.store.user_identities(&admin.id).await?;
            if linked.iter().any(|i| i.idp == name) {
                return Ok(TargetKind::Protected);
            }
        }
        Ok(TargetKind::Ordinary)
    }

    /// Refuses a home-realm domain another identity provider routes already.
    async fn domains_free(&self, i: &IdentityProvider) -> AdminResult<()> {
        for other in self.store.list_idps().await? {
            if other.name == i.name {
                continue;
            }
            if let Some(d) = i.domains.iter().find(|d| other.domains.contains(d)) {
                return Err(AdminError::Conflict(format!(
                    "the domain {d} signs in at identity provider {} already",
                    other.name
                )));
            }
        }
        Ok(())
    }
}

impl Admin<'_> {
    pub async fn idps(&self) -> AdminResult<Vec<IdpView>> {
        self.authorize(Operation::ListIdps, TargetKind::Ordinary)?;
        let mut v = self.store.list_idps().await?;
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v.iter().map(|i| self.idp_view(i)).collect())
    }

    pub async fn idp(&self, name: &str) -> AdminResult<IdpView> {
        self.authorize(Operation::ReadIdp, TargetKind::Ordinary)?;
        Ok(self.idp_view(&self.stored_idp(name).await?))
    }

    async fn stored_idp(&self, name: &str) -> AdminResult<IdentityProvider> {
        self.store
            .list_idps()
            .await?
            .into_iter()
            .find(|i| i.name == name)
            .ok_or_else(|| AdminError::NotFound(format!("identity provider {name}")))
    }

    /// Refuses unless the caller may perform `op` on the identity provider `name`.
    pub async fn may_on_idp(&self, op: Operation, name: &str) -> AdminResult<()> {
        self.authorize(op, TargetKind::Ordinary)?;
        let clients = self.store.list_clients().await?;
        self.authorize(op, self.idp_kind(name, &clients).await?)
    }

    pub async fn create_idp(&self, spec: &IdpSpec) -> AdminResult<IdpView> {
        self.authorize(Operation::CreateIdp, TargetKind::Ordinary)?;
        let idp = &spec.to_idp(
            None,
            self.settings.allow_private_addresses,
            &self.master,
            self.now(),
        )?;
        self.settle(|| async move {
            let version = self.read_version().await?;
            self.domains_free(idp).await?;
            let change = Change::Create(Record::Idp(idp.clone()));
            self.commit_as(version, &[change], None, audit_detail(idp))
                .await
        })
        .await?;
        Ok(self.idp_view(idp))
    }

    /// Replaces the identity provider named by `spec` (a secret not given is kept).
    pub async fn update_idp(&self, spec: &IdpSpec) -> AdminResult<IdpView> {
        self.settle(|| self.try_update_idp(spec)).await
    }

    async fn try_update_idp(&self, spec: &IdpSpec) -> AdminResult<IdpView> {
        self.may_on_idp(Operation::ReplaceIdp, &spec.name).await?;
        let version = self.read_version().await?;
        let existing = self.stored_idp(&spec.name).await?;
        self.precondition(&self.idp_view(&existing))?;
        let idp = spec.to_idp(
            Some(&existing),
            self.settings.allow_private_addresses,
            &self.master,
            self.now(),
        )?;
        self.domains_free(&idp).await?;
        self.commit_as(
            version,
            &[Change::Update(Record::Idp(idp.clone()))],
            None,
            audit_detail(&idp),
        )
        .await?;
        Ok(self.idp_view(&idp))
    }

    /// Refuses while a scheme names it; deleting it unlinks every identity at it.
    pub async fn delete_idp(&self, name: &str) -> AdminResult<()> {
        self.settle(|| self.try_delete_idp(name)).await
    }

    async fn try_delete_idp(&self, name: &str) -> AdminResult<()> {
        self.may_on_idp(Operation::DeleteIdp, name).await?;
        let version = self.read_version().await?;
        self.precondition(&self.idp_view(&self.stored_idp(name).await?))?;
        let users: Vec<String> = self
            .store
            .list_schemes()
            .await?
            .into_iter()
            .filter(|s| s.identity_providers.iter().any(|n| n == name))
            .map(|s| s.name)
            .collect();
        if !users.is_empty() {
            return Err(AdminError::Conflict(format!(
                "identity provider {name} is still named by scheme {}",
                users.join(", ")
            )));
        }
        let exchanging: Vec<String> = self
            .store
            .list_clients()
            .await?
            .into_iter()
            .filter(|c| {
                c.federation
                    .exchange_identity_providers
                    .iter()
                    .any(|n| n == name)
            })
            .map(|c| c.client_id)
            .collect();
        if !exchanging.is_empty() {
            return Err(AdminError::Conflict(format!(
                "identity provider {name} is still named by the token exchange of application {}",
                exchanging.join(", ")
            )));
        }
        self.commit_as(
            version,
            &[Change::Delete(Table::Idps, name.to_owned())],
            None,
            Value::Null,
        )
        .await
    }
}

fn audit_detail(i: &IdentityProvider) -> Value {
    json!({
        "protocol": i.protocol.as_str(),
        "issuer": i.issuer,
        "jit": i.jit,
        "link_by_email": i.link_by_email,
    })
}
