//! SQLite specifics: WAL, busy timeout, one writer connection beside a pool of readers; an
//! in-memory database is one shared connection.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::Executor;
use tessera_core::store::StoreError;

use crate::sql::{Dialect, SqlStore};

const PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; \
    PRAGMA foreign_keys = ON; PRAGMA mmap_size = 268435456;";

fn options(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(None)
        .max_lifetime(None)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(PRAGMAS).await?;
                Ok(())
            })
        })
}

/// Opens (creating if missing) the database at a `sqlite:` URL.
pub(crate) async fn open(url: &str) -> Result<SqlStore, StoreError> {
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let url = if memory || url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    };
    if memory {
        // Every connection to `:memory:` is its own database: keep exactly one, forever.
        let pool = options(1)
            .connect(&url)
            .await
            .map_err(crate::sql::map_err)?;
        return Ok(SqlStore::new(Dialect::Sqlite, pool.clone(), pool));
    }
    let writer = options(1)
        .connect(&url)
        .await
        .map_err(crate::sql::map_err)?;
    let readers = options(4)
        .connect(&url)
        .await
        .map_err(crate::sql::map_err)?;
    Ok(SqlStore::new(Dialect::Sqlite, writer, readers))
}
