//! A user's SSO sessions and grants as administrators see them: listed, and revoked one at a
//! time or all at once. Ending a session prepares the back-channel logout tokens of the
//! applications that signed in through it (OIDC Back-Channel Logout §2.5, §2.7).

use serde::Serialize;
use serde_json::json;

use super::{Admin, AdminError, AdminResult};
use crate::clock::Timestamp;
use crate::end_session::LoggedOut;
use crate::error::{Error, ErrorCode};
use crate::model::{Artifact, ArtifactKind};
use crate::provider::Provider;
use crate::session::{Session, SessionRecord};
use crate::store::StoreError;
use crate::user_grant::GrantRecord;

/// An SSO session in force.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SessionView {
    /// The OIDC `sid` ID tokens of this session carry.
    pub sid: String,
    /// When the user signed in (`auth_time`).
    pub authenticated_at: Timestamp,
    pub amr: Vec<String>,
    pub acr: String,
    pub expires_at: Timestamp,
    /// The applications the user signed in to through this session.
    pub applications: Vec<String>,
}

/// A grant in force: one application's authorization by the user, which its refresh and access
/// tokens come from.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GrantView {
    pub id: String,
    pub client_id: String,
    pub scope: Vec<String>,
    /// RFC 8707 resources (APIs) the grant was made for.
    pub resources: Vec<String>,
    /// The session the grant was made in; none for grants made at the token endpoint.
    pub sid: Option<String>,
    pub authenticated_at: Timestamp,
    /// `offline_access` was granted: the grant outlives the session.
    pub offline: bool,
    pub expires_at: Timestamp,
}

fn in_force(a: &Artifact, kind: ArtifactKind, now: Timestamp) -> bool {
    a.kind == kind && a.revoked_at.is_none() && a.expires_at > now
}

fn decode<T: serde::de::DeserializeOwned>(a: &Artifact) -> AdminResult<T> {
    serde_json::from_value(a.payload.clone())
        .map_err(|e| AdminError::Store(StoreError::Other(Box::new(e))))
}

impl Provider {
    /// Every session and grant of the user, as stored, and the time to judge them by.
    async fn user_access(&self, user_id: &str) -> AdminResult<(Vec<Artifact>, Timestamp)> {
        Ok((self.store.user_artifacts(user_id).await?, self.now()))
    }

    /// The user's SSO sessions in force.
    pub async fn user_sessions(&self, user_id: &str) -> AdminResult<Vec<SessionView>> {
        let (all, now) = self.user_access(user_id).await?;
        let mut out = Vec::new();
        for a in all
            .iter()
            .filter(|a| in_force(a, ArtifactKind::Session, now))
        {
            let r: SessionRecord = decode(a)?;
            let mut applications: Vec<String> = Vec::new();
            for link in self.store.artifacts_of(&r.sid).await? {
                if in_force(&link, ArtifactKind::SessionGrant, now)
                    && !applications.contains(&link.client_id)
                {
                    applications.push(link.client_id);
                }
            }
            out.push(SessionView {
                sid: r.sid,
                authenticated_at: r.auth_time,
                amr: r.amr,
                acr: r.acr,
                expires_at: a.expires_at,
                applications,
            });
        }
        Ok(out)
    }

    /// The user's grants in force.
    pub async fn user_grants(&self, user_id: &str) -> AdminResult<Vec<GrantView>> {
        let (all, now) = self.user_access(user_id).await?;
        all.iter()
            .filter(|a| in_force(a, ArtifactKind::Grant, now))
            .map(|a| {
                let r: GrantRecord = decode(a)?;
                Ok(GrantView {
                    id: a.grant_id.clone().unwrap_or_default(),
                    client_id: r.client_id,
                    scope: r.scope,
                    resources: r.resources,
                    sid: Some(r.sid).filter(|s| !s.is_empty()),
                    authenticated_at: r.auth_time,
                    offline: r.offline,
                    expires_at: a.expires_at,
                })
            })
            .collect()
    }
}

