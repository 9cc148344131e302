//! The one `Store` implementation, in SQL that SQLite and PostgreSQL both accept (`$n` parameters in
//! ascending order, `ON CONFLICT DO NOTHING`); what differs lives in `sqlite.rs` / `postgres.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use sqlx::Connection;
use sqlx::Row;
use tessera_core::audit::{AuditEvent, AuditQuery};
use tessera_core::federation::{IdentityProvider, LinkedIdentity};
use tessera_core::model::{
    Api, Artifact, ArtifactKey, Client, Consent, Installation, KeyRecord, Logo, Scope,
    StoredSettings, User,
};
use tessera_core::scheme::AuthScheme;
use tessera_core::store::{
    Change, Consume, Consumed, Failures, Store, StoreError, StoreResult, Table, WithGrant,
};
use tessera_core::usage::UsageCount;
use tessera_core::Timestamp;

use crate::batch::{ArtifactWriter, Marks};
use crate::codec::{
    decode_artifact, decode_artifact_named, decode_consent, decode_doc, decode_event, decode_user,
    encode_record, ArtifactNames, ARTIFACT_COLUMNS,
};
use crate::error::{discard_on_error, map_err, other};
use crate::point::{Inline, PointReads};
use crate::pool::Pool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A store on either dialect: writes go through `writer` (one connection on SQLite), reads
/// through `readers` except lookups of one row by its key, through `points`; artifact inserts
/// are group-committed by `artifacts`.
#[derive(Debug, Clone)]
pub struct SqlStore {
    dialect: Dialect,
    writer: Pool,
    readers: Pool,
    points: PointReads,
    artifacts: ArtifactWriter,
    /// Whether a connection whose transaction the database failed is closed rather than
    /// reused ([`discard_on_error`]): SQLite on disk (in memory, the connection is the database).
    discard_failed: bool,
}

