//! SSO sessions in the browser: a cookie holds a random handle, the store keeps its digest with
//! the user, `auth_time`, `amr` and the `sid` ID tokens carry (OIDC Core §2, Session Management).
//! Each grant made in a session is linked to its sid, so logout knows whom to tell.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::factor::FactorUse;
use crate::model::{Artifact, ArtifactKey, ArtifactKind, User};
use crate::provider::Provider;
use crate::secret::{b64url, handle_key, new_handle, random_bytes, sha256};
use crate::store::{Consume, Consumed};

/// What a session records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub sid: String,
    pub user_id: String,
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    pub acr: String,
    /// The user's [`User::sign_out_epoch`] when the session started: the session is in force
    /// only while the user's is still the same.
    #[serde(default)]
    pub epoch: u64,
    /// Every factor proved in the session, and when; `amr` is made from them.
    #[serde(default)]
    pub factors: Vec<FactorUse>,
}

impl SessionRecord {
    /// The factors proved (a session from before factors were recorded proved a password at
    /// its `auth_time`).
    pub fn uses(&self) -> Vec<FactorUse> {
        if self.factors.is_empty() && self.amr.iter().any(|a| a == "pwd") {
            return vec![FactorUse::password(self.auth_time)];
        }
        self.factors.clone()
    }
}

/// A session in force, with its user.
#[derive(Debug, Clone)]
pub struct Session {
    pub key: ArtifactKey,
    pub record: SessionRecord,
    pub user: User,
    pub expires_at: Timestamp,
}

/// A grant made in a session: the client to notify at logout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionGrant {
    pub grant_id: String,
    pub offline: bool,
}

impl Provider {
    /// OIDC Session Management §3: the opaque browser state the check_session iframe reads from
    /// the `tessera_browser_state` cookie; derived from the sid so it changes with the session.
    pub fn browser_state(&self, sid: &str) -> String {
        b64url(
            &self
                .master
                .derive(format!("browser-state\0{sid}").as_bytes())[..16],
        )
    }

