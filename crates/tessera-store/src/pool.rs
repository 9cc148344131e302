//! Connection pools: sqlx's for PostgreSQL; for SQLite, connections kept by the store and handed
//! from caller to caller without the test sqlx's pool runs on each one given back.
//!
//! sqlx's pool pings every connection given back to it: on SQLite a command to the connection's
//! own thread and an answer, two more thread wake-ups after every statement beside the
//! statement's own (on 2 cores, 8-15 % more refresh grants a second without them, in an A/B
//! run). A file on this machine does not go away between statements, so
//! [`Pool::Kept`] opens its connections itself and keeps them, and hands one on at once when its
//! caller saw every answer ([`Conn::settle`]). A connection runs its commands in order on its
//! thread: one given back by a caller that went away before an answer (a request cancelled
//! while its statement waited for another process's lock) would make the next caller wait
//! behind that statement without limit. Such a connection, and its place, come back only once a
//! ping sent after those commands is answered, so the next caller waits for a place, at most the
//! pool's wait, as with sqlx's pool.
//! PostgreSQL's connections break with the server or the network: they stay in sqlx's pool
//! ([`Pool::Shared`]), which tests them.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt};
use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Describe, Either, Execute, Executor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Opens one connection, set up for its pool (pragmas).
pub(crate) type Open =
    Arc<dyn Fn() -> BoxFuture<'static, Result<AnyConnection, sqlx::Error>> + Send + Sync>;

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    /// sqlx's pool (PostgreSQL).
    Shared(AnyPool),
    /// Connections the store keeps (SQLite).
    Kept(Kept),
}

/// At most `leases` connections at once, opened by `open` when none is idle and kept.
#[derive(Clone)]
pub(crate) struct Kept(Arc<KeptInner>);

struct KeptInner {
    open: Open,
    idle: Mutex<Vec<AnyConnection>>,
    leases: Arc<Semaphore>,
    /// How long a caller waits for a connection before `PoolTimedOut`.
    wait: Duration,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("free", &self.0.leases.available_permits())
            .finish_non_exhaustive()
    }
}

/// A connection for one caller: handed on when dropped, or closed after
/// [`Conn::close_on_drop`].
pub(crate) struct Conn(Held);

enum Held {
    Shared(PoolConnection<Any>),
    Kept {
        /// Taken out only when dropped.
        conn: Option<AnyConnection>,
        home: Arc<KeptInner>,
        /// The caller's place among the pool's connections; taken out only when dropped.
        lease: Option<OwnedSemaphorePermit>,
        close: bool,
        /// Whether the caller saw the answer of every command it sent.
        settled: bool,
    },
}

impl Pool {
    /// A pool of at most `max` connections opened by `open`, one of them at once (so that a
    /// database that cannot be opened fails here); a caller waits up to `wait` for one.
    pub(crate) async fn kept(open: Open, max: usize, wait: Duration) -> Result<Pool, sqlx::Error> {
        let first = open().await?;
        Ok(Pool::Kept(Kept(Arc::new(KeptInner {
            open,
            idle: Mutex::new(vec![first]),
            leases: Arc::new(Semaphore::new(max)),
            wait,
        }))))
    }

    pub(crate) async fn acquire(&self) -> Result<Conn, sqlx::Error> {
        let kept = match self {
            Pool::Shared(pool) => return Ok(Conn(Held::Shared(pool.acquire().await?))),
            Pool::Kept(Kept(kept)) => kept,
        };
        let lease = tokio::time::timeout(kept.wait, kept.leases.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = kept.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => (kept.open)().await?,
        };
        Ok(Conn(Held::Kept {
            conn: Some(conn),
            home: kept.clone(),
            lease: Some(lease),
            close: false,
            settled: false,
        }))
    }

    /// The pool for a task that must not keep it open: [`WeakPool::upgrade`] gives it while
    /// the store (or another holder) still has it.
    pub(crate) fn downgrade(&self) -> WeakPool {
        WeakPool(match self {
            Pool::Shared(pool) => Weak::Shared(pool.clone()),
            Pool::Kept(Kept(kept)) => Weak::Kept(Arc::downgrade(kept)),
        })
    }
}

/// A pool that [`Pool::downgrade`] handed out.
pub(crate) struct WeakPool(Weak);

enum Weak {
    /// sqlx's pool lives until it is closed.
    Shared(AnyPool),
    /// Kept connections are closed when the last holder of the pool drops it.
    Kept(std::sync::Weak<KeptInner>),
}

