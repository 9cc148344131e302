//! The upstream identities linked to a user: listed and unlinked by administrators, and by the
//! user on their own account page (`users:self`, after a recent sign-in). A user with neither a
//! password nor a passkey keeps at least one identity: unlinking the last would leave no way in.

use serde_json::json;

use super::permission::Operation;
use super::{Admin, AdminError, AdminResult};
use crate::federation::LinkedIdentity;

impl Admin<'_> {
    pub async fn identities(&self, id_or_username: &str) -> AdminResult<Vec<LinkedIdentity>> {
        let (u, _) = self
            .reach(Operation::ListIdentities, id_or_username)
            .await?;
        Ok(self.store.user_identities(&u.id).await?)
    }

    /// Unlinks the user's identity `subject` at `idp`; the user's sessions from it go on until
    /// they end (its next sign-in finds no link).
    pub async fn unlink_identity(
        &self,
        id_or_username: &str,
        idp: &str,
        subject: &str,
    ) -> AdminResult<()> {
        let (u, _) = self
            .reach(Operation::UnlinkIdentity, id_or_username)
            .await?;
        let linked = self.store.user_identities(&u.id).await?;
        if !linked.iter().any(|i| i.idp == idp && i.subject == subject) {
            return Err(AdminError::NotFound(format!(
                "identity {subject} at {idp} of user {}",
                u.username
            )));
        }
        if u.password_hash.is_none() && linked.len() == 1 && u.factors.passkeys.is_empty() {
            return Err(AdminError::Conflict(
                "this is the user's only way to sign in: set a password first".into(),
            ));
        }
        if self.store.unlink_identity(idp, subject).await? {
            self.audit_user(
                "user.identity_unlinked",
                &u,
                json!({"idp": idp, "subject": subject}),
            )
            .await;
        }
        Ok(())
    }
}
