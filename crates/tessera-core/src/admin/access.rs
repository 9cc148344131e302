//! A user's SSO sessions and grants as administrators see them: listed, and revoked one at a
//! time or all at once. Ending a session prepares the back-channel logout tokens of the
//! applications that signed in through it (OIDC Back-Channel Logout §2.5, §2.7).

use serde::Serialize;
use serde_json::json;

use super::permission::Operation;
use super::{protocol_error, Admin, AdminError, AdminResult};
use crate::clock::Timestamp;
use crate::model::{Artifact, ArtifactKind, User};
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
    a.payload_as()
        .map_err(|e| AdminError::Store(StoreError::Other(Box::new(e))))
}

/// The stored sessions among `all` that are unrevoked and unexpired, with their records: of the
/// sign-out epoch `epoch` (the ones in force), or of any (those of an earlier epoch no longer
/// work, but their records are not revoked yet).
fn stored_sessions(
    all: &[Artifact],
    epoch: Option<u64>,
    now: Timestamp,
) -> AdminResult<Vec<(Artifact, SessionRecord)>> {
    let mut out = Vec::new();
    for a in all
        .iter()
        .filter(|a| in_force(a, ArtifactKind::Session, now))
    {
        let r: SessionRecord = decode(a)?;
        if epoch.is_none_or(|e| r.epoch == e) {
            out.push((a.clone(), r));
        }
    }
    Ok(out)
}

/// The same for grants.
fn stored_grants(
    all: &[Artifact],
    epoch: Option<u64>,
    now: Timestamp,
) -> AdminResult<Vec<GrantView>> {
    let mut out = Vec::new();
    for a in all.iter().filter(|a| in_force(a, ArtifactKind::Grant, now)) {
        let r: GrantRecord = decode(a)?;
        if epoch.is_none_or(|e| r.epoch == e) {
            out.push(GrantView {
                id: a.grant_id.clone().unwrap_or_default(),
                client_id: r.client_id,
                scope: r.scope,
                resources: r.resources,
                sid: Some(r.sid).filter(|s| !s.is_empty()),
                authenticated_at: r.auth_time,
                offline: r.offline,
                expires_at: a.expires_at,
            });
        }
    }
    Ok(out)
}

impl Provider {
    /// Every session and grant of the user, as stored, and the time to judge them by.
    async fn user_access(&self, user_id: &str) -> AdminResult<(Vec<Artifact>, Timestamp)> {
        Ok((self.store.user_artifacts(user_id).await?, self.now()))
    }

