//! Group commit for artifact writes: concurrent inserts and consumes (a refresh token's rotation
//! is both) queue up, and one task writes each batch with multi-row `UPDATE … FROM (VALUES …)`
//! statements for the consumes and multi-row `INSERT … ON CONFLICT DO NOTHING` ones for the
//! inserts, in one transaction when there is more than one statement. On SQLite a batch of
//! rotations only is one query: `BEGIN`, the successors, the consumes and `COMMIT` sent to the
//! connection's thread together, and a batch of inserts only is first one plain `INSERT` (no
//! `RETURNING`), answered by its count of rows. One commit serves a whole batch; each caller is
//! answered only after its rows are committed.

use std::collections::HashSet;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Connection, Row};
use tessera_core::model::Artifact;
use tessera_core::store::{Consume, StoreError, StoreResult};
use tessera_core::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::codec::{decode_artifact, ARTIFACT_COLUMNS};
use crate::error::{discard_on_error, map_err, other};
use crate::pool::Pool;

/// A statement being bound.
type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// Jobs per batch; their rows are written in statements of at most [`CHUNK`] rows.
const MAX_BATCH: usize = 256;
const QUEUE: usize = 8_192;

/// How the writer task writes: its dialect's parameter marks, and whether a connection whose
/// batch the database failed is closed ([`discard_on_error`]).
#[derive(Debug, Clone, Copy)]
struct Writing {
    marks: Marks,
    discard: bool,
}

/// How a dialect marks a statement's parameters. SQLite looks a numbered one up by a scan of
/// every name, for every parameter bound (quadratic in a many-row statement); its anonymous `?`
/// is bound by position, across the statements of one query too. PostgreSQL knows only `$n`,
/// and one statement per query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marks {
    Numbered,
    Anonymous,
}

/// One artifact row, encoded.
struct NewRow {
    key: Vec<u8>,
    kind: &'static str,
    client_id: String,
    grant_id: Option<String>,
    user_id: Option<String>,
    expires_at: i64,
    revoked_at: Option<i64>,
    payload: String,
}

impl NewRow {
    fn of(a: &Artifact) -> StoreResult<NewRow> {
        Ok(NewRow {
            key: a.key.0.to_vec(),
            kind: a.kind.as_str(),
            client_id: a.client_id.clone(),
            grant_id: a.grant_id.clone(),
            user_id: a.user_id.clone(),
            expires_at: a.expires_at.0,
            revoked_at: a.revoked_at.map(|t| t.0),
            payload: serde_json::to_string(&a.payload).map_err(|e| StoreError::Other(e.into()))?,
        })
    }
}

/// An artifact to mark consumed, if it is of this kind and client and not consumed yet.
struct ConsumeRow {
    key: Vec<u8>,
    kind: &'static str,
    client_id: String,
    at: i64,
    /// The payload that replaces the stored one, if any.
    payload: Option<String>,
}

impl ConsumeRow {
    /// Whether `a` is the artifact this row consumes: its key, kind and client.
    fn names(&self, a: &Artifact) -> bool {
        a.key.0[..] == self.key[..] && a.kind.as_str() == self.kind && a.client_id == self.client_id
    }
}

enum Job {
    /// Answered `Ok` when every row was stored.
    Insert {
        rows: Vec<NewRow>,
        reply: oneshot::Sender<StoreResult<()>>,
    },
    /// `Some(artifact as it was)` when this job consumed it (and stored its successor).
    Consume {
        row: ConsumeRow,
        successor: Option<Box<NewRow>>,
        reply: oneshot::Sender<StoreResult<Option<Artifact>>>,
    },
}

/// The queue in front of the writer task.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactWriter {
    tx: mpsc::Sender<Job>,
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the artifact writer has stopped".into())
}

