//! Requests a user decides away from the client that made them: device authorization (RFC
//! 8628) and client-initiated backchannel authentication (OpenID CIBA Core 1.0). One rule for
//! both: the request is an artifact; the user's decision is a second one, made once (approved
//! with the grant it made, or denied); the client polls the token endpoint (`authorization_
//! pending`, `slow_down` when sooner than the interval, `expired_token`, `access_denied`) and
//! gets the grant's tokens once, when the request is consumed.

use serde_json::json;

use crate::clock::Timestamp;
use crate::error::{Error, ErrorCode, Result};
use crate::grant::{Caller, TokenResponse};
use crate::model::{Artifact, ArtifactKey, ArtifactKind};
use crate::provider::Provider;
use crate::secret::{b64url, b64url_decode, handle_key, sha256};
use crate::store::{Consume, Consumed, StoreError};

/// Seconds a polling client waits between polls (RFC 8628 §3.2, CIBA §7.3 `interval`).
pub const POLL_INTERVAL: i64 = 5;

/// Which kind of decoupled request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoupled {
    Device,
    Backchannel,
}

impl Decoupled {
    fn kind(self) -> ArtifactKind {
        match self {
            Decoupled::Device => ArtifactKind::DeviceCode,
            Decoupled::Backchannel => ArtifactKind::BackchannelRequest,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Decoupled::Device => "device_code",
            Decoupled::Backchannel => "auth_req_id",
        }
    }
}

/// A key found from a value alone (its first bytes as the prefix).
pub(crate) fn derived_key(purpose: &str, value: &str) -> ArtifactKey {
    let digest = sha256(format!("{purpose}\0{value}").as_bytes());
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&digest[..8]);
    ArtifactKey::new(prefix, digest)
}

/// The decision's key for the request whose key is `request_b64` (base64url).
fn decision_key(which: Decoupled, request_b64: &str) -> ArtifactKey {
    derived_key(&format!("{}-decision", which.name()), request_b64)
}

/// A request key as the browser and the account page carry it (base64url).
pub(crate) fn key_from_b64(s: &str) -> Option<ArtifactKey> {
    let raw: [u8; 40] = b64url_decode(s)?.try_into().ok()?;
    Some(ArtifactKey(raw))
}

impl Provider {
    /// The request in force, by its key (base64url): unexpired, not consumed or revoked.
    pub(crate) async fn decoupled_request(
        &self,
        which: Decoupled,
        request_b64: &str,
        now: Timestamp,
    ) -> Result<Option<Artifact>> {
        let Some(key) = key_from_b64(request_b64) else {
            return Ok(None);
        };
        Ok(self.store.get_artifact(&key).await?.filter(|a| {
            a.kind == which.kind()
                && a.expires_at > now
                && a.consumed_at.is_none()
                && a.revoked_at.is_none()
        }))
    }

    /// Whether the request was decided already.
    pub(crate) async fn decided(&self, which: Decoupled, request_b64: &str) -> Result<bool> {
        Ok(self
            .store
            .get_artifact(&decision_key(which, request_b64))
            .await?
            .is_some())
    }

    /// Records the decision on a request in force, once: `false` when it was decided already (or
    /// is no longer in force); the second decision loses.
    pub(crate) async fn record_decision(
        &self,
        which: Decoupled,
        request_b64: &str,
        grant_id: Option<&str>,
        now: Timestamp,
    ) -> Result<bool> {
        let Some(request) = self.decoupled_request(which, request_b64, now).await? else {
            return Ok(false);
        };
        let decision = Artifact {
            key: decision_key(which, request_b64),
            kind: ArtifactKind::Decision,
            client_id: request.client_id,
            grant_id: grant_id.map(str::to_owned),
            user_id: None,
            expires_at: request.expires_at,
            revoked_at: None,
            consumed_at: None,
            payload: json!({ "approved": grant_id.is_some() }),
        };
        match self.store.insert_artifact(&decision).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// RFC 8628 §3.4-3.5, CIBA §11: the token request of a polling client.
    pub(crate) async fn poll_decided(
        &self,
        which: Decoupled,
        loaded: &Caller<'_>,
        handle: &str,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        let client = &loaded.client;
        let name = which.name();
        let unknown = || {
            Error::invalid_grant(format!(
                "the {name} is invalid or was issued to another client"
            ))
        };
        let key = handle_key(handle).ok_or_else(unknown)?;
        let request = self
            .store
            .get_artifact(&key)
            .await?
            .filter(|a| a.kind == which.kind() && a.client_id == client.client_id)
            .ok_or_else(unknown)?;
        if request.consumed_at.is_some() || request.revoked_at.is_some() {
            return Err(Error::invalid_grant(format!("the {name} was already used")));
        }
        if request.expires_at <= now {
            return Err(Error::new(
                ErrorCode::ExpiredToken,
                format!("the {name} expired; start again"),
            ));
        }
        let request_b64 = b64url(&key.0);
        let Some(decision) = self
            .store
            .get_artifact(&decision_key(which, &request_b64))
            .await?
        else {
            // Polled again before the interval passed: slow_down.
            let polls = self
                .store
                .count_failure(&format!("{name}-poll:{request_b64}"), now, POLL_INTERVAL)
                .await?;
            return Err(if polls > 1 {
                Error::new(
                    ErrorCode::SlowDown,
                    "polling too fast: wait 5 seconds more between requests",
                )
            } else {
                Error::new(
                    ErrorCode::AuthorizationPending,
                    "the user has not completed the authorization yet",
                )
            });
        };
        let spent = Consume {
            key: &key,
            kind: which.kind(),
            client_id: &client.client_id,
        };
        let used = || Error::invalid_grant(format!("the {name} was already used"));
        // A refused request is spent all the same; an approved one in the write that stores its
        // refresh token, so that a request failing before it leaves the retry its tokens.
        let refuse = |refusal: Error| async move {
            match self.store.consume_artifact(spent, now, None).await? {
                Consumed::First(_) => Err(refusal),
                _ => Err(used()),
            }
        };
        let Some(grant_id) = decision
            .grant_id
            .filter(|_| decision.payload["approved"] == true)
        else {
            return refuse(Error::access_denied("the user denied the authorization")).await;
        };
        let Some(grant) = self.active_grant(&grant_id, now).await? else {
            let refusal =
                Error::invalid_grant("the authorization was revoked or the user is blocked");
            return refuse(refusal).await;
        };
        match self
            .redeem_for_grant(loaded, &grant, None, spent, now)
            .await?
        {
            (Consumed::First(_), tokens) => Ok(tokens),
            _ => Err(used()),
        }
    }
}