impl WeakPool {
    pub(crate) fn upgrade(&self) -> Option<Pool> {
        match &self.0 {
            Weak::Shared(pool) => (!pool.is_closed()).then(|| Pool::Shared(pool.clone())),
            Weak::Kept(kept) => kept.upgrade().map(|k| Pool::Kept(Kept(k))),
        }
    }
}

impl Conn {
    /// Closes the connection when it is dropped instead of handing it on (the pool opens
    /// another when needed).
    pub(crate) fn close_on_drop(&mut self) {
        match &mut self.0 {
            Held::Shared(conn) => conn.close_on_drop(),
            Held::Kept { close, .. } => *close = true,
        }
    }

    /// Says that the caller saw the answer of every command it sent (it did not go away
    /// halfway): the connection is handed on at once when dropped. Without it, the connection
    /// comes back once a ping sent after its commands is answered.
    pub(crate) fn settle(&mut self) {
        if let Held::Kept { settled, .. } = &mut self.0 {
            *settled = true;
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A shared connection goes back to sqlx's pool, which closes it when told to.
        let Held::Kept {
            conn,
            home,
            lease,
            close,
            settled,
        } = &mut self.0
        else {
            return;
        };
        // A kept connection to close is dropped, and closed with its thread.
        let (Some(conn), false) = (conn.take(), *close) else {
            return;
        };
        if *settled {
            home.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
            return;
        }
        let (home, lease) = (home.clone(), lease.take());
        // Without a runtime (the process ending) the connection is closed with its thread.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut conn = conn;
                if conn.ping().await.is_ok() {
                    home.idle
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(conn);
                }
                drop(lease);
            });
        }
    }
}

impl Deref for Conn {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match &self.0 {
            Held::Shared(conn) => conn,
            Held::Kept {
                conn: Some(conn), ..
            } => conn,
            Held::Kept { conn: None, .. } => unreachable!("taken out only when dropped"),
        }
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.0 {
            Held::Shared(conn) => conn,
            Held::Kept {
                conn: Some(conn), ..
            } => conn,
            Held::Kept { conn: None, .. } => unreachable!("taken out only when dropped"),
        }
    }
}

/// Whether `e` says the connection itself is gone (its thread, its socket): not handed on.
fn broken(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::WorkerCrashed | sqlx::Error::Io(_))
}