impl ArtifactWriter {
    /// Starts the writer task on the current runtime; it ends when every handle is dropped.
    pub(crate) fn start(pool: Pool, marks: Marks, discard: bool) -> ArtifactWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, Writing { marks, discard }, rx));
        ArtifactWriter { tx }
    }

    /// Stores `all` in one batch: `Conflict` when a key of them was taken.
    pub(crate) async fn insert(&self, all: &[Artifact]) -> StoreResult<()> {
        if all.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        let job = Job::Insert {
            rows: all.iter().map(NewRow::of).collect::<StoreResult<_>>()?,
            reply,
        };
        self.tx.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Consumes `which` at `at` (replacing its payload when `payload` is given) and, only if this
    /// call consumed it, stores `successor` in the same transaction. `None`: not consumed by this
    /// call (missing, another kind or client, or consumed before).
    pub(crate) async fn consume(
        &self,
        which: Consume<'_>,
        at: Timestamp,
        payload: Option<&serde_json::Value>,
        successor: Option<&Artifact>,
    ) -> StoreResult<Option<Artifact>> {
        let payload = payload
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Other(e.into()))?;
        let (reply, answer) = oneshot::channel();
        let job = Job::Consume {
            row: ConsumeRow {
                key: which.key.0.to_vec(),
                kind: which.kind.as_str(),
                client_id: which.client_id.to_owned(),
                at: at.0,
                payload,
            },
            successor: successor.map(NewRow::of).transpose()?.map(Box::new),
            reply,
        };
        self.tx.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(pool: Pool, how: Writing, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let plan = Plan::of(&batch);
        match write(&pool, how, &batch, &plan).await {
            Ok(done) => answer(batch.drain(..), &plan, &done),
            Err(e) => {
                let unavailable = matches!(e, StoreError::Unavailable(_));
                // Each job's error says what the batch's did, without its kind twice.
                let text = match &e {
                    StoreError::Unavailable(inner) | StoreError::Other(inner) => inner.to_string(),
                    other => other.to_string(),
                };
                let err = || {
                    if unavailable {
                        StoreError::Unavailable(text.clone().into())
                    } else {
                        StoreError::Other(text.clone().into())
                    }
                };
                for job in batch.drain(..) {
                    match job {
                        Job::Insert { reply, .. } => {
                            let _ = reply.send(Err(err()));
                        }
                        Job::Consume { reply, .. } => {
                            let _ = reply.send(Err(err()));
                        }
                    }
                }
            }
        }
    }
}

/// Which jobs of a batch consume: the first job naming a key, kind and client; a later one in the
/// same batch loses to it, as it would a moment later. A job naming the key with another kind or
/// client is judged on its own (it consumes nothing), so it cannot cancel the rightful one.
struct Plan {
    first_consume: Vec<bool>,
}

impl Plan {
    fn of(batch: &[Job]) -> Plan {
        let mut seen = HashSet::new();
        Plan {
            first_consume: batch
                .iter()
                .map(|j| match j {
                    Job::Consume { row, .. } => {
                        seen.insert((row.key.as_slice(), row.kind, row.client_id.as_str()))
                    }
                    Job::Insert { .. } => false,
                })
                .collect(),
        }
    }
}

/// What a batch wrote: the artifacts it consumed (as they were) and the keys it inserted.
struct Done {
    consumed: Vec<Artifact>,
    inserted: HashSet<Vec<u8>>,
}

fn answer(jobs: std::vec::Drain<'_, Job>, plan: &Plan, done: &Done) {
    // A key queued twice in one batch: the first is the insert, the rest conflict.
    let mut claimed = HashSet::new();
    let mut stored = |key: &Vec<u8>| done.inserted.contains(key) && claimed.insert(key.clone());
    for (i, job) in jobs.enumerate() {
        match job {
            Job::Insert { rows, reply } => {
                // Every row claims its key, whether or not an earlier one lost.
                let ok = rows.iter().fold(true, |ok, row| stored(&row.key) & ok);
                let _ = reply.send(if ok {
                    Ok(())
                } else {
                    Err(StoreError::Conflict("artifact".into()))
                });
            }
            Job::Consume {
                row,
                successor,
                reply,
            } => {
                let mine = plan.first_consume[i]
                    .then(|| done.consumed.iter().find(|a| row.names(a)))
                    .flatten();
                let result = match (mine, successor) {
                    (None, _) => Ok(None),
                    (Some(a), None) => Ok(Some(a.clone())),
                    (Some(a), Some(s)) => {
                        if stored(&s.key) {
                            Ok(Some(a.clone()))
                        } else {
                            Err(StoreError::Conflict("artifact".into()))
                        }
                    }
                };
                let _ = reply.send(result);
            }
        }
    }
}

