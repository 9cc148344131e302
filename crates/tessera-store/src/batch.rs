//! Group commit for artifact inserts: concurrent inserts queue up and are written by one task as a
//! single multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING hash` statement, so one commit serves
//! a whole batch. Each caller is answered only after its row is committed.

use std::collections::HashSet;

use sqlx::{AnyPool, Row};
use tessera_core::model::Artifact;
use tessera_core::store::{StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};

use crate::error::map_err;

/// Rows per statement: 8 parameters each stays far below SQLite's and PostgreSQL's limits.
const MAX_BATCH: usize = 256;
const QUEUE: usize = 8_192;

struct Pending {
    row: Row8,
    reply: oneshot::Sender<StoreResult<()>>,
}

/// One artifact row, encoded.
struct Row8 {
    key: Vec<u8>,
    kind: &'static str,
    client_id: String,
    grant_id: Option<String>,
    user_id: Option<String>,
    expires_at: i64,
    revoked_at: Option<i64>,
    payload: String,
}

/// The queue in front of the writer task.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactWriter {
    tx: mpsc::Sender<Pending>,
}

impl ArtifactWriter {
    /// Starts the writer task on the current runtime; it ends when every handle is dropped.
    pub(crate) fn start(pool: AnyPool) -> ArtifactWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx));
        ArtifactWriter { tx }
    }

    pub(crate) async fn insert(&self, a: &Artifact) -> StoreResult<()> {
        let payload =
            serde_json::to_string(&a.payload).map_err(|e| StoreError::Other(Box::new(e)))?;
        let row = Row8 {
            key: a.key.0.to_vec(),
            kind: a.kind.as_str(),
            client_id: a.client_id.clone(),
            grant_id: a.grant_id.clone(),
            user_id: a.user_id.clone(),
            expires_at: a.expires_at.0,
            revoked_at: a.revoked_at.map(|t| t.0),
            payload,
        };
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Unavailable("the artifact writer has stopped".into());
        self.tx
            .send(Pending { row, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match write(&pool, &batch).await {
            Ok(inserted) => {
                let mut answered = HashSet::new();
                for p in batch.drain(..) {
                    // A key queued twice in one batch: the first is the insert, the rest conflict.
                    let ok = inserted.contains(&p.row.key) && answered.insert(p.row.key.clone());
                    let _ = p.reply.send(if ok {
                        Ok(())
                    } else {
                        Err(StoreError::Conflict("artifact".into()))
                    });
                }
            }
            Err(e) => {
                let unavailable = matches!(e, StoreError::Unavailable(_));
                let text = e.to_string();
                for p in batch.drain(..) {
                    let err = if unavailable {
                        StoreError::Unavailable(text.clone().into())
                    } else {
                        StoreError::Other(text.clone().into())
                    };
                    let _ = p.reply.send(Err(err));
                }
            }
        }
    }
}

/// One statement for the whole batch; returns the keys it inserted.
async fn write(pool: &AnyPool, batch: &[Pending]) -> StoreResult<HashSet<Vec<u8>>> {
    let mut sql = String::with_capacity(120 + batch.len() * 40);
    sql.push_str("INSERT INTO artifacts (id, kind, client_id, grant_id, user_id, expires_at, revoked_at, payload) VALUES ");
    for i in 0..batch.len() {
        let b = i * 8;
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${},${},${},${},${},${},${},${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7,
            b + 8
        ));
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
    let mut q = sqlx::query(&sql);
    for p in batch {
        let r = &p.row;
        q = q
            .bind(r.key.clone())
            .bind(r.kind)
            .bind(r.client_id.clone())
            .bind(r.grant_id.clone())
            .bind(r.user_id.clone())
            .bind(r.expires_at)
            .bind(r.revoked_at)
            .bind(r.payload.clone());
    }
    let rows = q.fetch_all(pool).await.map_err(map_err)?;
    rows.iter()
        .map(|row| {
            row.try_get::<Vec<u8>, _>(0)
                .map_err(|e| StoreError::Other(Box::new(e)))
        })
        .collect()
}
