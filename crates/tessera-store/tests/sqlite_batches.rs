//! The artifact writer's batches on SQLite: a batch the database refuses halfway leaves none of
//! its rows (in one statement or in several), a rotation whose successor is refused consumes
//! nothing, one whose consume is refused after its successor was inserted keeps no successor,
//! and the writer writes on.

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

    // 40 rows are two statements in one transaction, the refused row in the second; 10 rows are
    // one plain statement outside a transaction, refused at its sixth row. Neither stores a row.
    for (numbers, refused) in [(0..40, 35), (200..210, 5)] {
        let mut rows: Vec<Artifact> = numbers.map(|n| artifact(n, "c")).collect();
        rows[refused].client_id = "refused".into();
        let failed = store.insert_artifacts(&rows).await;
        assert!(
            matches!(failed, Err(StoreError::Other(_))),
            "a refused batch of {} answered {failed:?}",
            rows.len()
        );
        for a in &rows {
            assert_eq!(store.get_artifact(&a.key).await.expect("get"), None);
        }
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

/// Rotations sent together whose consume the database refuses after their successors were
/// inserted: none of the batch remains, and the writer's connection writes on (its transaction
/// was ended), on a file and on the one connection of an in-memory database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_refused_after_its_successor_leaves_nothing() {
    use rusqlite::OpenFlags;
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("file:refused-rotation-{}", std::process::id());
    let places = [
        (
            format!("sqlite://{}/t.db", dir.path().display()),
            dir.path().join("t.db").display().to_string(),
            OpenFlags::SQLITE_OPEN_READ_WRITE,
        ),
        (
            format!("sqlite:{name}?mode=memory"),
            name.clone(),
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_MEMORY
                | OpenFlags::SQLITE_OPEN_SHARED_CACHE,
        ),
    ];
    for (url, file, flags) in places {
        let store = connect(&url).await.expect("connect");
        // Another connection (to the same shared cache, in memory) refuses one client's consumes.
        let refuse = rusqlite::Connection::open_with_flags(&file, flags).expect("open");
        refuse
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE UPDATE ON artifacts WHEN OLD.client_id = 'kept' \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap_or_else(|e| panic!("{url}: trigger: {e}"));
        let tokens = [artifact(200, "c"), artifact(201, "kept")];
        store.insert_artifacts(&tokens).await.expect("insert");
        let successors = [artifact(202, "c"), artifact(203, "kept")];
        let rotated =
            futures_util::future::join_all(tokens.iter().zip(&successors).map(|(t, s)| {
                let which = Consume {
                    key: &t.key,
                    kind: ArtifactKind::RefreshToken,
                    client_id: &t.client_id,
                };
                store.rotate_artifact(which, Timestamp(10), None, s)
            }))
            .await;
        assert!(rotated[1].is_err(), "{url}: {rotated:?}");
        assert_eq!(
            store.get_artifact(&successors[1].key).await.expect("get"),
            None,
            "{url}: the refused rotation's successor was kept"
        );
        let kept = store.get_artifact(&tokens[1].key).await.expect("get");
        assert_eq!(
            kept.and_then(|a| a.consumed_at),
            None,
            "{url}: consumed anyway"
        );
        // The other rotation, in the same batch or not, was written whole or not at all.
        let other = store.get_artifact(&successors[0].key).await.expect("get");
        let consumed = store.get_artifact(&tokens[0].key).await.expect("get");
        let consumed = consumed.and_then(|a| a.consumed_at).is_some();
        assert_eq!(other.is_some(), rotated[0].is_ok(), "{url}: {rotated:?}");
        assert_eq!(consumed, rotated[0].is_ok(), "{url}: {rotated:?}");

        // The writer writes on: a rotation, then another of the same token.
        let token = artifact(206, "c");
        store.insert_artifact(&token).await.expect("insert");
        let which = Consume {
            key: &token.key,
            kind: ArtifactKind::RefreshToken,
            client_id: "c",
        };
        let next = artifact(204, "c");
        let rotated = store
            .rotate_artifact(which, Timestamp(11), None, &next)
            .await;
        assert_eq!(
            rotated.expect("rotate"),
            Consumed::First(token.clone()),
            "{url}"
        );
        assert_eq!(
            store.get_artifact(&next.key).await.expect("get"),
            Some(next.clone())
        );
        let again = store
            .rotate_artifact(which, Timestamp(12), None, &artifact(205, "c"))
            .await;
        assert!(matches!(again, Ok(Consumed::Again(_))), "{url}: {again:?}");
    }
}
