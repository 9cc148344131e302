//! SQLite specifics: WAL, busy timeout, one writer connection beside four readers (kept by the
//! store, never pinged: `pool.rs`) and the point reads' connections (`point.rs`), and WAL
//! checkpoints in the background (so a commit seldom waits for one) that keep the WAL file
//! bounded under a steady stream of writes, for as long as the store is open; an in-memory
//! database is one shared connection.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, Connection, Executor, Row};
use tessera_core::store::StoreError;

use crate::error::map_err;
use crate::point::Inline;
use crate::pool::{Conn, Open, Pool, WeakPool};
use crate::sql::{Dialect, SqlStore};

const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
    PRAGMA foreign_keys = ON; PRAGMA journal_size_limit = 67108864;";
/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 5000;";
/// The writer leaves checkpoints to the background task.
const WRITER_PRAGMAS: &str = "PRAGMA wal_autocheckpoint = 0;";
/// How often the background task checkpoints. The WAL grows by what is committed between two
/// looks: with batches written as plain inserts, commits of 1.5 KB rows reached 45 MiB in 100 ms
/// with overlapping reads, past the 64 MiB hold to 100-133 MiB (the WAL test's bound is 112);
/// at 50 ms, to 83-105 MiB and once to 113, until the hold came a look early
/// ([`Hold::next_look`]: 54-81 MiB).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// WAL frames (pages: 16 MiB at SQLite's 4 KiB) past which a checkpoint is finished while
/// holding the writer connection, so that the WAL starts over.
const RESTART_FRAMES: i64 = 4096;
/// WAL frames (64 MiB, `journal_size_limit`) that the WAL should not pass: writes wait for the
/// readers when it would by the next look.
const HOLD_FRAMES: i64 = 16_384;
/// How long writes wait for the readers then, at most.
const HOLD_WAIT_MS: u32 = 1000;
/// After a read outlasted that wait, how long until writes wait again: doubled after each
/// wait in vain (a backup may read for minutes), up to [`HOLD_BACKOFF_MAX`].
const HOLD_BACKOFF: Duration = Duration::from_secs(10);
const HOLD_BACKOFF_MAX: Duration = Duration::from_secs(320);

/// Opens one connection to `url` with the pragmas (and `extra`'s).
fn opener(url: String, extra: &'static str) -> Open {
    Arc::new(move || {
        let url = url.clone();
        Box::pin(async move {
            let mut conn = AnyConnection::connect(&url).await?;
            conn.execute(PRAGMAS).await?;
            conn.execute(BUSY_TIMEOUT).await?;
            if !extra.is_empty() {
                conn.execute(extra).await?;
            }
            Ok(conn)
        })
    })
}

/// A caller waits this long for a connection before the store answers unavailable.
const ACQUIRE_WAIT: Duration = Duration::from_secs(5);

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
        let pool = Pool::kept(opener(url, ""), 1, ACQUIRE_WAIT)
            .await
            .map_err(map_err)?;
        return Ok(SqlStore::new(
            Dialect::Sqlite,
            pool.clone(),
            pool,
            None,
            false,
        ));
    }
    let writer = Pool::kept(opener(url.clone(), WRITER_PRAGMAS), 1, ACQUIRE_WAIT)
        .await
        .map_err(map_err)?;
    let file = SqliteConnectOptions::from_str(&url)
        .map_err(map_err)?
        .get_filename()
        .to_owned();
    let readers = Pool::kept(opener(url, ""), 4, ACQUIRE_WAIT)
        .await
        .map_err(map_err)?;
    // All but one of the threads that run requests, as many as the runtime's workers, may read
    // on their own (none when there is one).
    let at_once = tokio::runtime::Handle::current()
        .metrics()
        .num_workers()
        .saturating_sub(1);
    let inline = Inline::open(file, at_once).map_err(map_err)?;
    tokio::spawn(checkpoints(readers.downgrade(), writer.downgrade()));
    Ok(SqlStore::new(
        Dialect::Sqlite,
        writer,
        readers,
        Some(inline),
        true,
    ))
}

