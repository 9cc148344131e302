//! Database errors as store errors: what a caller may retry, and what it may not.

use tessera_core::store::{StoreError, StoreResult};

use crate::pool::Conn;

/// Anything else that went wrong reading or writing a row.
pub(crate) fn other(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Other(Box::new(e))
}

/// `result` of work on `conn` that saw every answer ([`Conn::settle`]), closing `conn` instead
/// of returning it to its pool when `discard` and the database failed (not when a rule refused
/// the change). SQLite rolls a transaction back by itself on a
/// full disk or an I/O error; sqlx's own ROLLBACK then fails, and the connection it kept would
/// believe a transaction open: every later BEGIN a savepoint, nothing committed again, SQLite's
/// write lock held. A failed transaction's connection goes, and the pool opens another.
pub(crate) fn discard_on_error<T>(
    conn: &mut Conn,
    result: StoreResult<T>,
    discard: bool,
) -> StoreResult<T> {
    conn.settle();
    if discard
        && matches!(
            result,
            Err(StoreError::Other(_) | StoreError::Unavailable(_))
        )
    {
        conn.close_on_drop();
    }
    result
}

/// Connection trouble is `Unavailable` (callers answer 503 and retry); the rest is `Other`.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StoreError::Unavailable(Box::new(e)),
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6) with their extended codes: another writer held the
        // database past busy_timeout; SQLITE_PROTOCOL (15): another process held the WAL's locks
        // past SQLite's retries. The client may retry.
        sqlx::Error::Database(ref db)
            if db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| matches!(c & 0xff, 5 | 6 | 15)) =>
        {
            StoreError::Unavailable(Box::new(e))
        }
        // PostgreSQL's connection exceptions (class 08), a server shutting down or starting up
        // (57P01-57P03), too many connections (53300), and a transaction it chose to abort
        // (deadlock 40P01, serialization 40001): the database is away or busy, not the request
        // wrong; the client may retry.
        sqlx::Error::Database(ref db) if db.code().is_some_and(|c| postgres_unavailable(&c)) => {
            StoreError::Unavailable(Box::new(e))
        }
        other => StoreError::Other(Box::new(other)),
    }
}

/// Whether a SQLSTATE (five characters; SQLite's numeric codes are shorter) says the PostgreSQL
/// server cannot be reached or cannot serve right now.
fn postgres_unavailable(code: &str) -> bool {
    code.len() == 5
        && (code.starts_with("08")
            || matches!(
                code,
                "57P01" | "57P02" | "57P03" | "53300" | "40P01" | "40001"
            ))
}

#[cfg(test)]
mod tests {
    use super::postgres_unavailable;

    #[test]
    fn postgres_connection_states_are_unavailable_and_sqlite_codes_are_not() {
        for code in [
            "08000", "08006", "08001", "57P01", "57P03", "53300", "40P01", "40001",
        ] {
            assert!(postgres_unavailable(code), "{code}");
        }
        for code in ["23505", "42P01", "5", "517", "2067"] {
            assert!(!postgres_unavailable(code), "{code}");
        }
    }
}
