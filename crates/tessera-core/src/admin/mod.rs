//! Administrative use-cases: the one place that reads, creates, changes and deletes
//! configuration and users for administrators. The CLI, `tessera apply`, the admin API and the
//! Admin Portal all call these, through [`Admin`], which carries the [`Caller`]: every use-case
//! checks the caller's permission ([`permission::required`]) for the targets it touches before it
//! acts, and records each change in the audit log with its actor.

mod access;
mod apply;
mod backchannel;
mod bootstrap;
mod caller;
mod catalog;
mod clients;
mod defaults;
mod export;
mod factors;
mod groups;
mod identities;
mod idps;
mod issuer;
mod keycloak;
mod keys;
mod logo;
mod page;
pub mod permission;
mod rules;
mod schemes;
mod subjects;
mod targets;
mod usage;
mod users;
mod views;

pub use crate::names::ADMIN_GROUP;
pub use access::{GrantView, SessionView};
pub use apply::{Action, Plan, PlanItem, Spec, SECRET_KEPT};
pub use bootstrap::{ACCOUNT_CLIENT, PORTAL_CLIENT, PORTAL_SESSION_SECONDS};
pub use caller::{Caller, CallerError, Principal};
pub use catalog::{ApiSpec, ScopeSpec};
pub use clients::{ClientPatch, ClientSpec, CreatedClient, MtlsPatch, ProtectionPatch};
pub use defaults::LifetimePatch;
pub use export::{Export, SpecFile};
pub use factors::FactorsView;
pub use groups::{GroupMember, GroupView};
pub use idps::{IdpSpec, IdpView};
pub use issuer::move_installation;
pub use keycloak::{Finding, KeycloakImport, Outcome, KEYCLOAK_VERSIONS};
pub use keys::KeyWindow;
pub use logo::{check_logo, sniff};
pub use page::{etag, page_size, paginate, Page, DEFAULT_PAGE, MAX_PAGE};
pub use permission::{AdminScope, Need, Operation, TargetKind};
pub use schemes::SchemeSpec;
pub(crate) use targets::is_administrator;
pub use usage::Window;
pub(crate) use users::{check_attribute_names, check_claim_values, standard_claim};
pub use users::{PasswordChange, UserPatch, UserSpec};
pub use views::{ApplicationView, KeyView, UserView};

use serde_json::Value;

use crate::audit::{AuditEvent, AuditQuery};
use crate::keys::KeyError;
use crate::provider::Provider;
use crate::store::{Change, StoreError, Table};

/// Why an administrative change was refused; `field` names the offending input.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Store(StoreError),
    /// The record changed since the caller read it (`If-Match` does not hold).
    #[error("the record changed since it was read; read it again")]
    PreconditionFailed,
    /// Another writer changed the records this change was prepared from, again and again.
    #[error("the configuration kept changing while this change was prepared; retry")]
    Raced,
    #[error("signing key: {0}")]
    Key(#[from] KeyError),
    /// The caller's scopes do not meet what the operation needs on this target.
    #[error("{reason}; it needs {}", need.describe())]
    Forbidden { need: Need, reason: String },
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AdminError::NotFound(what),
            StoreError::Conflict(what) => AdminError::Conflict(format!("{what} already exists")),
            StoreError::Stale => AdminError::Raced,
            other => AdminError::Store(other),
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// How many times a change that lost a race to another writer is prepared before giving up.
const ATTEMPTS: u32 = 5;

/// A caller acting: the administrative reads and changes, each checked against the caller's
/// permission and each change recorded in the audit log with who made it.
pub struct Admin<'a> {
    provider: &'a Provider,
    caller: Caller,
    /// The caller's `If-Match`: updates and deletes proceed only while the record has this tag.
    if_match: Option<String>,
}

impl Provider {
    /// Administrative use-cases as `caller` may perform them.
    pub fn admin(&self, caller: Caller) -> Admin<'_> {
        Admin {
            provider: self,
            caller,
            if_match: None,
        }
    }

    /// Writes a change, only if the configuration is still at `version`, and refreshes this
    /// process's caches at once (other processes notice the store's version within a second).
    async fn commit_at(&self, version: i64, changes: &[Change]) -> AdminResult<()> {
        self.store.apply_at(version, changes).await?;
        if let Err(e) = self.sync().await {
            tracing::warn!(error = %e, "configuration changed but the cache could not reload yet");
        }
        Ok(())
    }
}

impl std::ops::Deref for Admin<'_> {
    type Target = Provider;
    fn deref(&self) -> &Provider {
        self.provider
    }
}