    /// The user's SSO sessions in force.
    async fn sessions_of(&self, user: &User) -> AdminResult<Vec<SessionView>> {
        let (all, now) = self.user_access(&user.id).await?;
        let mut out = Vec::new();
        for (a, r) in stored_sessions(&all, Some(user.sign_out_epoch), now)? {
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
    async fn grants_of(&self, user: &User) -> AdminResult<Vec<GrantView>> {
        let (all, now) = self.user_access(&user.id).await?;
        stored_grants(&all, Some(user.sign_out_epoch), now)
    }
}

impl Admin<'_> {
    /// The user's SSO sessions in force.
    pub async fn user_sessions(&self, id_or_username: &str) -> AdminResult<Vec<SessionView>> {
        let (u, _) = self.reach(Operation::ListSessions, id_or_username).await?;
        self.sessions_of(&u).await
    }

    /// The user's grants in force.
    pub async fn user_grants(&self, id_or_username: &str) -> AdminResult<Vec<GrantView>> {
        let (u, _) = self.reach(Operation::ListGrants, id_or_username).await?;
        self.grants_of(&u).await
    }

    /// Ends one of the user's sessions, as a logout would: the session stops, grants made in it
    /// without `offline_access` are revoked, applications with a back-channel logout URI are told.
    pub async fn end_user_session(&self, id_or_username: &str, sid: &str) -> AdminResult<()> {
        let (user, _) = self.reach(Operation::EndSession, id_or_username).await?;
        let (all, now) = self.user_access(&user.id).await?;
        let found = stored_sessions(&all, Some(user.sign_out_epoch), now)?
            .into_iter()
            .find(|(_, r)| r.sid == sid);
        let Some((a, record)) = found else {
            return Err(AdminError::NotFound(format!(
                "session {sid} of user {}",
                user.username
            )));
        };
        self.end_stored_session(&user, a, record).await
    }

    async fn end_stored_session(
        &self,
        user: &User,
        a: Artifact,
        record: SessionRecord,
    ) -> AdminResult<()> {
        let sid = record.sid.clone();
        let session = Session {
            key: a.key,
            record,
            expires_at: a.expires_at,
            user: user.clone(),
        };
        self.logout(&session, None).await.map_err(protocol_error)?;
        let target = format!("user:{}", user.id);
        self.audit("session.ended", &target, None, json!({ "sid": sid }))
            .await;
        Ok(())
    }

    /// Ends the user's sessions signed in at the identity provider `idp` (only those of its
    /// session `sid`, when given): the upstream's back-channel logout. Returns how many ended.
    pub(crate) async fn end_upstream_sessions(
        &self,
        user: &User,
        idp: &str,
        sid: Option<&str>,
    ) -> AdminResult<usize> {
        let (all, now) = self.user_access(&user.id).await?;
        let mut ended = 0;
        for (a, record) in stored_sessions(&all, Some(user.sign_out_epoch), now)? {
            let from_it = record.uses().iter().any(|u| {
                u.upstream.as_ref().is_some_and(|p| {
                    p.idp == idp && sid.is_none_or(|s| p.sid.as_deref() == Some(s))
                })
            });
            if from_it {
                self.end_stored_session(user, a, record).await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Ends every session of the user ("sign out everywhere").
    pub async fn end_user_sessions(&self, id_or_username: &str) -> AdminResult<()> {
        let (user, _) = self.reach(Operation::EndSession, id_or_username).await?;
        let (all, now) = self.user_access(&user.id).await?;
        for (a, record) in stored_sessions(&all, Some(user.sign_out_epoch), now)? {
            self.end_stored_session(&user, a, record).await?;
        }
        Ok(())
    }

    /// After the user's sign-out epoch moved on (a password set, a block, a change of
    /// administrator membership), which already stopped every session and grant from before: their records
    /// are revoked and applications with a back-channel logout URI are told, reading the user's
    /// records once. Should this be cut short, nothing from before works all the same.
    /// The caller's permission was checked by the use-case that calls this.
    pub(crate) async fn sign_out_everywhere(&self, user: &User) -> AdminResult<()> {
        let (all, now) = self.user_access(&user.id).await?;
        let mut ended = Vec::new();
        for (a, record) in stored_sessions(&all, None, now)? {
            ended.push(record.sid.clone());
            self.end_stored_session(user, a, record).await?;
        }
        // What those logouts left: offline grants, and those made in no session (the password
        // and JWT bearer grants) or in one that already ended.
        let mut grants = stored_grants(&all, None, now)?;
        grants.retain(|g| g.offline || g.sid.as_ref().is_none_or(|s| !ended.contains(s)));
        self.revoke_grants(&user.id, &grants).await
    }

    /// Revokes one of the user's grants: its refresh and access tokens stop working.
    pub async fn revoke_user_grant(&self, id_or_username: &str, grant_id: &str) -> AdminResult<()> {
        let (user, _) = self.reach(Operation::RevokeGrant, id_or_username).await?;
        let grant = self
            .grants_of(&user)
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
        id_or_username: &str,
        client_id: Option<&str>,
    ) -> AdminResult<()> {
        let (user, _) = self.reach(Operation::RevokeGrant, id_or_username).await?;
        self.revoke_grants_of(&user.id, client_id).await
    }

    /// Revokes the user's grants (of one application only, when given); the caller's permission
    /// was checked by the use-case that calls this.
    pub(crate) async fn revoke_grants_of(
        &self,
        user_id: &str,
        client_id: Option<&str>,
    ) -> AdminResult<()> {
        let (all, now) = self.user_access(user_id).await?;
        let mut grants = stored_grants(&all, None, now)?;
        grants.retain(|g| client_id.is_none_or(|c| g.client_id == c));
        self.revoke_grants(user_id, &grants).await
    }

    async fn revoke_grants(&self, user_id: &str, grants: &[GrantView]) -> AdminResult<()> {
        let now = self.now();
        let target = format!("user:{user_id}");
        for g in grants {
            self.revoke_grant(&g.id, now)
                .await
                .map_err(protocol_error)?;
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