impl SqlStore {
    /// [`Store::consume_artifact`] and [`Store::rotate_artifact`]: group-committed by
    /// `artifacts`; what this call did not consume is read back to tell a replay from a miss.
    async fn consume(
        &self,
        which: Consume<'_>,
        at: Timestamp,
        payload: Option<&serde_json::Value>,
        successor: Option<&Artifact>,
    ) -> StoreResult<Consumed> {
        if let Some(a) = self
            .artifacts
            .consume(which, at, payload, successor)
            .await?
        {
            return Ok(Consumed::First(a));
        }
        // Read through the writer: the consuming transaction is visible to it at once.
        let sql = format!(
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE id = $1 AND kind = $2 AND client_id = $3"
        );
        let row = sqlx::query(&sql)
            .bind(which.key.0.to_vec())
            .bind(which.kind.as_str())
            .bind(which.client_id)
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)?;
        match row.as_ref().map(decode_artifact).transpose()? {
            Some(a) if a.consumed_at.is_some() => Ok(Consumed::Again(a)),
            _ => Ok(Consumed::Missing),
        }
    }

    pub(crate) fn new(
        dialect: Dialect,
        writer: Pool,
        readers: Pool,
        inline: Option<Arc<Inline>>,
        discard_failed: bool,
    ) -> SqlStore {
        let points = PointReads::new(inline, readers.clone());
        let marks = match dialect {
            Dialect::Sqlite => Marks::Anonymous,
            Dialect::Postgres => Marks::Numbered,
        };
        let artifacts = ArtifactWriter::start(writer.clone(), marks, discard_failed);
        SqlStore {
            dialect,
            writer,
            readers,
            points,
            artifacts,
            discard_failed,
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) async fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let result = match self.dialect {
            Dialect::Sqlite => {
                sqlx::migrate!("../../migrations/sqlite")
                    .run(&mut *conn)
                    .await
            }
            Dialect::Postgres => {
                sqlx::migrate!("../../migrations/postgres")
                    .run(&mut *conn)
                    .await
            }
        };
        result.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => map_err(inner),
            other => StoreError::Other(Box::new(other)),
        })
    }

    /// One transaction: raise the version (only from `expected` when given), then every change.
    async fn apply_changes(&self, expected: Option<i64>, changes: &[Change]) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let result: StoreResult<()> = async {
            let mut tx = conn.begin().await.map_err(map_err)?;
        // Writing first takes SQLite's write lock before any read snapshot exists, so a concurrent
        // writer in another process waits (busy_timeout) instead of failing.
        let bumped = match expected {
            None => sqlx::query("UPDATE config_version SET version = version + 1 WHERE id = 1"),
            Some(v) => sqlx::query(
                "UPDATE config_version SET version = version + 1 WHERE id = 1 AND version = $1",
            )
            .bind(v),
        }
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if bumped.rows_affected() == 0 {
            return Err(StoreError::Stale);
        }
        for change in changes {
            match change {
                Change::Create(r) => {
                    let (doc, updated) = encode_record(r)?;
                    let sql = format!(
                        "INSERT INTO {} (id, doc, updated_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                        r.table().name()
                    );
                    let done = sqlx::query(&sql)
                        .bind(r.key())
                        .bind(doc)
                        .bind(updated)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Conflict(what(r.table(), r.key())));
                    }
                }
                Change::Update(r) => {
                    let (doc, updated) = encode_record(r)?;
                    let sql = format!(
                        "UPDATE {} SET doc = $1, updated_at = $2 WHERE id = $3",
                        r.table().name()
                    );
                    let done = sqlx::query(&sql)
                        .bind(doc)
                        .bind(updated)
                        .bind(r.key())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(what(r.table(), r.key())));
                    }
                }
                Change::Delete(table, id) => {
                    if *table == Table::Idps {
                        sqlx::query("DELETE FROM user_identities WHERE idp = $1")
                            .bind(id.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(map_err)?;
                    }
                    let sql = format!("DELETE FROM {} WHERE id = $1", table.name());
                    let done = sqlx::query(&sql)
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(what(*table, id)));
                    }
                }
            }
        }
            tx.commit().await.map_err(map_err)
        }
        .await;
        discard_on_error(&mut conn, result, self.discard_failed)
    }

    async fn get_doc<T: DeserializeOwned>(&self, table: Table, id: &str) -> StoreResult<Option<T>> {
        let sql = format!("SELECT doc FROM {} WHERE id = $1", table.name());
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.points)
            .await
            .map_err(map_err)?;
        row.as_ref().map(decode_doc).transpose()
    }

    async fn list_docs<T: DeserializeOwned>(&self, table: Table) -> StoreResult<Vec<T>> {
        let sql = format!("SELECT doc FROM {} ORDER BY id", table.name());
        let rows = sqlx::query(&sql)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode_doc).collect()
    }
}

/// The user's `email` claim in lower case: the column [`Store::find_users_by_email`] reads.
fn email_of(user: &User) -> Option<String> {
    user.claims
        .get("email")
        .and_then(serde_json::Value::as_str)
        .map(str::to_lowercase)
}

fn what(table: Table, id: &str) -> String {
    format!("{} {id}", table.name())
}

/// [`Store::get_artifact_with_grant`]: the artifact `t`, its grant `g` (columns `g_…`, by the
/// index of grants only, `artifacts_grants`) and that grant's user `u`.
const WITH_GRANT: &str = "SELECT t.id, t.kind, t.client_id, t.grant_id, t.user_id, \
    t.expires_at, t.revoked_at, t.consumed_at, t.payload, \
    g.id AS g_id, g.kind AS g_kind, g.client_id AS g_client_id, g.grant_id AS g_grant_id, \
    g.user_id AS g_user_id, g.expires_at AS g_expires_at, g.revoked_at AS g_revoked_at, \
    g.consumed_at AS g_consumed_at, g.payload AS g_payload, u.doc, u.revision \
    FROM artifacts t \
    LEFT JOIN artifacts g ON g.grant_id = t.grant_id AND g.kind = 'grant' \
    LEFT JOIN users u ON u.id = g.user_id \
    WHERE t.id = $1";

