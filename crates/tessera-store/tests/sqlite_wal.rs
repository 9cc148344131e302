//! The on-disk SQLite store keeps its WAL file bounded while commits never pause.

#![allow(clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::{Connection, SqliteConnection};
use tessera_core::model::{Artifact, ArtifactKey, ArtifactKind};
use tessera_core::Timestamp;
use tessera_store::connect;

/// Writers that never let up (as token requests under load) and a reader beside them: without
/// a checkpoint finished on the writer connection, the WAL only grew (16 GB in ten minutes of a
/// benchmark, until the disk was full). Over 100 MiB are committed here, at a rate a busy node
/// sees. The WAL starts over past 16 MiB at a moment when no read is under way; the reader's
/// reads follow each other without a pause, and on a loaded 2-core machine they can hold it
/// until it would pass 64 MiB by the checkpoints' next look, when writes wait for them, and it
/// grows by what was written meanwhile (peaks of 31-65 MiB in repeated runs, 36-68 MiB beside
/// two busy processes): below 112 MiB, as with readers that hold on (below), where without the
/// checkpoints it is everything written (120+ MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_stays_bounded_under_a_steady_stream_of_commits() {
    wal_stays_below(steady_writes(0).await, 112);
}

/// The same writers, and reads on connections of their own that overlap without end (each holds
/// its snapshot 150 ms, a new one every 50 ms), so that some reader always uses the WAL: it
/// cannot start over by itself. When it would pass 64 MiB by the checkpoints' next look, the
/// writes wait for the readers of the moment, and it starts over (peaks of 54-81 MiB in
/// repeated runs, 59-70 MiB beside two busy processes; when writes waited only once it had
/// passed 64 MiB, 83-105 MiB, and 113 in one run); without that wait it grew to twice what was
/// written. (The wait, up to 1 s,
/// is for the readers using the WAL when it begins and those that begin while the frames are
/// copied. When each holder counted the table's rows, a scan of the whole 140 MiB, and both
/// tests ran at once, it took 600-760 ms beside two busy processes and ran out in about one
/// run in five to nine: the next wait comes 10 s later, and the WAL grew to 155-230 MiB. With
/// a row read, holds of 150 ms and one test at a time: 420-440 ms at most, and out of 90 runs
/// beside two busy processes, one ran out.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_starts_over_while_reads_overlap_without_end() {
    wal_stays_below(steady_writes(3).await, 112);
}

/// A dropped store closes its connections (the checkpoints stop with it): no file descriptor
/// of the process is left on the database within 30 s (even beside the other tests' load), and
/// the database opens again with what was written. (Whether the last connection to close
/// removes the WAL depends on the order they close in: not asserted.)
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_store_closes_its_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let url = format!("sqlite://{}", path.display());
    let key = ArtifactKey([7; 40]);
    {
        let store = connect(&url).await.expect("connect");
        let a = Artifact {
            key,
            kind: ArtifactKind::AccessToken,
            client_id: "c1".into(),
            grant_id: None,
            user_id: None,
            expires_at: Timestamp(10_000),
            revoked_at: None,
            consumed_at: None,
            payload: json!({}),
        };
        store.insert_artifact(&a).await.expect("insert");
        assert!(
            open_on(&path) > 0,
            "the store's connections have the file open"
        );
    }
    let mut waited = 0;
    while open_on(&path) > 0 && waited < 300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(
        open_on(&path),
        0,
        "connections still open 30 s after the store was dropped"
    );
    let store = connect(&url).await.expect("connect again");
    assert!(store.get_artifact(&key).await.expect("read").is_some());
}

/// This process's file descriptors open on `path`.
#[cfg(target_os = "linux")]
fn open_on(path: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

/// The largest the WAL was, of [`steady_writes`], is below `mib`.
fn wal_stays_below((largest, db): (u64, u64), mib: u64) {
    assert!(
        largest < mib << 20,
        "the WAL grew to {} MiB while {} MiB were written",
        largest >> 20,
        db >> 20
    );
}

/// One of the tests above at a time: each keeps both cores busy, and the other's load made
/// the waits for the readers run out.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// 32 writers of 1,000 artifacts of 1.5 kB each, a reader through the store and `holders`
/// readers holding snapshots (each reads a row, then keeps its snapshot); the largest the WAL
/// file was, and the database's size after.
async fn steady_writes(holders: u64) -> (u64, u64) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let url = format!("sqlite://{}", path.display());
    let store = connect(&url).await.expect("connect");
    let filler = "x".repeat(1500);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                store
                    .get_artifact(&ArtifactKey([0; 40]))
                    .await
                    .expect("read");
                reads += 1;
            }
            reads
        })
    };
    let held: Vec<_> = (0..holders)
        .map(|i| {
            let (url, stop) = (url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut conn = SqliteConnection::connect(&url).await.expect("connect");
                tokio::time::sleep(Duration::from_millis(50 * i)).await;
                while !stop.load(Ordering::Relaxed) {
                    let mut tx = conn.begin().await.expect("begin");
                    sqlx::query("SELECT id FROM artifacts LIMIT 1")
                        .fetch_optional(&mut *tx)
                        .await
                        .expect("read");
                    tokio::time::sleep(Duration::from_millis(50 * holders)).await;
                    tx.commit().await.expect("end");
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..32u32)
        .map(|w| {
            let (store, filler) = (store.clone(), filler.clone());
            tokio::spawn(async move {
                for n in 0..1000u32 {
                    let mut key = [0u8; 40];
                    key[..4].copy_from_slice(&n.to_be_bytes());
                    key[4..8].copy_from_slice(&w.to_be_bytes());
                    key[8] = 1;
                    let a = Artifact {
                        key: ArtifactKey(key),
                        kind: ArtifactKind::AccessToken,
                        client_id: "c1".into(),
                        grant_id: None,
                        user_id: None,
                        expires_at: Timestamp(i64::from(n) + 10_000),
                        revoked_at: None,
                        consumed_at: None,
                        payload: json!({ "filler": filler }),
                    };
                    store.insert_artifact(&a).await.expect("insert");
                }
            })
        })
        .collect();
    let mut largest = 0;
    let wal = dir.path().join("t.db-wal");
    while !writers.iter().all(|w| w.is_finished()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    for h in held {
        h.await.expect("holder");
    }
    assert!(reader.await.expect("reader") > 0);
    let db = std::fs::metadata(&path).expect("db").len();
    assert!(
        db > 48 << 20,
        "the 32,000 rows are in the database: {db} bytes"
    );
    eprintln!(
        "WAL at most {} MiB, database {} MiB",
        largest >> 20,
        db >> 20
    );
    (largest, db)
}
