//! Moving an installation to another issuer deliberately (`tessera issuer change`): the stored
//! issuer changes, and the admin API, whose identifier is `<issuer>/admin/api`, moves with it:
//! the applications that used the old one use the new one, and the Portal's redirect URI follows.
//! Tokens issued under the old issuer stop being accepted (their `iss` is another one).

use serde_json::json;

use super::permission::{Operation, TargetKind};
use super::{Admin, AdminError, AdminResult, ClientPatch};
use crate::clock::Timestamp;
use crate::model::Installation;
use crate::store::{Change, Record, Store};

/// Records `to` as the issuer of a database set up for `from`; run before a provider is built on
/// it. Moving to the issuer it already has changes nothing.
pub async fn move_installation(
    store: &dyn Store,
    from: &str,
    to: &str,
    now: Timestamp,
) -> AdminResult<()> {
    let stored = store.installation().await?;
    match stored {
        Some(i) if i.issuer == to => Ok(()),
        Some(i) if i.issuer == from => {
            let record = Installation {
                issuer: to.to_owned(),
                updated_at: now,
            };
            store
                .apply(&[Change::Update(Record::Installation(record))])
                .await?;
            Ok(())
        }
        Some(i) => Err(AdminError::Conflict(format!(
            "the database is set up for the issuer {}, not {from}",
            i.issuer
        ))),
        None => Err(AdminError::NotFound(
            "the installation record (start Tessera on this database once first)".into(),
        )),
    }
}

impl Admin<'_> {
    /// After [`move_installation`]: the admin API of the old issuer `from` gives way to this
    /// issuer's (created with its scopes when missing), every application of the old one moves
    /// to the new one, and the old one is deleted.
    pub async fn adopt_admin_api(&self, from: &str) -> AdminResult<()> {
        self.authorize(Operation::ChangeApplication, TargetKind::Protected)?;
        self.authorize(Operation::DeleteApi, TargetKind::Protected)?;
        let old = format!("{}/admin/api", from.trim_end_matches('/'));
        let new = self.admin_api();
        if old == new {
            return Ok(());
        }
        self.ensure_admin_api().await?;
        for c in self.store.list_clients().await? {
            if !c.apis.contains(&old) {
                continue;
            }
            let mut apis: Vec<String> = c.apis.iter().filter(|a| **a != old).cloned().collect();
            if !apis.contains(&new) {
                apis.push(new.clone());
            }
            let patch = ClientPatch {
                apis: Some(apis),
                ..ClientPatch::default()
            };
            self.update_client(&c.client_id, &patch).await?;
        }
        match self.delete_api(&old).await {
            Ok(()) | Err(AdminError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        self.audit(
            "installation.issuer_changed",
            &format!("issuer:{new}"),
            None,
            json!({ "from": from, "to": self.settings.issuer }),
        )
        .await;
        Ok(())
    }
}
