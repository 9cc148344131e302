//! Administrative use-cases: the one place that creates, changes and deletes configuration. The CLI,
//! `tessera apply`, and later the admin API and Admin Portal all call these.

mod apply;
mod catalog;
mod clients;
mod keys;
mod rules;
mod users;

pub use apply::{Action, Plan, PlanItem, Spec};
pub use catalog::{ApiSpec, ScopeSpec};
pub use clients::{ClientPatch, ClientSpec, CreatedClient};
pub use keys::KeyWindow;
pub(crate) use keys::Upkeep;
pub use rules::{canonical_response_type, origin_matches, origin_matches_loopback, RESPONSE_TYPES};
pub use users::{UserPatch, UserSpec};

use crate::keys::KeyError;
use crate::store::StoreError;

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
    #[error("signing key: {0}")]
    Key(#[from] KeyError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AdminError::NotFound(what),
            StoreError::Conflict(what) => AdminError::Conflict(format!("{what} already exists")),
            StoreError::Stale => AdminError::Conflict(
                "the configuration changed while this change was prepared; retry".into(),
            ),
            other => AdminError::Store(other),
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

impl crate::provider::Provider {
    /// Writes a change and refreshes this process's caches at once (other processes notice the
    /// store's version within a second).
    pub(crate) async fn commit(&self, changes: &[crate::store::Change]) -> AdminResult<()> {
        self.store.apply(changes).await?;
        if let Err(e) = self.sync().await {
            tracing::warn!(error = %e, "configuration changed but the cache could not reload yet");
        }
        Ok(())
    }
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
