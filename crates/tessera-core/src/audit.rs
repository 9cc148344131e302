//! The audit log's vocabulary: every administrative change and security event (sign-ins, refused
//! client authentications, rotated secrets and keys), who caused it and when. Events are written
//! by [`crate::audit_log`], kept for `audit.retention` seconds, then purged with the other
//! expired artifacts.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Timestamp;

/// Who caused an event: `user:<id>`, `client:<client_id>`, `cli`, `system` (background jobs), or
/// for a sign-in the username as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    /// An administrator (or a user acting on themself) through the admin API or Admin Portal.
    pub fn user(id: &str) -> Actor {
        Actor(format!("user:{id}"))
    }
    /// An application acting for itself (an automation token from client credentials).
    pub fn client(client_id: &str) -> Actor {
        Actor(format!("client:{client_id}"))
    }
    /// The `tessera` command line (and `tessera apply`) on the server's own machine.
    pub fn cli() -> Actor {
        Actor("cli".into())
    }
    /// A background job of the server (key rotation).
    pub fn system() -> Actor {
        Actor("system".into())
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEvent {
    /// Assigned by the store, increasing; 0 before the event is stored.
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    /// `client.created`, `client.secret_rotated`, `user.blocked`, `sign_in.failed`, …
    pub action: String,
    /// What the event is about: `client:<id>`, `user:<id>`, `key:<kid>`, `scope:<name>`, …
    pub target: String,
    /// The application involved, if any (filterable).
    pub client_id: Option<String>,
    /// Free-form facts: changed field names, the address of a sign-in, …
    pub detail: Value,
}

/// Which events [`crate::store::Store::list_events`] returns: newest first, all filters combined.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    /// An exact action, or a prefix ending in `.` (`client.` for every client event).
    pub action: Option<String>,
    pub client_id: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only events with a smaller id (the cursor of the previous page).
    pub before: Option<i64>,
    pub limit: i64,
}
