//! Point reads (one row by its key: an artifact, a user, a failure counter) on SQLite run on the
//! caller's own thread.
//!
//! Such a lookup is a few microseconds of SQLite. Sent to a connection's thread, as sqlx runs every
//! statement, it costs two thread wake-ups and switches more than that: on 2 cores busy hashing
//! passwords, each one also pushes a hashing thread off its core. In WAL mode a reader does not
//! wait for the writer. It can still wait: for another process holding the WAL's read locks (a
//! backup tool, a stuck `sqlite3` shell; SQLite then retries for up to about 10 s whatever the busy
//! timeout), or for slow storage. So at most all but one of the threads that run requests (as many
//! as the runtime's workers: the server's lanes, one runtime each) run point reads at once, and a
//! stuck lookup never holds them all. A lookup that finds them all taken lets its thread's other
//! tasks run once and tries again (the read in the way takes microseconds; under refresh grants of
//! grants mostly cached, on 2 cores, sending those lookups to a connection's thread at once cost
//! about a fifth of the server's CPU per grant); only then does it go to the reader pool's threads.
//! Scans (lists, the audit log, counts) always stay on the reader pool's threads.
//!
//! The statements are the store's own, written for sqlx: [`PointReads`] is an sqlx `Executor`
//! that binds sqlx's arguments to a `rusqlite` statement and answers sqlx's rows.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt};
use rusqlite::types::{Value, ValueRef};
use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo, AnyTypeInfoKind, AnyValue};
use sqlx::{Any, Describe, Either, Execute, Executor};
use sqlx_core::any::{AnyColumn, AnyValueKind};
use sqlx_core::ext::ustr::UStr;

use crate::pool::Pool;

/// Where the store's point reads run: on the caller's thread when `inline` has room, else on
/// `pool`'s connections (always for PostgreSQL and SQLite in memory).
#[derive(Debug, Clone)]
pub(crate) struct PointReads {
    inline: Option<Arc<Inline>>,
    pool: Pool,
}

impl PointReads {
    /// Point reads on the caller's thread through `inline` when given and it has room, else
    /// on `pool`'s connections.
    pub(crate) fn new(inline: Option<Arc<Inline>>, pool: Pool) -> PointReads {
        PointReads { inline, pool }
    }

    /// A place for a read on the caller's thread, if any is free.
    fn inline_place(&self) -> Option<Place<'_>> {
        self.inline.as_deref()?.place()
    }
}

/// Ready at its second poll: the task wakes itself and goes to the back of its thread's queue of
/// tasks, after the ones already there, where another thread of a multi-threaded runtime may
/// take it over.
/// (`tokio::task::yield_now` keeps the task on its thread until that thread has nothing else to
/// run, so under load it waited behind every task that came after it, and behind a read stuck
/// on that thread.)
#[derive(Default)]
struct BackOfTheQueue {
    woken: bool,
}

impl std::future::Future for BackOfTheQueue {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.woken {
            return std::task::Poll::Ready(());
        }
        self.woken = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// A read under way on its caller's thread; gives its place back when dropped.
struct Place<'a>(&'a Inline);

impl Place<'_> {
    /// The first row of `query`, read on this thread; the place is given back after.
    fn first_row<'q>(self, query: impl Execute<'q, Any>) -> Result<Option<AnyRow>, sqlx::Error> {
        self.0.run(query, 1).map(|rows| rows.into_iter().next())
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Connections to one SQLite file, each used by one caller at a time and then kept: as many
/// as reads ran at once, at most `at_once`.
pub(crate) struct Inline {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    /// How many reads may run on their callers' threads at once.
    at_once: usize,
    running: AtomicUsize,
}

impl std::fmt::Debug for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inline")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// How long a point read waits for a lock held by another process, as the store's connections.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Inline {
    /// Point reads on the SQLite database at `path`, at most `at_once` of them on their
    /// callers' threads; one connection is opened now so that a file that cannot be read
    /// fails here.
    pub(crate) fn open(path: PathBuf, at_once: usize) -> Result<Arc<Inline>, sqlx::Error> {
        let inline = Inline {
            path,
            idle: Mutex::new(Vec::new()),
            at_once,
            running: AtomicUsize::new(0),
        };
        let first = inline.connect()?;
        inline.give_back(first);
        Ok(Arc::new(inline))
    }

    fn connect(&self) -> Result<rusqlite::Connection, sqlx::Error> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(failed)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        // Reads only, whatever statement comes.
        conn.execute_batch("PRAGMA query_only = ON;")
            .map_err(failed)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// A place for a read on the caller's thread, if any is free.
    fn place(&self) -> Option<Place<'_>> {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.at_once).then_some(n + 1)
            })
            .ok()?;
        Some(Place(self))
    }

    fn take(&self) -> Result<rusqlite::Connection, sqlx::Error> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn give_back(&self, conn: rusqlite::Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }

    /// Runs `query` and reads up to `limit` rows. A connection that failed is closed (the next
    /// read opens another).
    fn run<'q>(
        &self,
        mut query: impl Execute<'q, Any>,
        limit: usize,
    ) -> Result<Vec<AnyRow>, sqlx::Error> {
        let arguments = query
            .take_arguments()
            .map_err(sqlx::Error::Encode)?
            .map(|a| a.values.0)
            .unwrap_or_default();
        let conn = self.take()?;
        let rows = rows(&conn, query.sql(), &arguments, limit)?;
        self.give_back(conn);
        Ok(rows)
    }
}