/// Copies committed WAL frames into the database without blocking the writer (PASSIVE), until
/// the store is dropped (its connections then close, and the last one removes the WAL), and
/// keeps the WAL file bounded. SQLite starts the WAL over only when a write begins after every
/// frame was copied and no reader still uses one; under a steady stream of commits that moment
/// never came (a checkpoint on a reader's connection always trails the latest commit), and the
/// WAL grew without bound: 16 GB in ten minutes of token requests, until the disk was full. So:
/// - past [`RESTART_FRAMES`], the rest is copied on the writer connection, the only one in this
///   process: nothing is appended meanwhile, and the next write starts the WAL over unless a
///   read is under way at that moment (reads that follow each other without a pause can keep
///   it until the next point);
/// - when it would pass [`HOLD_FRAMES`] by the next look, something else holds it (reads that
///   overlap without end, a read that lasts, another process writing the same file): writes
///   then wait up to [`HOLD_WAIT_MS`] for the readers (RESTART); when a read outlasts that, the
///   log says so and the next such wait comes [`HOLD_BACKOFF`] later, twice as late after each
///   wait in vain, until the WAL has started over.
async fn checkpoints(readers: WeakPool, writer: WeakPool) {
    let mut hold = Hold::default();
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        let (Some(readers), Some(writer)) = (readers.upgrade(), writer.upgrade()) else {
            return;
        };
        let frames = match checkpoint(&readers, PASSIVE).await {
            // Another process (a CLI command) is checkpointing: it copies the frames.
            Ok(Checkpoint { frames: None, .. }) => continue,
            Ok(Checkpoint {
                frames: Some(frames),
                ..
            }) => frames,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                continue;
            }
        };
        let next = hold.next_look(frames);
        if frames < RESTART_FRAMES {
            hold.started_over();
            continue;
        }
        let mut conn = match writer.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "no writer connection for the WAL checkpoint; retrying");
                continue;
            }
        };
        if let Err(e) = checkpoint(&mut *conn, PASSIVE).await {
            tracing::warn!(error = %e, "WAL checkpoint on the writer failed; retrying");
            continue;
        }
        if next < HOLD_FRAMES || !hold.may_wait(Instant::now()) {
            continue;
        }
        let result = restart(&mut conn).await;
        if let Ok(Checkpoint { busy: false, .. }) = result {
            hold.started_over();
            continue;
        }
        let wait = hold.waited_in_vain(Instant::now());
        match result {
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint (RESTART) failed"),
            Ok(_) => tracing::warn!(
                wal_mib = frames * 4 / 1024,
                next_try_s = wait.as_secs(),
                "the WAL cannot start over: a read has lasted over {HOLD_WAIT_MS} ms, or \
                 another process keeps writing the database; it grows until they end"
            ),
        }
    }
}

/// When writes may wait for the readers again: at once, until a wait was in vain; then
/// [`HOLD_BACKOFF`] later, twice as late after each wait in vain (up to [`HOLD_BACKOFF_MAX`]),
/// until the WAL has started over.
#[derive(Debug, Default)]
struct Hold {
    /// Since when, and for how long, writes do not wait.
    back: Option<(Instant, Duration)>,
    /// The WAL's frames at the last look.
    last: i64,
}

impl Hold {
    /// The frames the WAL will have at the next look, if it grows by as much as since the last
    /// (after it started over, by all it has): writes wait for the readers when that is past
    /// [`HOLD_FRAMES`], not once the WAL is, since it grows by what is committed meanwhile
    /// (22 MiB in 50 ms in the WAL test).
    fn next_look(&mut self, frames: i64) -> i64 {
        let growth = if frames >= self.last {
            frames - self.last
        } else {
            frames
        };
        self.last = frames;
        frames.saturating_add(growth)
    }

