//! The artifact writer's batches on a SQLite file: a batch the database refuses halfway leaves
//! none of its rows, a rotation whose successor is refused consumes nothing, and the writer
//! writes on.

#![allow(clippy::expect_used)]

use serde_json::json;
use tessera_core::model::{Artifact, ArtifactKey, ArtifactKind};
use tessera_core::store::{Consume, Consumed, StoreError};
use tessera_core::Timestamp;
use tessera_store::connect;

fn artifact(n: u16, client_id: &str) -> Artifact {
    let mut key = [7u8; 40];
    key[..2].copy_from_slice(&n.to_be_bytes());
    Artifact {
        key: ArtifactKey(key),
        kind: ArtifactKind::RefreshToken,
        client_id: client_id.into(),
        grant_id: Some(format!("g{n}")),
        user_id: None,
        expires_at: Timestamp(4_000_000_000),
        revoked_at: None,
        consumed_at: None,
        payload: json!({"n": n}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = connect(&url).await.expect("connect");
    // Another connection installs a rule that refuses one client's rows.
    let refuse = rusqlite::Connection::open(dir.path().join("t.db")).expect("open");
    refuse
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON artifacts WHEN NEW.client_id = 'refused' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .expect("trigger");
    drop(refuse);

    // 40 rows are two statements in one transaction; the refused row is in the second.
    let mut rows: Vec<Artifact> = (0..40).map(|n| artifact(n, "c")).collect();
    rows[35].client_id = "refused".into();
    let failed = store.insert_artifacts(&rows).await;
    assert!(
        matches!(failed, Err(StoreError::Other(_))),
        "a refused batch answered {failed:?}"
    );
    for a in &rows {
        assert_eq!(store.get_artifact(&a.key).await.expect("get"), None);
    }

    // The writer writes on: an insert, then a rotation (a consume and its successor).
    let first = artifact(100, "c");
    store.insert_artifact(&first).await.expect("insert");
    let successor = artifact(101, "c");
    let which = Consume {
        key: &first.key,
        kind: ArtifactKind::RefreshToken,
        client_id: "c",
    };
    let rotated = store
        .rotate_artifact(which, Timestamp(10), None, &successor)
        .await
        .expect("rotate");
    assert_eq!(rotated, Consumed::First(first.clone()));
    assert_eq!(
        store.get_artifact(&successor.key).await.expect("get"),
        Some(successor.clone())
    );
    let again = store
        .rotate_artifact(which, Timestamp(11), None, &artifact(102, "c"))
        .await
        .expect("rotate again");
    assert!(matches!(again, Consumed::Again(_)), "{again:?}");

    // A rotation whose successor is refused consumes nothing.
    let refused = artifact(103, "refused");
    let which = Consume {
        key: &successor.key,
        kind: ArtifactKind::RefreshToken,
        client_id: "c",
    };
    let failed = store
        .rotate_artifact(which, Timestamp(12), None, &refused)
        .await;
    assert!(failed.is_err(), "{failed:?}");
    let kept = store.get_artifact(&successor.key).await.expect("get");
    assert_eq!(kept.and_then(|a| a.consumed_at), None, "consumed anyway");
    assert_eq!(store.get_artifact(&refused.key).await.expect("get"), None);
}