/// The rows of `sql` with `arguments` (`$n` is the n-th; a bare `?` the next), at most `limit`.
fn rows(
    conn: &rusqlite::Connection,
    sql: &str,
    arguments: &[AnyValueKind<'_>],
    limit: usize,
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut statement = conn.prepare_cached(sql).map_err(failed)?;
    let mut next = 0;
    for i in 1..=statement.parameter_count() {
        let numbered = statement
            .parameter_name(i)
            .and_then(|name| name.get(1..))
            .and_then(|n| n.parse::<usize>().ok());
        let n = numbered.unwrap_or_else(|| {
            next += 1;
            next
        });
        let value = n
            .checked_sub(1)
            .and_then(|k| arguments.get(k))
            .ok_or_else(|| sqlx::Error::Protocol(format!("no argument for parameter {n}")))?;
        statement
            .raw_bind_parameter(i, sql_value(value)?)
            .map_err(failed)?;
    }
    let names: Vec<UStr> = statement
        .column_names()
        .into_iter()
        .map(UStr::new)
        .collect();
    let column_names = Arc::new(
        names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect::<sqlx_core::HashMap<_, _>>(),
    );
    let mut found = statement.raw_query();
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(row) = found.next().map_err(failed)? else {
            break;
        };
        let mut values = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            values.push(AnyValue {
                kind: any_value(row.get_ref(i).map_err(failed)?)?,
            });
        }
        let columns = names
            .iter()
            .zip(&values)
            .enumerate()
            .map(|(ordinal, (name, value))| AnyColumn {
                ordinal,
                name: name.clone(),
                type_info: AnyTypeInfo {
                    kind: kind_of(&value.kind),
                },
            })
            .collect();
        out.push(AnyRow {
            column_names: column_names.clone(),
            columns,
            values,
        });
    }
    Ok(out)
}

/// An sqlx argument as SQLite stores it (as sqlx's SQLite driver binds it).
fn sql_value(v: &AnyValueKind<'_>) -> Result<Value, sqlx::Error> {
    Ok(match v {
        AnyValueKind::Null(_) => Value::Null,
        AnyValueKind::Bool(b) => Value::Integer(i64::from(*b)),
        AnyValueKind::SmallInt(n) => Value::Integer(i64::from(*n)),
        AnyValueKind::Integer(n) => Value::Integer(i64::from(*n)),
        AnyValueKind::BigInt(n) => Value::Integer(*n),
        AnyValueKind::Real(x) => Value::Real(f64::from(*x)),
        AnyValueKind::Double(x) => Value::Real(*x),
        AnyValueKind::Text(s) => Value::Text(s.to_string()),
        AnyValueKind::Blob(b) => Value::Blob(b.to_vec()),
        other => {
            return Err(sqlx::Error::Protocol(format!(
                "an argument SQLite cannot take: {other:?}"
            )))
        }
    })
}

