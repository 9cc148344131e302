//! SQLite specifics: WAL, busy timeout, one writer connection beside a pool of readers (neither
//! pinged before use), and WAL checkpoints in the background (so a commit never waits for one);
//! an in-memory database is one shared connection.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};
use tessera_core::store::StoreError;

use crate::error::map_err;
use crate::sql::{Dialect, SqlStore};

const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
    PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA journal_size_limit = 67108864;";
/// The writer leaves checkpoints to the background task.
const WRITER_PRAGMAS: &str = "PRAGMA wal_autocheckpoint = 0;";
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

fn options(max: u32, extra: &'static str) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        // A file on this machine does not go away between queries: no ping before each one
        // (it cost a round trip to the connection's thread per query).
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(PRAGMAS).await?;
                if !extra.is_empty() {
                    conn.execute(extra).await?;
                }
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
        let pool = options(1, "").connect(&url).await.map_err(map_err)?;
        return Ok(SqlStore::new(Dialect::Sqlite, pool.clone(), pool, false));
    }
    let writer = options(1, WRITER_PRAGMAS)
        .connect(&url)
        .await
        .map_err(map_err)?;
    let readers = options(4, "").connect(&url).await.map_err(map_err)?;
    tokio::spawn(checkpoints(readers.clone()));
    Ok(SqlStore::new(Dialect::Sqlite, writer, readers, true))
}

/// Copies committed WAL frames into the database without blocking the writer (PASSIVE), until
/// the pool is closed.
async fn checkpoints(pool: AnyPool) {
    while !pool.is_closed() {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_all(&pool)
            .await
        {
            tracing::debug!(error = %e, "WAL checkpoint failed; retrying");
        }
    }
}