/// The batch's statements: the consumes first, then the inserts (with the successors of what was
/// consumed), in one transaction when there is more than one statement.
async fn write(pool: &Pool, how: Writing, batch: &[Job], plan: &Plan) -> StoreResult<Done> {
    let mut consumes: Vec<&ConsumeRow> = batch
        .iter()
        .zip(&plan.first_consume)
        .filter_map(|(j, first)| match j {
            Job::Consume { row, .. } if *first => Some(row),
            _ => None,
        })
        .collect();
    // Rows are locked in key order on every node, so two nodes' batches cannot deadlock.
    consumes.sort_by(|a, b| a.key.cmp(&b.key));
    let mut conn = pool.acquire().await.map_err(map_err)?;
    let written = write_on(&mut conn, how.marks, batch, plan, &consumes).await;
    discard_on_error(&mut conn, written, how.discard)
}

async fn write_on(
    conn: &mut AnyConnection,
    marks: Marks,
    batch: &[Job],
    plan: &Plan,
    consumes: &[&ConsumeRow],
) -> StoreResult<Done> {
    if consumes.is_empty() {
        let rows: Vec<&NewRow> = batch
            .iter()
            .flat_map(|j| match j {
                Job::Insert { rows, .. } => rows.as_slice(),
                Job::Consume { .. } => &[],
            })
            .collect();
        let inserted = if chunks(rows.len()).len() == 1 {
            match insert_new(conn, marks, &rows).await? {
                Some(all) => all,
                None => insert(conn, marks, &rows).await?,
            }
        } else {
            let mut tx = conn.begin().await.map_err(map_err)?;
            let inserted = insert(&mut tx, marks, &rows).await?;
            tx.commit().await.map_err(map_err)?;
            inserted
        };
        return Ok(Done {
            consumed: Vec::new(),
            inserted,
        });
    }
    if marks == Marks::Anonymous && consumes.len() <= CHUNK {
        if let Some(successors) = rotations_only(batch, plan) {
            return rotate(conn, consumes, &successors).await;
        }
    }
    if !inserts_after_consumes(batch) && chunks(consumes.len()).len() == 1 {
        // One statement, atomic on its own: a transaction would only add BEGIN and COMMIT.
        return Ok(Done {
            consumed: consume(conn, marks, consumes).await?,
            inserted: HashSet::new(),
        });
    }
    let mut tx = conn.begin().await.map_err(map_err)?;
    let consumed = consume(&mut tx, marks, consumes).await?;
    let rows: Vec<&NewRow> = batch
        .iter()
        .zip(&plan.first_consume)
        .flat_map(|(j, first)| match j {
            Job::Insert { rows, .. } => rows.as_slice(),
            Job::Consume {
                row,
                successor: Some(s),
                ..
            } if *first && consumed.iter().any(|a| row.names(a)) => {
                std::slice::from_ref(s.as_ref())
            }
            Job::Consume { .. } => &[],
        })
        .collect();
    let inserted = insert(&mut tx, marks, &rows).await?;
    tx.commit().await.map_err(map_err)?;
    Ok(Done { consumed, inserted })
}

/// Whether a batch with consumes may insert too: an insert job, or a successor to store.
fn inserts_after_consumes(batch: &[Job]) -> bool {
    batch.iter().any(|j| {
        matches!(
            j,
            Job::Insert { .. }
                | Job::Consume {
                    successor: Some(_),
                    ..
                }
        )
    })
}

/// The successors of a batch whose every job consumes and stores a successor (a refresh token's
/// rotation), each with the row that consumes its predecessor; `None` for any other batch.
fn rotations_only<'b>(batch: &'b [Job], plan: &Plan) -> Option<Vec<(&'b ConsumeRow, &'b NewRow)>> {
    let mut successors = Vec::with_capacity(batch.len());
    for (job, first) in batch.iter().zip(&plan.first_consume) {
        match job {
            Job::Consume {
                row,
                successor: Some(s),
                ..
            } => {
                if *first {
                    successors.push((row, s.as_ref()));
                }
            }
            _ => return None,
        }
    }
    Some(successors)
}

