//! Grants (DESIGN §2): one user's authorization of one client. Codes, refresh tokens and access
//! tokens carry its id; replaying a code or reusing a rotated refresh token revokes all of them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::{Artifact, ArtifactKey, ArtifactKind, Client, User};
use crate::provider::Provider;
use crate::secret::{b64url, b64url_decode, random_bytes, sha256};

/// What a grant records: who authorized which client, how they signed in, what was granted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub user_id: String,
    pub client_id: String,
    pub scope: Vec<String>,
    /// RFC 8707 resources (audiences) the grant was made for.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The SSO session the grant was made in (OIDC `sid`); empty for grants made at the token
    /// endpoint (password, JWT bearer, token exchange), which no browser session holds.
    pub sid: String,
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    pub acr: String,
    /// `offline_access` was granted: the grant outlives the session (OIDC Core §11).
    pub offline: bool,
    /// The OIDC `claims` request parameter, kept for userinfo (OIDC Core §5.5).
    #[serde(default)]
    pub claims_request: Option<serde_json::Value>,
    /// The user's [`User::sign_out_epoch`] when the user signed in: the grant is in force only
    /// while the user's is still the same.
    #[serde(default)]
    pub epoch: u64,
}

impl GrantRecord {
    /// Whether the user was asserted by an application (the JWT bearer grant) rather than
    /// authenticated by Tessera.
    pub fn asserted(&self) -> bool {
        self.amr.iter().any(|m| m == "jwt")
    }
}

/// A grant id: base64url of an 8-byte time prefix and 128 random bits (32 characters).
pub fn new_grant_id() -> String {
    let mut raw = [0u8; 24];
    raw[..8].copy_from_slice(&crate::secret::random_bytes::<8>());
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    raw[..8].copy_from_slice(&(ms << 16).to_be_bytes());
    raw[8..].copy_from_slice(&random_bytes::<16>());
    b64url(&raw)
}

/// The store key of a grant's own record.
pub fn grant_key(grant_id: &str) -> Option<ArtifactKey> {
    let raw = b64url_decode(grant_id)?;
    if raw.len() != 24 {
        return None;
    }
    let prefix: [u8; 8] = raw[..8].try_into().ok()?;
    Some(ArtifactKey::new(
        prefix,
        sha256(format!("grant:{grant_id}").as_bytes()),
    ))
}

/// A new grant's id and record, not stored yet; it lives as long as the longest token it may
/// produce.
pub(crate) fn new_grant(
    client: &Client,
    record: &GrantRecord,
    now: Timestamp,
) -> Result<(String, Artifact)> {
    let id = new_grant_id();
    let key = grant_key(&id).ok_or_else(|| Error::server("grant id"))?;
    let b = &client.browser;
    let expires_at = now.plus(
        b.refresh_token_ttl
            .max(client.access_token_ttl)
            .max(b.id_token_ttl)
            .max(b.code_ttl),
    );
    let artifact = Artifact {
        key,
        kind: ArtifactKind::Grant,
        client_id: client.client_id.clone(),
        grant_id: Some(id.clone()),
        user_id: Some(record.user_id.clone()),
        expires_at,
        revoked_at: None,
        consumed_at: None,
        payload: serde_json::to_value(record).map_err(Error::server)?,
    };
    Ok((id, artifact))
}

/// A grant that is still in force, with its user.
#[derive(Debug, Clone)]
pub struct ActiveGrant {
    pub id: String,
    pub record: GrantRecord,
    pub user: User,
    pub expires_at: Timestamp,
}

impl Provider {
    /// Records a new grant; it lives as long as the longest token it may produce.
    pub(crate) async fn create_grant(
        &self,
        client: &Client,
        record: &GrantRecord,
        now: Timestamp,
    ) -> Result<(String, Timestamp)> {
        let (id, artifact) = new_grant(client, record, now)?;
        let expires_at = artifact.expires_at;
        self.store.insert_artifact(&artifact).await?;
        self.remember_grant(artifact);
        Ok((id, expires_at))
    }

    /// After a new grant is stored: the code made with it is usually redeemed on this node
    /// moments later.
    pub(crate) fn remember_grant(&self, grant: Artifact) {
        self.artifacts.put(Arc::new(grant));
    }

    /// The grant if it is unrevoked, unexpired, and its user exists, is not blocked and was not
    /// signed out everywhere since.
    pub async fn active_grant(
        &self,
        grant_id: &str,
        now: Timestamp,
    ) -> Result<Option<ActiveGrant>> {
        let Some(key) = grant_key(grant_id) else {
            return Ok(None);
        };
        let artifact = match self.artifacts.get(&key) {
            Some(a) => a,
            None => {
                let Some(a) = self.store.get_artifact(&key).await? else {
                    return Ok(None);
                };
                let a = Arc::new(a);
                self.artifacts.put(a.clone());
                a
            }
        };
        self.grant_in_force(grant_id, &artifact, None, now).await
    }

    /// [`Provider::active_grant`] decided on the grant and user read with an artifact of the
    /// grant ([`crate::store::Store::get_artifact_with_grant`]), never on a cached copy: what
    /// that read did not hold (no grant of this id, another user) is read from the store again.
    pub(crate) async fn active_grant_read(
        &self,
        grant_id: &str,
        grant: Option<Artifact>,
        user: Option<User>,
        now: Timestamp,
    ) -> Result<Option<ActiveGrant>> {
        let Some(key) = grant_key(grant_id) else {
            return Ok(None);
        };
        let grant = match grant.filter(|g| g.key == key) {
            Some(g) => g,
            None => match self.store.get_artifact(&key).await? {
                Some(g) => g,
                None => return Ok(None),
            },
        };
        let grant = Arc::new(grant);
        self.artifacts.put(grant.clone());
        self.grant_in_force(grant_id, &grant, user, now).await
    }

    /// `artifact` as the grant `grant_id` if it is in force, with its user: `user` when that is
    /// the grant's user, else the one read now.
    async fn grant_in_force(
        &self,
        grant_id: &str,
        artifact: &Artifact,
        user: Option<User>,
        now: Timestamp,
    ) -> Result<Option<ActiveGrant>> {
        if artifact.kind != ArtifactKind::Grant
            || artifact.revoked_at.is_some()
            || artifact.expires_at <= now
        {
            return Ok(None);
        }
        let record: GrantRecord = artifact.payload_as().map_err(Error::server)?;
        let user = match user.filter(|u| u.id == record.user_id) {
            Some(u) => u,
            None => match self.store.get_user(&record.user_id).await? {
                Some(u) => u,
                None => return Ok(None),
            },
        };
        if user.blocked || user.sign_out_epoch != record.epoch {
            return Ok(None);
        }
        Ok(Some(ActiveGrant {
            id: grant_id.to_owned(),
            record,
            user,
            expires_at: artifact.expires_at,
        }))
    }

    /// Revokes a grant and everything issued from it; also forgets the cached copy.
    pub(crate) async fn revoke_grant(&self, grant_id: &str, now: Timestamp) -> Result<()> {
        let n = self.store.revoke_grant(grant_id, now).await?;
        if let Some(key) = grant_key(grant_id) {
            if let Some(a) = self.artifacts.get(&key) {
                self.artifacts.put(Arc::new(Artifact {
                    revoked_at: Some(now),
                    ..(*a).clone()
                }));
            }
        }
        tracing::info!(grant_id, revoked = n, "grant revoked");
        Ok(())
    }
}
