//! The refresh_token grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2): each use answers a new
//! refresh token; reusing a rotated one revokes the whole grant. A confidential application may
//! opt into a short grace window (`refresh_grace_secs`, off by default) in which a retry gets the
//! very same new pair, so a client that lost the response is not punished for retrying; the
//! trade-off is that a stolen token used within the window yields that pair too. `resource`
//! narrows the new access token's audience (RFC 8707 §2.2).

use serde_json::Value;

use super::user_tokens::RefreshRecord;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::grant::Caller;
use crate::grant::TokenResponse;
use crate::model::{Artifact, ArtifactKind, Client};
use crate::provider::Provider;
use crate::secret::handle_key;
use crate::store::{Consume, Consumed};

/// A refresh token in force, as introspection and token exchange see it.
#[derive(Debug, Clone)]
pub(crate) struct RefreshToken {
    pub client_id: String,
    pub grant_id: String,
    /// The user's subject as the client knows it.
    pub sub: String,
    pub scope: Vec<String>,
    pub expires_at: Timestamp,
}

const BAD_TOKEN: &str =
    "the refresh token is invalid, expired, revoked, or was issued to another client";

impl Provider {
    /// `token` as a refresh token issued to `client` and in force: unrevoked, unexpired, not
    /// rotated yet, its grant in force and its user not blocked.
    pub(crate) async fn active_refresh_token(
        &self,
        token: &str,
        client: &Client,
        now: Timestamp,
    ) -> Result<Option<RefreshToken>> {
        let Some(key) = handle_key(token) else {
            return Ok(None);
        };
        let Some(read) = self.store.get_artifact_with_grant(&key).await?.filter(|r| {
            let a = &r.artifact;
            a.kind == ArtifactKind::RefreshToken
                && a.client_id == client.client_id
                && a.revoked_at.is_none()
                && a.consumed_at.is_none()
                && a.expires_at > now
        }) else {
            return Ok(None);
        };
        let a = read.artifact;
        let grant_id = a
            .grant_id
            .as_deref()
            .ok_or_else(|| Error::server("refresh token without a grant"))?;
        let Some(grant) = self
            .active_grant_read(grant_id, read.grant, read.user, now)
            .await?
        else {
            return Ok(None);
        };
        let record: RefreshRecord = a.payload_as().map_err(Error::server)?;
        Ok(Some(RefreshToken {
            grant_id: grant.id,
            client_id: a.client_id,
            sub: self.subject(client, &grant.user)?,
            scope: record.scope,
            expires_at: a.expires_at,
        }))
    }