/// A batch of rotations on SQLite as one query, one round trip to the connection's thread instead
/// of four (BEGIN, the consumes, the inserts, COMMIT): in one transaction, the successors whose
/// predecessor is there to consume (its key, kind and client, not consumed), then the consumes.
/// SQLite has one writer, so nothing changes between the two statements: a successor is stored
/// exactly when the consume after it takes its predecessor, as if the inserts followed the
/// consumes. The rows come back decoded after `COMMIT`, as from the autocommit consume below:
/// a stored row the server cannot read fails the batch after it was written. The writer task
/// is never dropped mid-batch (only with the runtime); if it were, the `BEGIN` sent here would
/// stay open on the connection, which sqlx does not know of. Several statements in one prepared
/// query are sqlx-sqlite's, a behaviour sqlx 0.8 calls deprecated (launchbadge/sqlx#3108):
/// sqlx-core is pinned, and a version without it fails the store's rotation tests.
///
/// Both statements are `OR IGNORE`. In a transaction, SQLite keeps a statement journal (a copy
/// of every page a statement changes) for a statement that writes several rows and could stop
/// part-way on a constraint (a NULL in a NOT NULL column aborts by default), to undo that
/// statement alone; here that copying was about a sixth of the writer's time under refresh
/// grants. These statements bind no NULL to a NOT NULL column, and a key already stored is
/// skipped as `ON CONFLICT DO NOTHING` would: with every constraint's answer IGNORE, nothing
/// can stop them part-way and SQLite keeps no copy. Any other failure (disk full, I/O) ends the
/// whole transaction, as it fails the whole batch.
async fn rotate(
    conn: &mut AnyConnection,
    consumes: &[&ConsumeRow],
    successors: &[(&ConsumeRow, &NewRow)],
) -> StoreResult<Done> {
    let mut sql = String::with_capacity(600 + successors.len() * 60);
    sql.push_str("BEGIN; INSERT OR IGNORE INTO artifacts ");
    sql.push_str(INSERT_COLUMNS);
    sql.push_str(
        "SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, \
         v.column8 FROM (VALUES ",
    );
    placeholders(&mut sql, Marks::Anonymous, successors.len(), 11);
    sql.push_str(
        ") AS v WHERE EXISTS (SELECT 1 FROM artifacts p WHERE p.id = v.column9 \
         AND p.kind = v.column10 AND p.client_id = v.column11 AND p.consumed_at IS NULL) \
         RETURNING id; UPDATE OR IGNORE ",
    );
    consume_statement(&mut sql, Marks::Anonymous, consumes.len());
    sql.push_str("; COMMIT");
    let mut q = sqlx::query(&sql);
    for (before, s) in successors {
        q = bind_new(q, s)
            .bind(before.key.clone())
            .bind(before.kind)
            .bind(before.client_id.clone());
    }
    for r in consumes {
        q = bind_consume(q, r);
    }
    let found = match q.fetch_all(&mut *conn).await {
        Ok(found) => found,
        Err(e) => {
            // The transaction may be open still (SQLite ends it by itself only on some errors).
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(map_err(e));
        }
    };
    // The inserts return one column (the key); the consumes, the artifact's.
    let mut done = Done {
        consumed: Vec::with_capacity(consumes.len()),
        inserted: HashSet::with_capacity(successors.len()),
    };
    for row in &found {
        if row.len() == 1 {
            done.inserted.insert(inserted_key(row)?);
        } else {
            done.consumed.push(consumed(row)?);
        }
    }
    Ok(done)
}

/// Rows per statement at most: each row count is a statement shape the connection prepares once
/// and keeps (sqlx keeps the 100 used last on a connection); 32 insert, 32 consume and, on
/// SQLite, 32 rotation shapes, beside the writer's other statements, where a shape per batch
/// size up to 256 was prepared anew whenever a batch had an unseen size. Under a load of every
/// kind a shape seldom used may be dropped and prepared again.
const CHUNK: usize = 32;

/// `n` rows as statements of [`CHUNK`] rows and one of the rest (75 = 32 + 32 + 11).
fn chunks(n: usize) -> Vec<std::ops::Range<usize>> {
    (0..n)
        .step_by(CHUNK)
        .map(|start| start..(start + CHUNK).min(n))
        .collect()
}