/// A SQLite value as sqlx's SQLite driver answers it through `Any` (by the value's own type).
fn any_value(v: ValueRef<'_>) -> Result<AnyValueKind<'static>, sqlx::Error> {
    Ok(match v {
        ValueRef::Null => AnyValueKind::Null(AnyTypeInfoKind::Null),
        ValueRef::Integer(n) => AnyValueKind::BigInt(n),
        ValueRef::Real(x) => AnyValueKind::Double(x),
        ValueRef::Text(t) => AnyValueKind::Text(
            std::str::from_utf8(t)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?
                .to_owned()
                .into(),
        ),
        ValueRef::Blob(b) => AnyValueKind::Blob(b.to_vec().into()),
    })
}

fn kind_of(v: &AnyValueKind<'_>) -> AnyTypeInfoKind {
    match v {
        AnyValueKind::BigInt(_) => AnyTypeInfoKind::BigInt,
        AnyValueKind::Double(_) => AnyTypeInfoKind::Double,
        AnyValueKind::Text(_) => AnyTypeInfoKind::Text,
        AnyValueKind::Blob(_) => AnyTypeInfoKind::Blob,
        _ => AnyTypeInfoKind::Null,
    }
}

/// SQLite's error as sqlx's, classified as the store classifies sqlx's (`map_err`): a database
/// busy, locked or out of its lock protocol is `Io` (unavailable: the client may retry); the
/// rest is the driver's (a failure).
fn failed(e: rusqlite::Error) -> sqlx::Error {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, FileLockingProtocolFailed};
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked | FileLockingProtocolFailed) => {
            sqlx::Error::Io(std::io::Error::other(e))
        }
        _ => sqlx::Error::AnyDriverError(Box::new(e)),
    }
}