    fn may_wait(&self, now: Instant) -> bool {
        self.back.is_none_or(|(at, wait)| now >= at + wait)
    }

    /// A wait that a read outlasted; how long until the next.
    fn waited_in_vain(&mut self, now: Instant) -> Duration {
        let wait = self
            .back
            .map_or(HOLD_BACKOFF, |(_, w)| (w * 2).min(HOLD_BACKOFF_MAX));
        self.back = Some((now, wait));
        wait
    }

    /// The WAL started over (a wait succeeded, or the read that held it ended).
    fn started_over(&mut self) {
        self.back = None;
    }
}

/// What `PRAGMA wal_checkpoint` answered: whether it could not finish, and the frames in the WAL
/// (`None` when another connection was checkpointing).
struct Checkpoint {
    busy: bool,
    frames: Option<i64>,
}

/// Copies what no reader still needs, waits for nobody.
const PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";
/// Copies everything, then waits for the readers still using the WAL (see [`restart`]).
const RESTART: &str = "PRAGMA wal_checkpoint(RESTART)";

/// One checkpoint, [`PASSIVE`] or [`RESTART`].
async fn checkpoint<'c>(
    on: impl sqlx::Executor<'c, Database = sqlx::Any>,
    sql: &'static str,
) -> Result<Checkpoint, sqlx::Error> {
    let row = sqlx::query(sql).fetch_one(on).await?;
    let frames: i64 = row.try_get(1)?;
    Ok(Checkpoint {
        busy: row.try_get::<i64, _>(0)? != 0,
        frames: (frames >= 0).then_some(frames),
    })
}

/// A RESTART checkpoint on the writer connection: copies every frame, then waits (the writes
/// with it) up to [`HOLD_WAIT_MS`] for the readers still using the WAL, so that the next write
/// starts it over. The connection's own busy timeout is set back after, or it is closed.
async fn restart(conn: &mut Conn) -> Result<Checkpoint, sqlx::Error> {
    conn.execute(format!("PRAGMA busy_timeout = {HOLD_WAIT_MS};").as_str())
        .await?;
    let done = checkpoint(&mut **conn, RESTART).await;
    if conn.execute(BUSY_TIMEOUT).await.is_err() {
        conn.close_on_drop();
    }
    done
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Hold;

    /// Waits in vain come 10 s, 20 s, 40 s … apart, at most 320 s; once the WAL has started over
    /// (a backup ended), the next hold waits at once and backs off from 10 s again.
    #[test]
    fn the_hold_backs_off_and_starts_again_once_the_wal_started_over() {
        let t0 = Instant::now();
        let mut hold = Hold::default();
        assert!(hold.may_wait(t0));
        let waits: Vec<u64> = (0..7)
            .map(|i| {
                hold.waited_in_vain(t0 + Duration::from_secs(1000 * i))
                    .as_secs()
            })
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 320]);
        let last = t0 + Duration::from_secs(6000);
        assert!(!hold.may_wait(last + Duration::from_secs(319)));
        assert!(hold.may_wait(last + Duration::from_secs(320)));
        hold.started_over();
        assert!(hold.may_wait(last));
        assert_eq!(hold.waited_in_vain(last).as_secs(), 10);
        assert!(!hold.may_wait(last + Duration::from_secs(9)));
    }

    /// The next look is expected where the WAL's growth since the last one leads; a WAL that
    /// started over grew by all it has.
    #[test]
    fn the_next_look_is_expected_as_far_on_as_the_last_growth() {
        let mut hold = Hold::default();
        assert_eq!(hold.next_look(5_000), 10_000);
        assert_eq!(hold.next_look(11_000), 17_000);
        assert_eq!(hold.next_look(11_000), 11_000);
        assert_eq!(hold.next_look(3_000), 6_000);
        assert_eq!(hold.next_look(3_500), 4_000);
    }
}