/// `(${n+1},…,${n+width})` (or `(?,…,?)`) for each of `count` rows, comma-separated.
fn placeholders(sql: &mut String, marks: Marks, count: usize, width: usize) {
    for i in 0..count {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        for j in 0..width {
            if j > 0 {
                sql.push(',');
            }
            match marks {
                Marks::Numbered => {
                    sql.push('$');
                    sql.push_str(&(i * width + j + 1).to_string());
                }
                Marks::Anonymous => sql.push('?'),
            }
        }
        sql.push(')');
    }
}

/// The consumes, a statement per [`chunks`] chunk; returns what they consumed, as it was before.
async fn consume(
    conn: &mut AnyConnection,
    marks: Marks,
    rows: &[&ConsumeRow],
) -> StoreResult<Vec<Artifact>> {
    let mut consumed = Vec::with_capacity(rows.len());
    for chunk in chunks(rows.len()) {
        consumed.extend(consume_chunk(conn, marks, &rows[chunk]).await?);
    }
    Ok(consumed)
}

async fn consume_chunk(
    conn: &mut AnyConnection,
    marks: Marks,
    rows: &[&ConsumeRow],
) -> StoreResult<Vec<Artifact>> {
    let mut sql = String::with_capacity(300 + rows.len() * 30);
    sql.push_str("UPDATE ");
    consume_statement(&mut sql, marks, rows.len());
    let mut q = sqlx::query(&sql);
    for r in rows {
        q = bind_consume(q, r);
    }
    let found = q.fetch_all(&mut *conn).await.map_err(map_err)?;
    found.iter().map(consumed).collect()
}

/// What follows `UPDATE` (or `UPDATE OR IGNORE`) in the `UPDATE … RETURNING` of `count`
/// consumes, each bound by [`bind_consume`]: marks each artifact named by key, kind and client
/// consumed, if it was not, and returns it.
fn consume_statement(sql: &mut String, marks: Marks, count: usize) {
    sql.push_str(
        "artifacts SET consumed_at = v.column4, payload = COALESCE(v.column5, payload) \
         FROM (VALUES ",
    );
    placeholders(sql, marks, count, 5);
    sql.push_str(
        ") AS v WHERE artifacts.id = v.column1 AND artifacts.kind = v.column2 \
         AND artifacts.client_id = v.column3 AND artifacts.consumed_at IS NULL RETURNING ",
    );
    sql.push_str(ARTIFACT_COLUMNS);
}

fn bind_consume<'q>(q: AnyQuery<'q>, r: &ConsumeRow) -> AnyQuery<'q> {
    q.bind(r.key.clone())
        .bind(r.kind)
        .bind(r.client_id.clone())
        .bind(r.at)
        .bind(r.payload.clone())
}

/// A consumed artifact as it was before (its payload the one stored now).
fn consumed(row: &AnyRow) -> StoreResult<Artifact> {
    let mut a = decode_artifact(row)?;
    a.consumed_at = None;
    Ok(a)
}

/// The inserts, a statement per [`chunks`] chunk; returns the keys they inserted.
async fn insert(
    conn: &mut AnyConnection,
    marks: Marks,
    rows: &[&NewRow],
) -> StoreResult<HashSet<Vec<u8>>> {
    let mut inserted = HashSet::with_capacity(rows.len());
    for chunk in chunks(rows.len()) {
        inserted.extend(insert_chunk(conn, marks, &rows[chunk]).await?);
    }
    Ok(inserted)
}

async fn insert_chunk(
    conn: &mut AnyConnection,
    marks: Marks,
    rows: &[&NewRow],
) -> StoreResult<Vec<Vec<u8>>> {
    let mut sql = insert_into(marks, rows.len());
    sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
    let found = bind_rows(sqlx::query(&sql), rows)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
    found.iter().map(inserted_key).collect()
}