/// A statement on a connection of the pool, as on `&AnyPool`; a connection that turns out
/// [`broken`] is closed.
impl<'p> Executor<'p> for &'_ Pool {
    type Database = Any;

    /// Reads the whole answer before yielding it: every caller reads all of it.
    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        let pool = self.clone();
        stream::once(async move {
            match pool.acquire().await {
                Ok(mut conn) => {
                    let answer: Vec<_> = conn.fetch_many(query).collect().await;
                    conn.settle();
                    if answer.iter().any(|r| r.as_ref().is_err_and(broken)) {
                        conn.close_on_drop();
                    }
                    answer
                }
                Err(e) => vec![Err(e)],
            }
        })
        .flat_map(stream::iter)
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            let answer = conn.fetch_optional(query).await;
            conn.settle();
            if answer.as_ref().is_err_and(broken) {
                conn.close_on_drop();
            }
            answer
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
        let pool = self.clone();
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            let answer = conn.prepare_with(sql, parameters).await;
            conn.settle();
            answer
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, sqlx::Error>>
    where
        'p: 'e,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            let answer = conn.describe(sql).await;
            conn.settle();
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use sqlx::Row;

    use super::*;

    /// A kept pool of at most `max` connections to a fresh database file, counting its opens.
    async fn pool(max: usize, wait: Duration) -> (Pool, Arc<AtomicUsize>, tempfile::TempDir) {
        static DRIVERS: std::sync::Once = std::sync::Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let opens = Arc::new(AtomicUsize::new(0));
        let counted = opens.clone();
        let open: Open = Arc::new(move || {
            let (url, counted) = (url.clone(), counted.clone());
            Box::pin(async move {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut conn = AnyConnection::connect(&url).await?;
                conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;")
                    .await?;
                Ok(conn)
            })
        });
        let pool = Pool::kept(open, max, wait).await.expect("pool");
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(&pool)
            .await
            .expect("table");
        (pool, opens, dir)
    }

    async fn rows(pool: &Pool) -> Vec<i64> {
        sqlx::query("SELECT n FROM t ORDER BY n")
            .fetch_all(pool)
            .await
            .expect("rows")
            .iter()
            .map(|r| r.try_get::<i64, _>(0).expect("n"))
            .collect()
    }

    /// The connection of a caller that went away inside a transaction (its future dropped, as a
    /// request whose client hung up) comes back without a test: the rollback runs before the
    /// next caller's statements, which commit on their own.
    #[tokio::test]
    async fn a_transaction_left_unfinished_is_rolled_back_before_the_next_caller() {
        let (pool, opens, _dir) = pool(1, Duration::from_secs(5)).await;
        {
            let mut conn = pool.acquire().await.expect("conn");
            let mut tx = conn.begin().await.expect("begin");
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *tx)
                .await
                .expect("insert");
        }
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&pool)
            .await
            .expect("insert");
        let mut conn = pool.acquire().await.expect("conn");
        let tx = conn.begin().await.expect("a transaction, not a savepoint");
        tx.rollback().await.expect("rollback");
        drop(conn);
        assert_eq!(rows(&pool).await, [2]);
        // Handed on, not opened again.
        assert_eq!(opens.load(Ordering::SeqCst), 1);
    }

    /// No more connections than the pool may hold, each opened once; a caller beyond them
    /// waits, and gets `PoolTimedOut` (the store's "unavailable") when none comes back in time.
    #[tokio::test]
    async fn callers_beyond_the_connections_wait_then_time_out() {
        let (pool, opens, _dir) = pool(2, Duration::from_millis(200)).await;
        let a = pool.acquire().await.expect("a");
        let b = pool.acquire().await.expect("b");
        assert!(matches!(
            pool.acquire().await.err(),
            Some(sqlx::Error::PoolTimedOut)
        ));
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(a);
        waiting.await.expect("task").expect("handed on");
        drop(b);
        for _ in 0..20 {
            assert_eq!(rows(&pool).await, Vec::<i64>::new());
        }
        assert_eq!(opens.load(Ordering::SeqCst), 2);
    }

    /// A caller that went away before its statement's answer (a request cancelled while
    /// another process held the write lock): the connection's place comes back only once that
    /// statement is done, so the next caller waits for a place at most the pool's wait and is
    /// told the store is unavailable, instead of waiting behind the statement without limit.
    #[tokio::test]
    async fn a_caller_gone_mid_statement_keeps_the_place_until_the_statement_is_done() {
        let (pool, _opens, dir) = pool(1, Duration::from_millis(300)).await;
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let mut other = AnyConnection::connect(&url).await.expect("other");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .expect("lock");
        let gone = tokio::time::timeout(
            Duration::from_millis(100),
            sqlx::query("INSERT INTO t VALUES (1)").execute(&pool),
        )
        .await;
        assert!(gone.is_err(), "the insert waits for the lock");
        let started = std::time::Instant::now();
        let next = sqlx::query("INSERT INTO t VALUES (2)").execute(&pool).await;
        assert!(matches!(next, Err(sqlx::Error::PoolTimedOut)), "{next:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        sqlx::query("COMMIT")
            .execute(&mut other)
            .await
            .expect("unlock");
        // The abandoned insert then runs (at SQLite's next try for the lock), and the
        // connection comes back.
        let unlocked = std::time::Instant::now();
        loop {
            match sqlx::query("INSERT INTO t VALUES (3)").execute(&pool).await {
                Ok(_) => break,
                Err(sqlx::Error::PoolTimedOut) if unlocked.elapsed() < Duration::from_secs(5) => {}
                Err(e) => panic!("the connection did not come back: {e}"),
            }
        }
        assert_eq!(rows(&pool).await, [1, 3]);
    }

    /// A connection marked to close is not handed on: the next caller gets a new one.
    #[tokio::test]
    async fn a_connection_closed_on_drop_is_replaced() {
        let (pool, opens, _dir) = pool(1, Duration::from_secs(5)).await;
        let mut conn = pool.acquire().await.expect("conn");
        conn.close_on_drop();
        drop(conn);
        sqlx::query("INSERT INTO t VALUES (3)")
            .execute(&pool)
            .await
            .expect("insert");
        assert_eq!(rows(&pool).await, [3]);
        assert_eq!(opens.load(Ordering::SeqCst), 2);
    }
}
