//! Applications (clients): create with a secret shown once, read, update, delete, rotate the secret.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{invalid, text, AdminError, AdminResult};
use crate::clock::Timestamp;
use crate::model::{
    Alg, AuthMethod, Client, ClientType, GrantType, TokenFormat, ACCESS_TOKEN_TTL_RANGE,
};
use crate::provider::Provider;
use crate::secret::{new_client_id, new_client_secret};
use crate::settings::check_range;
use crate::store::{Change, Record, Table};

/// A client as an administrator describes it; absent options take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// An explicit id, to migrate an existing integration; generated when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// An explicit secret, to migrate an existing integration; generated when absent.
    #[serde(default)]
    pub client_secret: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "type")]
    pub client_type: ClientType,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub apis: Vec<String>,
    #[serde(default)]
    pub token_format: Option<TokenFormat>,
    #[serde(default)]
    pub signing_alg: Option<Alg>,
    #[serde(default)]
    pub auth_method: Option<AuthMethod>,
    #[serde(default)]
    pub access_token_ttl: Option<i64>,
    #[serde(default)]
    pub introspection_allowed: Option<bool>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A partial update: only the fields that are set change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub apis: Option<Vec<String>>,
    pub token_format: Option<TokenFormat>,
    pub signing_alg: Option<Alg>,
    pub auth_method: Option<AuthMethod>,
    pub access_token_ttl: Option<i64>,
    pub introspection_allowed: Option<bool>,
    pub enabled: Option<bool>,
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
    pub(crate) fn validate_client(
        &self,
        c: &Client,
        scopes: &HashSet<String>,
        apis: &HashSet<String>,
    ) -> AdminResult<()> {
        if c.client_type != ClientType::M2m {
            return Err(invalid(
                "type",
                "only m2m (machine to machine) applications are supported so far",
            ));
        }
        check_range(
            "access_token_ttl",
            c.access_token_ttl,
            ACCESS_TOKEN_TTL_RANGE,
        )
        .map_err(|m| invalid("access_token_ttl", m))?;
        if let Some(s) = c.scopes.iter().find(|s| !scopes.contains(*s)) {
            return Err(invalid("scopes", format!("scope {s} does not exist")));
        }
        if let Some(a) = c.apis.iter().find(|a| !apis.contains(*a)) {
            return Err(invalid("apis", format!("API {a} does not exist")));
        }
        if !self.settings.keys.algorithms.contains(&c.signing_alg) {
            return Err(invalid(
                "signing_alg",
                format!(
                    "{} has no signing key (see keys.algorithms)",
                    c.signing_alg.as_str()
                ),
            ));
        }
        Ok(())
    }

    /// The scope names and API identifiers in the store.
    pub(crate) async fn catalog(&self) -> AdminResult<(HashSet<String>, HashSet<String>)> {
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
        Ok((scopes, apis))
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
        Ok(Client {
            client_id,
            name: text("name", &spec.name, true, 200)?,
            description: text("description", &spec.description, false, 1000)?,
            client_type: spec.client_type,
            enabled: spec.enabled.unwrap_or(true),
            grant_types: vec![GrantType::ClientCredentials],
            auth_method: spec.auth_method.unwrap_or(AuthMethod::ClientSecretBasic),
            scopes: dedup(&spec.scopes),
            apis: dedup(&spec.apis),
            token_format: spec.token_format.unwrap_or(TokenFormat::Jwt),
            signing_alg: spec.signing_alg.unwrap_or(Alg::RS256),
            access_token_ttl: spec
                .access_token_ttl
                .unwrap_or(self.settings.lifetimes.access_token),
            introspection_allowed: spec
                .introspection_allowed
                .unwrap_or(spec.client_type.is_confidential()),
            secret_ciphertext: existing.and_then(|e| e.secret_ciphertext.clone()),
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        })
    }

    /// Encrypts `secret` for the client; the plaintext leaves only through the caller.
    pub(crate) fn seal_secret(&self, client: &mut Client, secret: &str) {
        client.secret_ciphertext = Some(self.master.encrypt(&client.client_id, secret.as_bytes()));
    }

    /// The secret a spec asks for: the explicit one, or a new 256-bit secret.
    pub(crate) fn spec_secret(spec: &ClientSpec) -> AdminResult<String> {
        spec.client_secret
            .as_deref()
            .map(client_secret)
            .transpose()
            .map(|s| s.unwrap_or_else(new_client_secret))
    }

    pub(crate) fn decrypt_secret(&self, client: &Client) -> Option<Vec<u8>> {
        client
            .secret_ciphertext
            .as_ref()
            .and_then(|ct| self.master.decrypt(&client.client_id, ct).ok())
    }

    pub async fn create_client(&self, spec: &ClientSpec) -> AdminResult<CreatedClient> {
        let now = self.now();
        let mut client = self.client_from_spec(spec, None, now)?;
        let (scopes, apis) = self.catalog().await?;
        self.validate_client(&client, &scopes, &apis)?;
        let secret = Self::spec_secret(spec)?;
        self.seal_secret(&mut client, &secret);
        self.commit(&[Change::Create(Record::Client(client.clone()))])
            .await?;
        tracing::info!(client_id = %client.client_id, "client created");
        Ok(CreatedClient {
            client,
            client_secret: Some(secret),
        })
    }

    pub async fn get_client(&self, client_id: &str) -> AdminResult<Client> {
        self.store
            .get_client(client_id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("client {client_id}")))
    }

    pub async fn list_clients(&self) -> AdminResult<Vec<Client>> {
        Ok(self.store.list_clients().await?)
    }

    pub async fn update_client(&self, client_id: &str, patch: &ClientPatch) -> AdminResult<Client> {
        let mut c = self.get_client(client_id).await?;
        if let Some(v) = &patch.name {
            c.name = text("name", v, true, 200)?;
        }
        if let Some(v) = &patch.description {
            c.description = text("description", v, false, 1000)?;
        }
        if let Some(v) = &patch.scopes {
            c.scopes = v.clone();
        }
        if let Some(v) = &patch.apis {
            c.apis = v.clone();
        }
        c.token_format = patch.token_format.unwrap_or(c.token_format);
        c.signing_alg = patch.signing_alg.unwrap_or(c.signing_alg);
        c.auth_method = patch.auth_method.unwrap_or(c.auth_method);
        c.access_token_ttl = patch.access_token_ttl.unwrap_or(c.access_token_ttl);
        c.introspection_allowed = patch
            .introspection_allowed
            .unwrap_or(c.introspection_allowed);
        c.enabled = patch.enabled.unwrap_or(c.enabled);
        c.updated_at = self.now();
        let (scopes, apis) = self.catalog().await?;
        self.validate_client(&c, &scopes, &apis)?;
        self.commit(&[Change::Update(Record::Client(c.clone()))])
            .await?;
        Ok(c)
    }

    pub async fn delete_client(&self, client_id: &str) -> AdminResult<()> {
        self.commit(&[Change::Delete(Table::Clients, client_id.to_owned())])
            .await?;
        tracing::info!(client_id, "client deleted");
        Ok(())
    }

    /// Seed 000 "Revoke a client secret": the old secret stops working at once; the new one is
    /// returned once.
    pub async fn rotate_client_secret(&self, client_id: &str) -> AdminResult<String> {
        let mut c = self.get_client(client_id).await?;
        if !c.client_type.is_confidential() {
            return Err(AdminError::Conflict(format!(
                "client {client_id} is public and has no secret"
            )));
        }
        let secret = new_client_secret();
        self.seal_secret(&mut c, &secret);
        c.updated_at = self.now();
        self.commit(&[Change::Update(Record::Client(c))]).await?;
        tracing::info!(client_id, "client secret rotated");
        Ok(secret)
    }
}