/// A batch's inserts as one plain statement on SQLite, outside any transaction: the keys of
/// `rows` when it stored them all, `None` when a key was taken (the statement then stored
/// nothing, and [`insert`] finds out which). `RETURNING` would tell which keys went in, but
/// sqlx's SQLite connection hands each returned row to the writer task on its own, a thread
/// wake-up each; a key taken is rare (a replayed `jti`), so the batch is answered by one count
/// instead. Alone in its transaction the statement keeps no statement journal: a key taken
/// aborts it, and the transaction with it, before anything is committed. PostgreSQL: `None` at
/// once (it sends the returned rows together, and would log each failed statement).
async fn insert_new(
    conn: &mut AnyConnection,
    marks: Marks,
    rows: &[&NewRow],
) -> StoreResult<Option<HashSet<Vec<u8>>>> {
    if marks != Marks::Anonymous {
        return Ok(None);
    }
    let sql = insert_into(marks, rows.len());
    match bind_rows(sqlx::query(&sql), rows).execute(&mut *conn).await {
        Ok(done) if done.rows_affected() == rows.len() as u64 => {
            Ok(Some(rows.iter().map(|r| r.key.clone()).collect()))
        }
        Ok(done) => Err(StoreError::Other(
            format!(
                "an insert of {} artifacts stored {}",
                rows.len(),
                done.rows_affected()
            )
            .into(),
        )),
        Err(sqlx::Error::Database(e)) if e.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            Ok(None)
        }
        Err(e) => Err(map_err(e)),
    }
}

/// The key an insert's `RETURNING id` gave back.
fn inserted_key(row: &AnyRow) -> StoreResult<Vec<u8>> {
    row.try_get::<Vec<u8>, _>(0).map_err(other)
}

/// The columns an insert names, in the order [`bind_new`] binds them.
const INSERT_COLUMNS: &str =
    "(id, kind, client_id, grant_id, user_id, expires_at, revoked_at, payload) ";

/// `INSERT INTO artifacts (…) VALUES (…), …` for `count` rows, each bound by [`bind_new`].
fn insert_into(marks: Marks, count: usize) -> String {
    let mut sql = String::with_capacity(120 + count * 40);
    sql.push_str("INSERT INTO artifacts ");
    sql.push_str(INSERT_COLUMNS);
    sql.push_str("VALUES ");
    placeholders(&mut sql, marks, count, 8);
    sql
}

fn bind_rows<'q>(q: AnyQuery<'q>, rows: &[&NewRow]) -> AnyQuery<'q> {
    rows.iter().fold(q, |q, r| bind_new(q, r))
}

fn bind_new<'q>(q: AnyQuery<'q>, r: &NewRow) -> AnyQuery<'q> {
    q.bind(r.key.clone())
        .bind(r.kind)
        .bind(r.client_id.clone())
        .bind(r.grant_id.clone())
        .bind(r.user_id.clone())
        .bind(r.expires_at)
        .bind(r.revoked_at)
        .bind(r.payload.clone())
}

#[cfg(test)]
mod tests {
    use super::{chunks, inserts_after_consumes, ConsumeRow, Job, NewRow};

    fn row(key: u8) -> NewRow {
        NewRow {
            key: vec![key],
            kind: "refresh_token",
            client_id: "c".into(),
            grant_id: None,
            user_id: None,
            expires_at: 1,
            revoked_at: None,
            payload: "{}".into(),
        }
    }

    fn consume(key: u8, successor: Option<Box<NewRow>>) -> Job {
        Job::Consume {
            row: ConsumeRow {
                key: vec![key],
                kind: "refresh_token",
                client_id: "c".into(),
                at: 1,
                payload: None,
            },
            successor,
            reply: tokio::sync::oneshot::channel().0,
        }
    }

    #[test]
    fn only_consumes_without_successors_write_nothing_after_them() {
        assert!(!inserts_after_consumes(&[
            consume(1, None),
            consume(2, None)
        ]));
        assert!(inserts_after_consumes(&[
            consume(1, None),
            consume(2, Some(Box::new(row(3))))
        ]));
        let insert = Job::Insert {
            rows: vec![row(4)],
            reply: tokio::sync::oneshot::channel().0,
        };
        assert!(inserts_after_consumes(&[consume(1, None), insert]));
    }

    #[test]
    fn batches_split_into_statements_of_at_most_32_rows() {
        assert_eq!(chunks(0), vec![]);
        assert_eq!(chunks(1), vec![0..1]);
        assert_eq!(chunks(32), vec![0..32]);
        assert_eq!(chunks(75), vec![0..32, 32..64, 64..75]);
        for n in 0..600 {
            let c = chunks(n);
            assert_eq!(c.iter().map(|r| r.len()).sum::<usize>(), n);
            assert!(c.iter().all(|r| !r.is_empty() && r.len() <= 32));
        }
    }
}
