//! The CIBA requests waiting for a user's decision, as the admin API lists them for a notifier.

use super::permission::Operation;
use super::{Admin, AdminError, AdminResult};
use crate::ciba::PendingBackchannel;

impl Admin<'_> {
    /// The user's CIBA requests waiting for a decision: what an administrator's notifier reads to
    /// tell the user (who then decides on the account page).
    pub async fn backchannel_requests(
        &self,
        id_or_username: &str,
    ) -> AdminResult<Vec<PendingBackchannel>> {
        let (u, _) = self
            .reach(Operation::ListBackchannelRequests, id_or_username)
            .await?;
        self.provider
            .pending_backchannel(&u.id)
            .await
            .map_err(|e| AdminError::Store(crate::store::StoreError::Other(Box::new(e))))
    }
}
