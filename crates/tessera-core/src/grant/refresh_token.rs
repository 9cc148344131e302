//! The refresh_token grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2): each use answers a new
//! refresh token; reusing a rotated one revokes the whole grant, except that within a short grace
//! window a retry gets the very same new pair (a client that lost the response must not be
//! punished for retrying).

use serde_json::Value;

use super::user_tokens::RefreshRecord;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::grant::TokenResponse;
use crate::model::{Artifact, ArtifactKind};
use crate::provider::{LoadedClient, Provider};
use crate::secret::handle_key;
use crate::store::{Consume, Consumed};

const BAD_TOKEN: &str =
    "the refresh token is invalid, expired, revoked, or was issued to another client";

impl Provider {
    /// RFC 6749 §6.
    pub(crate) async fn refresh_token(
        &self,
        loaded: &LoadedClient,
        token: &str,
        scope: Option<Vec<String>>,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let client = &loaded.client;
        let key = handle_key(token).ok_or_else(|| Error::invalid_grant(BAD_TOKEN))?;
        let artifact = self
            .store
            .get_artifact(&key)
            .await?
            .filter(|a| a.kind == ArtifactKind::RefreshToken && a.client_id == client.client_id)
            .ok_or_else(|| Error::invalid_grant(BAD_TOKEN))?;
        if artifact.revoked_at.is_some() || artifact.expires_at <= now {
            return Err(Error::invalid_grant(BAD_TOKEN));
        }
        if artifact.consumed_at.is_some() {
            return self.reused(&artifact, now).await;
        }
        let grant_id = artifact
            .grant_id
            .clone()
            .ok_or_else(|| Error::server("refresh token without a grant"))?;
        let grant = self.active_grant(&grant_id, now).await?.ok_or_else(|| {
            Error::invalid_grant("the authorization was revoked or the user is blocked")
        })?;
        let record: RefreshRecord =
            serde_json::from_value(artifact.payload.clone()).map_err(Error::server)?;
        // RFC 6749 §6: the scope may only narrow.
        let scope = match scope {
            Some(s) => {
                if let Some(bad) = s.iter().find(|x| !record.scope.contains(x)) {
                    return Err(Error::invalid_scope(format!(
                        "scope {bad} was not granted to this refresh token"
                    )));
                }
                s
            }
            None => record.scope.clone(),
        };
        let response = self
            .tokens_for_grant(loaded, &grant, &scope, None, None, now)
            .await?;
        let sealed = self.master.encrypt(
            &successor_context(&artifact),
            &serde_json::to_vec(&response).map_err(Error::server)?,
        );
        let rotated = RefreshRecord {
            successor: Some(sealed),
            ..record
        };
        let payload = serde_json::to_value(&rotated).map_err(Error::server)?;
        match self
            .store
            .consume_artifact(
                Consume {
                    key: &key,
                    kind: ArtifactKind::RefreshToken,
                    client_id: &client.client_id,
                },
                now,
                Some(&payload),
            )
            .await?
        {
            Consumed::First(_) => Ok(response),
            Consumed::Again(winner) => {
                // A concurrent request rotated it first: withdraw ours, answer as a retry.
                if let Some(new) = response.refresh_token.as_deref().and_then(handle_key) {
                    self.store.revoke_artifact(&new, now).await?;
                }
                self.reused(&winner, now).await
            }
            Consumed::Missing => Err(Error::invalid_grant(BAD_TOKEN)),
        }
    }

    /// A rotated refresh token presented again: within the grace window the same answer, after it
    /// a reuse, which revokes the grant.
    async fn reused(&self, artifact: &Artifact, now: Timestamp) -> Result<TokenResponse> {
        let within_grace = artifact
            .consumed_at
            .is_some_and(|at| now.0 - at.0 <= self.settings.refresh_grace);
        if within_grace {
            if let Some(Value::String(sealed)) = artifact.payload.get("successor") {
                if let Ok(plain) = self.master.decrypt(&successor_context(artifact), sealed) {
                    let response: TokenResponse =
                        serde_json::from_slice(&plain).map_err(Error::server)?;
                    // Only while the successor is untouched: a grant revoked meanwhile, or a
                    // successor already used or revoked, answers no.
                    let grant_ok = match &artifact.grant_id {
                        Some(g) => self.active_grant(g, now).await?.is_some(),
                        None => false,
                    };
                    let successor_live =
                        match response.refresh_token.as_deref().and_then(handle_key) {
                            Some(k) => {
                                self.store.get_artifact(&k).await?.is_some_and(|s| {
                                    s.consumed_at.is_none() && s.revoked_at.is_none()
                                })
                            }
                            None => false,
                        };
                    if grant_ok && successor_live {
                        return Ok(response);
                    }
                }
            }
            return Err(Error::invalid_grant(BAD_TOKEN));
        }
        if let Some(g) = &artifact.grant_id {
            tracing::warn!(client_id = %artifact.client_id, grant_id = %g, "rotated refresh token reused; grant revoked");
            self.revoke_grant(g, now).await?;
        }
        Err(Error::invalid_grant(
            "the refresh token was already used; the authorization is revoked",
        ))
    }
}

/// Binds the sealed successor to the token it succeeds.
fn successor_context(a: &Artifact) -> String {
    format!("refresh-successor:{}", crate::secret::b64url(&a.key.0))
}