impl Admin<'_> {
    /// Ends one of the user's sessions, as a logout would: the session stops, grants made in it
    /// without `offline_access` are revoked. Returns the back-channel logout tokens to deliver.
    pub async fn end_user_session(&self, user_id: &str, sid: &str) -> AdminResult<LoggedOut> {
        let user = self.find_user(user_id).await?;
        let (all, now) = self.user_access(&user.id).await?;
        let found = all.into_iter().find_map(|a| {
            if !in_force(&a, ArtifactKind::Session, now) {
                return None;
            }
            let record: SessionRecord = decode(&a).ok()?;
            (record.sid == sid).then_some((a, record))
        });
        let Some((a, record)) = found else {
            return Err(AdminError::NotFound(format!(
                "session {sid} of user {}",
                user.username
            )));
        };
        let session = Session {
            key: a.key,
            record,
            expires_at: a.expires_at,
            user,
        };
        let out = self.logout(&session, None).await.map_err(admin_error)?;
        let target = format!("user:{}", session.user.id);
        self.audit("session.ended", &target, None, json!({ "sid": sid }))
            .await;
        Ok(out)
    }

    /// Ends every session of the user. Returns the back-channel logout tokens of the sessions it
    /// ended, to deliver even when a later one could not be ended (the error, second).
    pub async fn end_user_sessions(&self, user_id: &str) -> (LoggedOut, AdminResult<()>) {
        let mut out = LoggedOut::default();
        let sessions = match self.find_user(user_id).await {
            Ok(user) => self.user_sessions(&user.id).await.map(|s| (user, s)),
            Err(e) => Err(e),
        };
        let (user, sessions) = match sessions {
            Ok(found) => found,
            Err(e) => return (out, Err(e)),
        };
        for s in sessions {
            match self.end_user_session(&user.id, &s.sid).await {
                Ok(done) => out.backchannel.extend(done.backchannel),
                // Ended meanwhile (a logout in the browser): nothing left to do.
                Err(AdminError::NotFound(_)) => {}
                Err(e) => return (out, Err(e)),
            }
        }
        (out, Ok(()))
    }

    /// Revokes one of the user's grants: its refresh and access tokens stop working.
    pub async fn revoke_user_grant(&self, user_id: &str, grant_id: &str) -> AdminResult<()> {
        let user = self.find_user(user_id).await?;
        let grant = self
            .user_grants(&user.id)
            .await?
            .into_iter()
            .find(|g| g.id == grant_id)
            .ok_or_else(|| {
                AdminError::NotFound(format!("grant {grant_id} of user {}", user.username))
            })?;
        self.revoke_grants(&user.id, &[grant]).await
    }

    /// Revokes every grant of the user, or only those of one application.
    pub async fn revoke_user_grants(
        &self,
        user_id: &str,
        client_id: Option<&str>,
    ) -> AdminResult<()> {
        let user = self.find_user(user_id).await?;
        let mut grants = self.user_grants(&user.id).await?;
        grants.retain(|g| client_id.is_none_or(|c| g.client_id == c));
        self.revoke_grants(&user.id, &grants).await
    }

    async fn revoke_grants(&self, user_id: &str, grants: &[GrantView]) -> AdminResult<()> {
        let now = self.now();
        let target = format!("user:{user_id}");
        for g in grants {
            self.revoke_grant(&g.id, now).await.map_err(admin_error)?;
            self.audit(
                "grant.revoked",
                &target,
                Some(&g.client_id),
                json!({ "grant": g.id }),
            )
            .await;
        }
        Ok(())
    }
}

/// A protocol error met on the administrative path: the store's trouble (503 when unreachable).
fn admin_error(e: Error) -> AdminError {
    let unavailable = e.code == ErrorCode::TemporarilyUnavailable;
    let e = Box::new(e);
    AdminError::Store(if unavailable {
        StoreError::Unavailable(e)
    } else {
        StoreError::Other(e)
    })
}