impl Admin<'_> {
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Refuses unless the caller may perform `op` on a target of `kind` ([`permission::required`]).
    pub fn authorize(&self, op: Operation, kind: TargetKind) -> AdminResult<()> {
        let need = permission::required(op, kind);
        if self.caller.meets(need) {
            return Ok(());
        }
        let reason = match kind {
            TargetKind::Protected if op.writes() => format!(
                "{} on an administrator, the administrators' group, the admin API or its applications is a power over administration",
                op.name()
            ),
            TargetKind::AssertsUsers if op.writes() => format!(
                "{} on an application that may assert users' identities is a power over users",
                op.name()
            ),
            _ => format!("{} is not allowed with this token", op.name()),
        };
        Err(AdminError::Forbidden { need, reason })
    }

    /// Whether the caller may perform `op` on a target of `kind`, without refusing.
    pub fn may(&self, op: Operation, kind: TargetKind) -> bool {
        self.caller.meets(permission::required(op, kind))
    }

    /// The events `query` selects, newest first.
    pub async fn audit_events(&self, query: &AuditQuery) -> AdminResult<Vec<AuditEvent>> {
        self.authorize(Operation::ReadAudit, TargetKind::Ordinary)?;
        Ok(self.store.list_events(query).await?)
    }

    /// Makes the following update or delete conditional on the record's entity tag
    /// ([`etag`]); `None` leaves it unconditional.
    pub fn if_match(mut self, tag: Option<&str>) -> Self {
        self.if_match = tag.map(str::to_owned);
        self
    }

    /// The configuration version to write at, read before the records a change is prepared from:
    /// a change made by someone else in between makes the write fail ([`AdminError::Raced`])
    /// instead of overwriting it.
    pub(crate) async fn read_version(&self) -> AdminResult<i64> {
        Ok(self.store.config_version().await?)
    }

    /// Runs a read-modify-write until it lands. When another writer changed what `attempt` read
    /// before it could write ([`AdminError::Raced`]), it is prepared again from a fresh read, so
    /// nobody's change is lost; unless the caller named the copy it changed (`If-Match`): then
    /// the race is the caller's [`AdminError::PreconditionFailed`].
    pub(crate) async fn settle<T, F, Fut>(&self, attempt: F) -> AdminResult<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = AdminResult<T>>,
    {
        let mut tries = 1;
        loop {
            match attempt().await {
                Err(AdminError::Raced) if self.if_match.is_some() => {
                    return Err(AdminError::PreconditionFailed)
                }
                Err(AdminError::Raced) if tries < ATTEMPTS => tries += 1,
                other => return other,
            }
        }
    }

    /// Fails with [`AdminError::PreconditionFailed`] unless `current` has the expected tag.
    pub(crate) fn precondition(&self, current: &impl serde::Serialize) -> AdminResult<()> {
        page::check_etag(current, self.if_match.as_deref())
    }

    /// Commits `changes` (at `version`), then one audit event per change: `<kind>.created|updated|deleted`,
    /// or `action` for the first change when given (`client.secret_rotated`).
    pub(crate) async fn commit_as(
        &self,
        version: i64,
        changes: &[Change],
        action: Option<&str>,
        detail: Value,
    ) -> AdminResult<()> {
        self.provider.commit_at(version, changes).await?;
        for (i, change) in changes.iter().enumerate() {
            let (table, key, verb) = match change {
                Change::Create(r) => (r.table(), r.key(), "created"),
                Change::Update(r) => (r.table(), r.key(), "updated"),
                Change::Delete(t, k) => (*t, k.as_str(), "deleted"),
            };
            let kind = match table {
                Table::Clients => "client",
                Table::Apis => "api",
                Table::Scopes => "scope",
                Table::Keys => "key",
                Table::Settings => "settings",
                Table::Schemes => "scheme",
                Table::Idps => "identity_provider",
                // A logo is part of its client's change, audited there.
                Table::Logos => continue,
            };
            let derived = format!("{kind}.{verb}");
            let action = match (i, action) {
                (0, Some(a)) => a,
                _ => derived.as_str(),
            };
            let client = (table == Table::Clients).then_some(key);
            let detail = if i == 0 { detail.clone() } else { Value::Null };
            self.audit(action, &format!("{kind}:{key}"), client, detail)
                .await;
        }
        Ok(())
    }

    /// Records an event caused by this administrator.
    pub(crate) async fn audit(
        &self,
        action: &str,
        target: &str,
        client_id: Option<&str>,
        detail: Value,
    ) {
        self.provider
            .record(&self.caller.actor(), action, target, client_id, detail)
            .await;
    }
}

/// A protocol error met on the administrative path: the store's trouble (503 when unreachable).
pub(crate) fn protocol_error(e: crate::error::Error) -> AdminError {
    let unavailable = e.code == crate::error::ErrorCode::TemporarilyUnavailable;
    let e = Box::new(e);
    AdminError::Store(if unavailable {
        StoreError::Unavailable(e)
    } else {
        StoreError::Other(e)
    })
}

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// A display text: trimmed, not blank when required, bounded.
pub(crate) fn text(field: &str, value: &str, required: bool, max: usize) -> AdminResult<String> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(v.to_owned())
}
