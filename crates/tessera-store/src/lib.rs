//! Tessera's storage: `impl Store` on SQLite (the embedded default) and PostgreSQL (scale-out).
//!
//! - [`connect`]: picks the backend by URL scheme and runs that dialect's migrations
//! - `sql`: the one implementation of the trait, in SQL both dialects accept
//! - `sqlite`, `postgres`: what differs per dialect (connection options, pools)
//! - `pool`: connection pools (SQLite's kept by the store)
//! - `batch`: group commit of artifact inserts
//! - `codec`: rows <-> core records; `error`: database errors as store errors
//! - [`contract`]: the one contract suite every backend passes; [`testing`]: a fresh PostgreSQL database per test

mod batch;
mod codec;
pub mod contract;
mod error;
mod point;
mod pool;
mod postgres;
mod sql;
mod sqlite;
pub mod testing;

use std::sync::{Arc, Once};

use tessera_core::store::{Store, StoreError};

pub use sql::SqlStore;

/// Connects to `url` (`sqlite:…` or `postgres://…`), migrates the schema, and returns the store.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(connect_sql(url).await?))
}

/// [`connect`], keeping the concrete type (tests and tools that need dialect details).
pub async fn connect_sql(url: &str) -> Result<SqlStore, StoreError> {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let store = if url.starts_with("sqlite:") {
        sqlite::open(url).await?
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        postgres::open(url).await?
    } else {
        return Err(StoreError::Other(
            format!(
                "unsupported database URL {:?}: use sqlite:… or postgres://…",
                redact(url)
            )
            .into(),
        ));
    };
    store.migrate().await?;
    Ok(store)
}

/// A database URL with its password hidden, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("sqlite://./x.db"), "sqlite://./x.db");
    }
}
