//! Runs the store contract on every backend: SQLite in memory and on disk, PostgreSQL when
//! `TEST_DATABASE_URL` is set (each run in a database of its own).

use tessera_store::{connect, contract};

#[tokio::test]
async fn sqlite_in_memory() {
    let store = connect("sqlite::memory:").await.expect("connect");
    contract::run(store.as_ref()).await;
}

/// On a runtime of two threads, so that lookups by key run on the caller's thread (the point
/// reads of the server's runtime; on one thread they all go to the reader connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_disk_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = connect(&url).await.expect("connect");
    contract::run(store.as_ref()).await;
    drop(store);
    let again = connect(&url).await.expect("reopen");
    assert!(
        again.get_client("c1").await.expect("get").is_some(),
        "data persisted across reopen"
    );
}

#[tokio::test]
async fn postgres() {
    let Some(url) = tessera_store::testing::fresh_postgres_database("postgres").await else {
        return;
    };
    let store = connect(&url).await.expect("connect");
    contract::run(store.as_ref()).await;
}