    /// OIDC Session Management §3: `session_state` for a response to `redirect_uri`.
    pub fn session_state(&self, client_id: &str, redirect_uri: &str, sid: &str) -> String {
        let origin = url::Url::parse(redirect_uri)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        let salt = b64url(&random_bytes::<8>());
        let text = format!("{client_id} {origin} {} {salt}", self.browser_state(sid));
        let hex: String = sha256(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{hex}.{salt}")
    }

    /// Starts a session for `user` with the factors `uses` (continuing `sid` when the user
    /// signed in again); returns the cookie value. The cookie's handle is new every time (no
    /// session fixation). `auth_time` is now: a factor was just proved. The session is stored in
    /// the one write that uses up the interaction `spent`, and only if this call used it up:
    /// `None` when it was used up before (or is gone).
    async fn start_session(
        &self,
        user: &User,
        uses: Vec<FactorUse>,
        sid: Option<String>,
        spent: Consume<'_>,
        now: Timestamp,
    ) -> Result<Option<(String, SessionRecord)>> {
        let (handle, key) = new_handle();
        let record = SessionRecord {
            sid: sid.unwrap_or_else(|| b64url(&random_bytes::<16>())),
            user_id: user.id.clone(),
            auth_time: now,
            amr: crate::scheme::amr(&uses),
            acr: crate::scheme::ACR_PASSWORD.to_owned(),
            epoch: user.sign_out_epoch,
            factors: uses,
        };
        let artifact = Artifact {
            key,
            kind: ArtifactKind::Session,
            client_id: String::new(),
            grant_id: Some(record.sid.clone()),
            user_id: Some(user.id.clone()),
            expires_at: now.plus(self.settings.session_lifetime),
            revoked_at: None,
            consumed_at: None,
            payload: serde_json::to_value(&record).map_err(Error::server)?,
        };
        match self
            .store
            .rotate_artifact(spent, now, None, &artifact)
            .await?
        {
            Consumed::First(_) => {}
            Consumed::Again(_) | Consumed::Missing => return Ok(None),
        }
        tracing::info!(user_id = %user.id, sid = %record.sid, "session started");
        Ok(Some((handle, record)))
    }

    /// Signs `user` in with one more factor proved at the interaction `spent`, which this uses
    /// up: the browser's session continues (same sid, the factors it proved kept) when it is the
    /// same user's, and ends when it is another's. Returns the new cookie and the session, or
    /// `None`, with nothing changed, when `spent` was used up before (a second post of its form).
    pub(crate) async fn add_factor(
        &self,
        previous: Option<Session>,
        user: User,
        used: FactorUse,
        spent: Consume<'_>,
        now: Timestamp,
    ) -> Result<Option<(String, Session)>> {
        let same_user = previous.as_ref().is_some_and(|p| p.user.id == user.id);
        let (sid, mut uses) = match &previous {
            Some(p) if same_user => (Some(p.record.sid.clone()), p.record.uses()),
            _ => (None, Vec::new()),
        };
        // One use per kind of proof: the latest.
        uses.retain(|u| u.proof != used.proof);
        uses.push(used);
        let Some((cookie, record)) = self.start_session(&user, uses, sid, spent, now).await? else {
            return Ok(None);
        };
        // The previous session goes once the new one stands: its handle (the sid continues), or
        // all of it (another user's sid; the new session's is new).
        match previous {
            Some(p) if same_user => {
                self.store.revoke_artifact(&p.key, now).await?;
            }
            Some(p) => {
                self.end_session(&p.record.sid, now).await?;
            }
            None => {}
        }
        let session = Session {
            key: handle_key(&cookie).ok_or_else(|| Error::server("session handle"))?,
            record,
            user,
            expires_at: now.plus(self.settings.session_lifetime),
        };
        Ok(Some((cookie, session)))
    }

    /// The session a cookie names, if it is in force and its user may still sign in.
    pub async fn session(&self, cookie: Option<&str>, now: Timestamp) -> Result<Option<Session>> {
        let Some(key) = cookie.and_then(handle_key) else {
            return Ok(None);
        };
        let Some(a) = self.store.get_artifact(&key).await? else {
            return Ok(None);
        };
        if a.kind != ArtifactKind::Session || a.revoked_at.is_some() || a.expires_at <= now {
            return Ok(None);
        }
        let record: SessionRecord = serde_json::from_value(a.payload).map_err(Error::server)?;
        let Some(user) = self.store.get_user(&record.user_id).await? else {
            return Ok(None);
        };
        if user.blocked || user.sign_out_epoch != record.epoch {
            return Ok(None);
        }
        Ok(Some(Session {
            key,
            record,
            user,
            expires_at: a.expires_at,
        }))
    }

    /// A grant made for `client_id` in the session `sid`, while the session and the grant are
    /// in force and the user is not blocked.
    pub(crate) async fn session_grant_of(
        &self,
        sid: &str,
        client_id: &str,
        now: Timestamp,
    ) -> Result<Option<crate::user_grant::ActiveGrant>> {
        for a in self.store.artifacts_of(sid).await? {
            let live = a.kind == ArtifactKind::SessionGrant
                && a.client_id == client_id
                && a.revoked_at.is_none()
                && a.expires_at > now;
            if !live {
                continue;
            }
            let Ok(link) = serde_json::from_value::<SessionGrant>(a.payload) else {
                continue;
            };
            if let Some(g) = self.active_grant(&link.grant_id, now).await? {
                return Ok(Some(g));
            }
        }
        Ok(None)
    }

    /// Ends a session: the session stops, and grants made in it without `offline_access` are
    /// revoked. Returns the clients that took part, to notify (front- and back-channel logout).
    pub(crate) async fn end_session(&self, sid: &str, now: Timestamp) -> Result<Vec<String>> {
        let mut clients: Vec<String> = Vec::new();
        for a in self.store.artifacts_of(sid).await? {
            if a.kind != ArtifactKind::SessionGrant {
                continue;
            }
            if !clients.contains(&a.client_id) {
                clients.push(a.client_id.clone());
            }
            if let Ok(link) = serde_json::from_value::<SessionGrant>(a.payload) {
                if !link.offline {
                    self.revoke_grant(&link.grant_id, now).await?;
                }
            }
        }
        // Revokes the session record and the links (they share the sid as grant id).
        self.store.revoke_grant(sid, now).await?;
        tracing::info!(sid, "session ended");
        Ok(clients)
    }
}

/// The record linking a grant to the session `sid` it was made in, not stored yet (its key is
/// the same for the same session and grant).
pub(crate) fn session_grant_link(
    sid: &str,
    client_id: &str,
    link: &SessionGrant,
    expires_at: Timestamp,
) -> Result<Artifact> {
    let digest = sha256(format!("session-grant:{sid}:{}", link.grant_id).as_bytes());
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&digest[..8]);
    Ok(Artifact {
        key: ArtifactKey::new(prefix, digest),
        kind: ArtifactKind::SessionGrant,
        client_id: client_id.to_owned(),
        grant_id: Some(sid.to_owned()),
        user_id: None,
        expires_at,
        revoked_at: None,
        consumed_at: None,
        payload: serde_json::to_value(link).map_err(Error::server)?,
    })
}
