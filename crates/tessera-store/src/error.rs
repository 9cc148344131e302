//! Database errors as store errors: what a caller may retry, and what it may not.

use tessera_core::store::StoreError;

/// Anything else that went wrong reading or writing a row.
pub(crate) fn other(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Other(Box::new(e))
}

/// Connection trouble is `Unavailable` (callers answer 503 and retry); the rest is `Other`.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StoreError::Unavailable(Box::new(e)),
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6) with their extended codes: another writer held the
        // database past busy_timeout; the client may retry.
        sqlx::Error::Database(ref db)
            if db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| matches!(c & 0xff, 5 | 6)) =>
        {
            StoreError::Unavailable(Box::new(e))
        }
        other => StoreError::Other(Box::new(other)),
    }
}