/// A statement of the store's, as on `&Pool`: on the caller's thread when there is room.
impl<'p> Executor<'p> for &'_ PointReads {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        let Some(place) = self.inline_place() else {
            return self.pool.fetch_many(query);
        };
        let answer = place.0.run(query, usize::MAX);
        drop(place);
        match answer {
            Ok(rows) => stream::iter(rows.into_iter().map(|r| Ok(Either::Right(r)))).boxed(),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        if let Some(place) = self.inline_place() {
            let answer = place.first_row(query);
            return Box::pin(async move { answer });
        }
        let Some(inline) = self.inline.clone().filter(|i| i.at_once > 0) else {
            return self.pool.fetch_optional(query);
        };
        // The place is taken by a read of a few microseconds on another thread: this thread's
        // other tasks run once, then the place is tried again before the read goes to a
        // connection's thread (two thread wake-ups, and under load as much CPU as the request).
        let pool = self.pool.clone();
        Box::pin(async move {
            BackOfTheQueue::default().await;
            match inline.place() {
                Some(place) => place.first_row(query),
                None => pool.fetch_optional(query).await,
            }
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement<'q>, sqlx::Error>>
    where
        'p: 'e,
    {
        self.pool.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, sqlx::Error>>
    where
        'p: 'e,
    {
        self.pool.describe(sql)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use sqlx::Row;

    use super::*;

    /// A file with one row of each type SQLite keeps, and point reads on it that run on the
    /// caller's thread (`at_once` 1) or always on the reader pool's (`at_once` 0).
    async fn points(at_once: usize) -> (PointReads, tempfile::TempDir) {
        static DRIVERS: std::sync::Once = std::sync::Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let setup = rusqlite::Connection::open(&path).expect("open");
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (id BLOB PRIMARY KEY, name TEXT, n BIGINT, x REAL, gone BIGINT);
                 INSERT INTO t VALUES (x'0102', 'één', 7, 0.5, NULL);
                 INSERT INTO t VALUES (x'0304', 'two', -3, 2.0, 9);",
            )
            .expect("setup");
        let url = format!("sqlite://{}", path.display());
        let open: crate::pool::Open = Arc::new(move || {
            let url = url.clone();
            Box::pin(async move {
                use sqlx::Connection;
                sqlx::AnyConnection::connect(&url).await
            })
        });
        let pool = Pool::kept(open, 1, Duration::from_secs(5))
            .await
            .expect("pool");
        let inline = Inline::open(path, at_once).expect("inline");
        (PointReads::new(Some(inline), pool), dir)
    }

    /// The rows of the test table, counted through `points`.
    async fn rows_in_t(points: &PointReads) -> i64 {
        sqlx::query("SELECT count(*) FROM t")
            .fetch_optional(points)
            .await
            .expect("read")
            .expect("row")
            .try_get::<i64, _>(0)
            .expect("count")
    }

    /// Arguments bind by their `$n` (used twice, out of order) and each value comes back as
    /// sqlx's SQLite driver answers it: the same on the caller's thread as on the pool's.
    #[tokio::test]
    async fn numbered_arguments_bind_and_values_decode_as_with_sqlx() {
        for at_once in [1, 0] {
            numbered_arguments(at_once).await;
        }
    }

    async fn numbered_arguments(at_once: usize) {
        let (points, _dir) = points(at_once).await;
        let row =
            sqlx::query("SELECT id, name, n, x, gone FROM t WHERE n > $2 AND id = $1 AND n >= $2")
                .bind(vec![1u8, 2])
                .bind(0i64)
                .fetch_optional(&points)
                .await
                .expect("read")
                .expect("a row");
        assert_eq!(row.try_get::<Vec<u8>, _>("id").expect("id"), [1, 2]);
        assert_eq!(row.try_get::<String, _>("name").expect("name"), "één");
        assert_eq!(row.try_get::<i64, _>(2).expect("n"), 7);
        assert_eq!(row.try_get::<f64, _>("x").expect("x"), 0.5);
        assert_eq!(row.try_get::<Option<i64>, _>("gone").expect("gone"), None);
        let none = sqlx::query("SELECT name FROM t WHERE id = $1")
            .bind(vec![9u8])
            .fetch_optional(&points)
            .await
            .expect("read");
        assert!(none.is_none());
        let all = sqlx::query("SELECT n FROM t WHERE gone IS NULL OR gone = $1 ORDER BY n")
            .bind(9i64)
            .fetch_all(&points)
            .await
            .expect("read");
        let ns: Vec<i64> = all.iter().map(|r| r.try_get(0).expect("n")).collect();
        assert_eq!(ns, [-3, 7]);
    }

    /// A statement that writes is refused (the connections only read), a wrong statement is an
    /// error, and the next read works on.
    #[tokio::test]
    async fn writes_are_refused_and_errors_leave_the_reads_working() {
        let (points, _dir) = points(1).await;
        let write = sqlx::query("DELETE FROM t WHERE id = $1")
            .bind(vec![1u8, 2])
            .fetch_optional(&points)
            .await;
        assert!(write.is_err(), "a write was run");
        let wrong = sqlx::query("SELECT nope FROM t")
            .fetch_optional(&points)
            .await;
        assert!(wrong.is_err(), "a wrong statement was run");
        let missing = sqlx::query("SELECT name FROM t WHERE id = $1 AND n = $2")
            .bind(vec![1u8, 2])
            .fetch_optional(&points)
            .await;
        assert!(missing.is_err(), "a parameter without its argument was run");
        let n = rows_in_t(&points).await;
        assert_eq!(n, 2);
    }

    /// While every place on callers' threads is taken (a read stuck behind another process's
    /// lock), the next read runs on the reader pool's threads; the place comes back after.
    #[tokio::test]
    async fn a_read_finding_no_place_goes_to_the_pool() {
        let (points, _dir) = points(1).await;
        let stuck = points.inline_place().expect("a place");
        assert!(points.inline_place().is_none(), "one place only");
        let row = sqlx::query("SELECT name FROM t WHERE id = $1")
            .bind(vec![3u8, 4])
            .fetch_optional(&points)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(row.try_get::<String, _>(0).expect("name"), "two");
        drop(stuck);
        assert!(points.inline_place().is_some(), "given back");
    }

    /// A read that finds the place taken lets its thread's other tasks run once, then tries
    /// again: a place given back meanwhile is its own. (A write shows where it ran: refused on
    /// the caller's thread, run on the pool's.)
    #[tokio::test]
    async fn a_read_finding_the_place_taken_tries_again_after_one_turn() {
        use futures_util::FutureExt;
        let (points, _dir) = points(1).await;
        let stuck = points.inline_place().expect("a place");
        let mut read = std::pin::pin!(sqlx::query("DELETE FROM t WHERE id = $1")
            .bind(vec![1u8, 2])
            .fetch_optional(&points));
        assert!(
            read.as_mut().now_or_never().is_none(),
            "the read waits a turn"
        );
        drop(stuck);
        assert!(
            read.await.is_err(),
            "the write ran on the pool's connection"
        );
        let n = rows_in_t(&points).await;
        assert_eq!(n, 2, "nothing was deleted");
    }
}
