//! Appending to the audit log: the protocol and the administrative use-cases record their events
//! through [`Provider::record`], which never blocks what it records.

use serde_json::Value;

use crate::audit::{Actor, AuditEvent};
use crate::provider::Provider;

impl Provider {
    /// Appends an event to the audit log. The log never blocks what it records: a store failure
    /// is logged and the caller goes on.
    pub async fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        client_id: Option<&str>,
        detail: Value,
    ) {
        let at = self.now();
        let event = AuditEvent {
            id: 0,
            at,
            actor: actor.0.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            client_id: client_id.map(str::to_owned),
            detail,
        };
        let expires = at.plus(self.settings.audit_retention);
        if let Err(e) = self.store.record_event(&event, expires).await {
            tracing::warn!(error = %e, action, target, "audit event not recorded");
        }
    }
}