    /// RFC 6749 §6.
    pub(crate) async fn refresh_token(
        &self,
        loaded: &Caller<'_>,
        token: &str,
        scope: Option<Vec<String>>,
        resources: &[String],
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let client = &loaded.client;
        let key = handle_key(token).ok_or_else(|| Error::invalid_grant(BAD_TOKEN))?;
        // The token with its grant and user, in one read.
        let read = self
            .store
            .get_artifact_with_grant(&key)
            .await?
            .filter(|r| {
                r.artifact.kind == ArtifactKind::RefreshToken
                    && r.artifact.client_id == client.client_id
            })
            .ok_or_else(|| Error::invalid_grant(BAD_TOKEN))?;
        let artifact = read.artifact;
        if artifact.revoked_at.is_some() || artifact.expires_at <= now {
            return Err(Error::invalid_grant(BAD_TOKEN));
        }
        let record: RefreshRecord = artifact.payload_as().map_err(Error::server)?;
        // RFC 9449 §5, RFC 8705 §4: a bound refresh token is used only with its key's proof
        // or over a connection with its certificate; checked first, so that whoever holds a
        // rotated one without the key cannot make it count as reuse and end the grant.
        if let Some(jkt) = &record.dpop_jkt {
            if loaded.binding.jkt != Some(jkt.as_str()) {
                return Err(crate::dpop::invalid_proof(
                    "the refresh token is bound to a DPoP key: send a DPoP proof made with it",
                ));
            }
        }
        if let Some(x5t) = &record.x5t {
            if loaded.binding.x5t != Some(x5t.as_str()) {
                return Err(Error::invalid_grant(
                    "the refresh token is bound to a client certificate: present it",
                ));
            }
        }
        if artifact.consumed_at.is_some() {
            return self.reused(client, &artifact, now).await;
        }
        let grant_id = artifact
            .grant_id
            .clone()
            .ok_or_else(|| Error::server("refresh token without a grant"))?;
        let grant = self
            .active_grant_read(&grant_id, read.grant, read.user, now)
            .await?
            .ok_or_else(|| {
                Error::invalid_grant("the authorization was revoked or the user is blocked")
            })?;
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
        // RFC 8707 §2.2: the resources may only narrow what the grant was made for (the client's
        // APIs when it named none).
        let allowed = if grant.record.resources.is_empty() {
            &client.apis
        } else {
            &grant.record.resources
        };
        if let Some(r) = resources.iter().find(|r| !allowed.contains(r)) {
            return Err(Error::invalid_target(format!(
                "resource {r} is not one this refresh token was granted for"
            )));
        }
        let minted = self
            .mint_for_grant(loaded, &grant, &scope, resources, None, now)
            .await?;
        let response = minted.response;
        // The answer is kept, sealed, only for a client with a grace window, the one reader of it
        // ([`Provider::reused`]); without one the consumed token stays as small as it was.
        let payload = if grace_secs(client) > 0 {
            let sealed = self.master.encrypt(
                &successor_context(&artifact),
                &serde_json::to_vec(&response).map_err(Error::server)?,
            );
            let rotated = RefreshRecord {
                successor: Some(sealed),
                ..record
            };
            Some(serde_json::to_value(&rotated).map_err(Error::server)?)
        } else {
            None
        };
        let which = Consume {
            key: &key,
            kind: ArtifactKind::RefreshToken,
            client_id: &client.client_id,
        };
        // One write consumes this token and stores its successor, which exists only if this
        // request won the rotation.
        let consumed = match &minted.refresh {
            Some(successor) => {
                self.store
                    .rotate_artifact(which, now, payload.as_ref(), successor)
                    .await?
            }
            None => {
                self.store
                    .consume_artifact(which, now, payload.as_ref())
                    .await?
            }
        };
        match consumed {
            Consumed::First(a) if a.revoked_at.is_none() => Ok(response),
            // Revoked (with its grant) since it was read: what was made from it is void.
            Consumed::First(_) | Consumed::Missing => Err(Error::invalid_grant(BAD_TOKEN)),
            // A concurrent request rotated it first: answer as a retry.
            Consumed::Again(winner) => self.reused(client, &winner, now).await,
        }
    }

    /// A rotated refresh token presented again: a reuse, which revokes the grant; except within
    /// the grace window a confidential application opted into, where it is a retry answered with
    /// the same pair.
    async fn reused(
        &self,
        client: &Client,
        artifact: &Artifact,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let grace = grace_secs(client);
        let within_grace =
            grace > 0 && artifact.consumed_at.is_some_and(|at| now.0 - at.0 <= grace);
        if within_grace {
            if let Some(Value::String(sealed)) = artifact.payload.get("successor") {
                if let Ok(plain) = self.master.decrypt(&successor_context(artifact), sealed) {
                    let response: TokenResponse =
                        serde_json::from_slice(&plain).map_err(Error::server)?;
                    // Only while the successor is untouched: after the successor was used (or
                    // revoked), the old token coming back is reuse like any other.
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

/// The seconds a rotated refresh token of `client` may be retried for the same answer: its
/// `refresh_grace_secs` when it is confidential, none for a public client.
fn grace_secs(client: &Client) -> i64 {
    if client.client_type.is_confidential() {
        client.refresh_grace_secs
    } else {
        0
    }
}

/// Binds the sealed successor to the token it succeeds.
fn successor_context(a: &Artifact) -> String {
    format!("refresh-successor:{}", crate::secret::b64url(&a.key.0))
}