const GRANT_NAMES: ArtifactNames = [
    "g_id",
    "g_kind",
    "g_client_id",
    "g_grant_id",
    "g_user_id",
    "g_expires_at",
    "g_revoked_at",
    "g_consumed_at",
    "g_payload",
];

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .fetch_one(&self.readers)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn config_version(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT version FROM config_version WHERE id = 1")
            .fetch_one(&self.readers)
            .await
            .map_err(map_err)?;
        row.try_get::<i64, _>(0)
            .map_err(|e| StoreError::Other(Box::new(e)))
    }

    async fn apply(&self, changes: &[Change]) -> StoreResult<()> {
        self.apply_changes(None, changes).await
    }

    async fn apply_at(&self, version: i64, changes: &[Change]) -> StoreResult<()> {
        self.apply_changes(Some(version), changes).await
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        self.get_doc(Table::Clients, client_id).await
    }
    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        self.list_docs(Table::Clients).await
    }
    async fn get_api(&self, identifier: &str) -> StoreResult<Option<Api>> {
        self.get_doc(Table::Apis, identifier).await
    }
    async fn list_apis(&self) -> StoreResult<Vec<Api>> {
        self.list_docs(Table::Apis).await
    }
    async fn get_scope(&self, name: &str) -> StoreResult<Option<Scope>> {
        self.get_doc(Table::Scopes, name).await
    }
    async fn list_scopes(&self) -> StoreResult<Vec<Scope>> {
        self.list_docs(Table::Scopes).await
    }
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        self.list_docs(Table::Keys).await
    }

    async fn get_settings(&self) -> StoreResult<Option<StoredSettings>> {
        self.get_doc(Table::Settings, StoredSettings::KEY).await
    }

    async fn installation(&self) -> StoreResult<Option<Installation>> {
        self.get_doc(Table::Settings, Installation::KEY).await
    }

    async fn get_logo(&self, client_id: &str) -> StoreResult<Option<Logo>> {
        self.get_doc(Table::Logos, client_id).await
    }

    async fn list_schemes(&self) -> StoreResult<Vec<AuthScheme>> {
        self.list_docs(Table::Schemes).await
    }

    async fn list_idps(&self) -> StoreResult<Vec<IdentityProvider>> {
        self.list_docs(Table::Idps).await
    }

    async fn link_identity(&self, i: &LinkedIdentity) -> StoreResult<()> {
        let doc = serde_json::to_string(i).map_err(other)?;
        let done = sqlx::query(
            "INSERT INTO user_identities (idp, subject, user_id, doc) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(i.idp.as_str())
        .bind(i.subject.as_str())
        .bind(i.user_id.as_str())
        .bind(doc)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "identity {} at {}",
                i.subject, i.idp
            )));
        }
        Ok(())
    }

    async fn update_identity(&self, i: &LinkedIdentity) -> StoreResult<()> {
        let doc = serde_json::to_string(i).map_err(other)?;
        let done = sqlx::query(
            "UPDATE user_identities SET doc = $1 WHERE idp = $2 AND subject = $3 AND user_id = $4",
        )
        .bind(doc)
        .bind(i.idp.as_str())
        .bind(i.subject.as_str())
        .bind(i.user_id.as_str())
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "identity {} at {}",
                i.subject, i.idp
            )));
        }
        Ok(())
    }

    async fn unlink_identity(&self, idp: &str, subject: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM user_identities WHERE idp = $1 AND subject = $2")
            .bind(idp)
            .bind(subject)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_identity(&self, idp: &str, subject: &str) -> StoreResult<Option<LinkedIdentity>> {
        let row = sqlx::query("SELECT doc FROM user_identities WHERE idp = $1 AND subject = $2")
            .bind(idp)
            .bind(subject)
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)?;
        row.as_ref().map(decode_doc).transpose()
    }

    async fn user_identities(&self, user_id: &str) -> StoreResult<Vec<LinkedIdentity>> {
        let rows =
            sqlx::query("SELECT doc FROM user_identities WHERE user_id = $1 ORDER BY idp, subject")
                .bind(user_id)
                .fetch_all(&self.readers)
                .await
                .map_err(map_err)?;
        rows.iter().map(decode_doc).collect()
    }

    async fn find_users_by_email(&self, email: &str, limit: i64) -> StoreResult<Vec<User>> {
        let rows =
            sqlx::query("SELECT doc, revision FROM users WHERE email = $1 ORDER BY id LIMIT $2")
                .bind(email.to_lowercase())
                .bind(limit)
                .fetch_all(&self.writer)
                .await
                .map_err(map_err)?;
        rows.iter().map(decode_user).collect()
    }

    async fn insert_artifact(&self, a: &Artifact) -> StoreResult<()> {
        self.artifacts.insert(std::slice::from_ref(a)).await
    }

    async fn insert_artifacts(&self, all: &[Artifact]) -> StoreResult<()> {
        self.artifacts.insert(all).await
    }

    async fn get_artifact(&self, key: &ArtifactKey) -> StoreResult<Option<Artifact>> {
        let sql = format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(key.0.to_vec())
            .fetch_optional(&self.points)
            .await
            .map_err(map_err)?;
        row.as_ref().map(decode_artifact).transpose()
    }

    async fn get_artifact_with_grant(&self, key: &ArtifactKey) -> StoreResult<Option<WithGrant>> {
        let row = sqlx::query(WITH_GRANT)
            .bind(key.0.to_vec())
            .fetch_optional(&self.points)
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let grant = match row.try_get::<Option<Vec<u8>>, _>("g_id").map_err(other)? {
            Some(_) => Some(decode_artifact_named(&row, &GRANT_NAMES)?),
            None => None,
        };
        let user = match row.try_get::<Option<String>, _>("doc").map_err(other)? {
            Some(_) => Some(decode_user(&row)?),
            None => None,
        };
        Ok(Some(WithGrant {
            artifact: decode_artifact(&row)?,
            grant,
            user,
        }))
    }

    async fn revoke_artifact(&self, key: &ArtifactKey, at: Timestamp) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE artifacts SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(at.0)
        .bind(key.0.to_vec())
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn consume_artifact(
        &self,
        which: Consume<'_>,
        at: Timestamp,
        payload: Option<&serde_json::Value>,
    ) -> StoreResult<Consumed> {
        self.consume(which, at, payload, None).await
    }

    async fn rotate_artifact(
        &self,
        which: Consume<'_>,
        at: Timestamp,
        payload: Option<&serde_json::Value>,
        successor: &Artifact,
    ) -> StoreResult<Consumed> {
        self.consume(which, at, payload, Some(successor)).await
    }

    async fn revoke_grant(&self, grant_id: &str, at: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE artifacts SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
        )
        .bind(at.0)
        .bind(grant_id)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn artifacts_of(&self, grant_id: &str) -> StoreResult<Vec<Artifact>> {
        let sql =
            format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE grant_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(grant_id)
            .fetch_all(&self.writer)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode_artifact).collect()
    }

    async fn user_artifacts(&self, user_id: &str) -> StoreResult<Vec<Artifact>> {
        let sql =
            format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE user_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode_artifact).collect()
    }

    async fn purge_expired(&self, now: Timestamp, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM artifacts WHERE id IN (SELECT id FROM artifacts WHERE expires_at < $1 LIMIT $2)",
        )
        .bind(now.0)
        .bind(limit)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        let counters = sqlx::query(
            "DELETE FROM failure_counters WHERE id IN (SELECT id FROM failure_counters WHERE expires_at < $1 LIMIT $2)",
        )
        .bind(now.0)
        .bind(limit)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected().max(counters.rows_affected()))
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let doc = serde_json::to_string(user).map_err(other)?;
        let done = sqlx::query(
            "INSERT INTO users (id, username, doc, updated_at, email) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user.id.as_str())
        .bind(user.username.to_lowercase())
        .bind(doc)
        .bind(user.updated_at.0)
        .bind(email_of(user))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("user {}", user.username)));
        }
        Ok(())
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let doc = serde_json::to_string(user).map_err(other)?;
        let taken = sqlx::query("SELECT id FROM users WHERE username = $1 AND id <> $2")
            .bind(user.username.to_lowercase())
            .bind(user.id.as_str())
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!("user {}", user.username)));
        }
        let done = sqlx::query(
            "UPDATE users SET username = $1, doc = $2, updated_at = $3, email = $4, \
             revision = revision + 1 WHERE id = $5 AND revision = $6",
        )
        .bind(user.username.to_lowercase())
        .bind(doc)
        .bind(user.updated_at.0)
        .bind(email_of(user))
        .bind(user.id.as_str())
        .bind(user.revision)
        .execute(&self.writer)
        .await
        .map_err(|e| match map_err(e) {
            // A concurrent rename took the name between the check and the update.
            StoreError::Other(_) => StoreError::Conflict(format!("user {}", user.username)),
            other => other,
        })?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT id FROM users WHERE id = $1")
                .bind(user.id.as_str())
                .fetch_optional(&self.writer)
                .await
                .map_err(map_err)?;
            return Err(match exists {
                Some(_) => StoreError::Stale,
                None => StoreError::NotFound(format!("user {}", user.id)),
            });
        }
        Ok(())
    }

    async fn delete_user(&self, id: &str) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let result: StoreResult<()> = async {
            let mut tx = conn.begin().await.map_err(map_err)?;
            sqlx::query("DELETE FROM consents WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            sqlx::query("DELETE FROM user_identities WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            let done = sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("user {id}")));
            }
            tx.commit().await.map_err(map_err)
        }
        .await;
        discard_on_error(&mut conn, result, self.discard_failed)
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT doc, revision FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.points)
            .await
            .map_err(map_err)?;
        row.as_ref().map(decode_user).transpose()
    }

    async fn find_user(&self, username: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT doc, revision FROM users WHERE username = $1")
            .bind(username.to_lowercase())
            .fetch_optional(&self.points)
            .await
            .map_err(map_err)?;
        row.as_ref().map(decode_user).transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query("SELECT doc, revision FROM users ORDER BY username")
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode_user).collect()
    }

    async fn get_consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<Consent>> {
        let row = sqlx::query(
            "SELECT user_id, client_id, scopes, updated_at FROM consents WHERE user_id = $1 AND client_id = $2",
        )
        .bind(user_id)
        .bind(client_id)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        row.as_ref().map(decode_consent).transpose()
    }

    async fn put_consent(&self, c: &Consent) -> StoreResult<()> {
        let scopes = serde_json::to_string(&c.scopes).map_err(other)?;
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scopes, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
        )
        .bind(c.user_id.as_str())
        .bind(c.client_id.as_str())
        .bind(scopes)
        .bind(c.updated_at.0)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list_consents(&self, user_id: &str) -> StoreResult<Vec<Consent>> {
        let rows = sqlx::query(
            "SELECT user_id, client_id, scopes, updated_at FROM consents WHERE user_id = $1 ORDER BY client_id",
        )
        .bind(user_id)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter().map(decode_consent).collect()
    }

    async fn client_consents(&self, client_id: &str) -> StoreResult<Vec<Consent>> {
        let rows = sqlx::query(
            "SELECT user_id, client_id, scopes, updated_at FROM consents WHERE client_id = $1 ORDER BY user_id",
        )
        .bind(client_id)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter().map(decode_consent).collect()
    }

    async fn purge_events(&self, now: Timestamp, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE expires_at < $1 LIMIT $2)",
        )
        .bind(now.0)
        .bind(limit)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn record_event(&self, e: &AuditEvent, expires_at: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (at, actor, action, target, client_id, detail, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(e.at.0)
        .bind(e.actor.as_str())
        .bind(e.action.as_str())
        .bind(e.target.as_str())
        .bind(e.client_id.as_deref())
        .bind(e.detail.to_string())
        .bind(expires_at.0)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list_events(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        // Each filter is one numbered parameter; absent filters are bound as NULL and match all.
        let action_prefix = q.action.as_deref().filter(|a| a.ends_with('.'));
        let action_exact = q.action.as_deref().filter(|a| !a.ends_with('.'));
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, client_id, detail FROM audit_events \
             WHERE ($1 IS NULL OR actor = $1) \
               AND ($2 IS NULL OR action = $2) \
               AND ($3 IS NULL OR substr(action, 1, length($3)) = $3) \
               AND ($4 IS NULL OR client_id = $4) \
               AND ($5 IS NULL OR at >= $5) \
               AND ($6 IS NULL OR at <= $6) \
               AND ($7 IS NULL OR id < $7) \
             ORDER BY id DESC LIMIT $8",
        )
        .bind(q.actor.as_deref())
        .bind(action_exact)
        .bind(action_prefix)
        .bind(q.client_id.as_deref())
        .bind(q.since.map(|t| t.0))
        .bind(q.until.map(|t| t.0))
        .bind(q.before)
        .bind(q.limit)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter().map(decode_event).collect()
    }

    async fn delete_consent(&self, user_id: &str, client_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_failure(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<i64> {
        // A window that has run out starts over at this failure.
        let row = sqlx::query(
            "INSERT INTO failure_counters (id, failures, window_start, expires_at) VALUES ($1, 1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET \
               failures = CASE WHEN failure_counters.window_start <= $4 THEN 1 ELSE failure_counters.failures + 1 END, \
               window_start = CASE WHEN failure_counters.window_start <= $4 THEN $2 ELSE failure_counters.window_start END, \
               expires_at = CASE WHEN failure_counters.window_start <= $4 THEN $3 ELSE failure_counters.expires_at END \
             RETURNING failures",
        )
        .bind(key)
        .bind(now.0)
        .bind(now.0 + window)
        .bind(now.0 - window)
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        row.try_get::<i64, _>(0).map_err(other)
    }

    async fn failures(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<Failures> {
        let row = sqlx::query(
            "SELECT failures, expires_at FROM failure_counters WHERE id = $1 AND window_start > $2",
        )
        .bind(key)
        .bind(now.0 - window)
        .fetch_optional(&self.points)
        .await
        .map_err(map_err)?;
        match row {
            None => Ok(Failures {
                count: 0,
                until: now,
            }),
            Some(r) => Ok(Failures {
                count: r.try_get::<i64, _>(0).map_err(other)?,
                until: Timestamp(r.try_get::<i64, _>(1).map_err(other)?),
            }),
        }
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM failure_counters WHERE id = $1")
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn add_usage(&self, counts: &[UsageCount], before: i64) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let result: StoreResult<()> = async {
            let mut tx = conn.begin().await.map_err(map_err)?;
        for c in counts {
            sqlx::query(
                "INSERT INTO usage_counts (minute, metric, client_id, count) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (minute, metric, client_id) \
                 DO UPDATE SET count = usage_counts.count + excluded.count",
            )
            .bind(c.minute)
            .bind(c.metric.as_str())
            .bind(c.client_id.as_str())
            .bind(c.count)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        sqlx::query("DELETE FROM usage_counts WHERE minute < $1")
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            tx.commit().await.map_err(map_err)
        }
        .await;
        discard_on_error(&mut conn, result, self.discard_failed)
    }

    async fn usage_since(
        &self,
        since: i64,
        client_id: Option<&str>,
    ) -> StoreResult<Vec<UsageCount>> {
        let rows = sqlx::query(
            "SELECT minute, metric, client_id, count FROM usage_counts \
             WHERE minute >= $1 AND ($2 = '' OR client_id = $2) ORDER BY minute",
        )
        .bind(since)
        .bind(client_id.unwrap_or(""))
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(UsageCount {
                    minute: r.try_get("minute").map_err(other)?,
                    metric: r.try_get("metric").map_err(other)?,
                    client_id: r.try_get("client_id").map_err(other)?,
                    count: r.try_get("count").map_err(other)?,
                })
            })
            .collect()
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: i64,
    ) -> StoreResult<bool> {
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = $3 \
             WHERE leases.holder = $2 OR leases.expires_at <= $4 \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now.0 + ttl)
        .bind(now.0)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(row.is_some())
    }
}
