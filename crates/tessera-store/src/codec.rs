//! Rows <-> core records: configuration records as JSON documents, artifacts as columns.

use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::Row;
use tessera_core::audit::AuditEvent;
use tessera_core::model::{Artifact, ArtifactKey, ArtifactKind, Consent, User};
use tessera_core::store::{Record, StoreError};
use tessera_core::Timestamp;

use crate::error::other;

pub(crate) fn encode_record(r: &Record) -> Result<(String, i64), StoreError> {
    let (doc, updated) = match r {
        Record::Client(c) => (serde_json::to_string(c), c.updated_at.0),
        Record::Api(a) => (serde_json::to_string(a), a.updated_at.0),
        Record::Scope(s) => (serde_json::to_string(s), s.updated_at.0),
        Record::Key(k) => (serde_json::to_string(k), k.created_at.0),
        Record::Settings(s) => (serde_json::to_string(s), s.updated_at.0),
        Record::Installation(i) => (serde_json::to_string(i), i.updated_at.0),
        Record::Logo(l) => (serde_json::to_string(l), l.updated_at.0),
        Record::Scheme(x) => (serde_json::to_string(x), x.updated_at.0),
        Record::Idp(x) => (serde_json::to_string(x), x.updated_at.0),
    };
    Ok((doc.map_err(other)?, updated))
}

pub(crate) fn decode_doc<T: DeserializeOwned>(row: &AnyRow) -> Result<T, StoreError> {
    let doc: String = row.try_get("doc").map_err(other)?;
    serde_json::from_str(&doc).map_err(other)
}

/// A user: the document, with the revision the store keeps beside it.
pub(crate) fn decode_user(row: &AnyRow) -> Result<User, StoreError> {
    let mut user: User = decode_doc(row)?;
    user.revision = row.try_get("revision").map_err(other)?;
    Ok(user)
}

pub(crate) fn kind_from_str(s: &str) -> Result<ArtifactKind, StoreError> {
    ArtifactKind::parse(s)
        .ok_or_else(|| StoreError::Other(format!("unknown artifact kind {s}").into()))
}

/// The columns [`decode_artifact`] reads, for SELECT and RETURNING lists.
pub(crate) const ARTIFACT_COLUMNS: &str =
    "id, kind, client_id, grant_id, user_id, expires_at, revoked_at, consumed_at, payload";

pub(crate) fn decode_consent(row: &AnyRow) -> Result<Consent, StoreError> {
    let scopes: String = row.try_get("scopes").map_err(other)?;
    Ok(Consent {
        user_id: row.try_get("user_id").map_err(other)?,
        client_id: row.try_get("client_id").map_err(other)?,
        scopes: serde_json::from_str(&scopes).map_err(other)?,
        updated_at: Timestamp(row.try_get("updated_at").map_err(other)?),
    })
}

pub(crate) fn decode_event(row: &AnyRow) -> Result<AuditEvent, StoreError> {
    let detail: String = row.try_get("detail").map_err(other)?;
    Ok(AuditEvent {
        id: row.try_get("id").map_err(other)?,
        at: Timestamp(row.try_get("at").map_err(other)?),
        actor: row.try_get("actor").map_err(other)?,
        action: row.try_get("action").map_err(other)?,
        target: row.try_get("target").map_err(other)?,
        client_id: row.try_get("client_id").map_err(other)?,
        detail: serde_json::from_str(&detail).map_err(other)?,
    })
}

/// The names [`decode_artifact_named`] reads an artifact's columns by, in
/// [`ARTIFACT_COLUMNS`]' order.
pub(crate) type ArtifactNames = [&'static str; 9];

const PLAIN: ArtifactNames = [
    "id",
    "kind",
    "client_id",
    "grant_id",
    "user_id",
    "expires_at",
    "revoked_at",
    "consumed_at",
    "payload",
];

pub(crate) fn decode_artifact(row: &AnyRow) -> Result<Artifact, StoreError> {
    decode_artifact_named(row, &PLAIN)
}

/// The artifact in `row` under the column names `n` (a row holding two artifacts names one
/// of them otherwise).
pub(crate) fn decode_artifact_named(
    row: &AnyRow,
    n: &ArtifactNames,
) -> Result<Artifact, StoreError> {
    let [id, kind, client_id, grant_id, user_id, expires_at, revoked_at, consumed_at, payload] = *n;
    let key: Vec<u8> = row.try_get(id).map_err(other)?;
    let kind: String = row.try_get(kind).map_err(other)?;
    let payload: String = row.try_get(payload).map_err(other)?;
    Ok(Artifact {
        key: ArtifactKey(
            key.try_into()
                .map_err(|_| StoreError::Other("artifact key is not 40 bytes".into()))?,
        ),
        kind: kind_from_str(&kind)?,
        client_id: row.try_get(client_id).map_err(other)?,
        grant_id: row.try_get(grant_id).map_err(other)?,
        user_id: row.try_get(user_id).map_err(other)?,
        expires_at: Timestamp(row.try_get(expires_at).map_err(other)?),
        revoked_at: row
            .try_get::<Option<i64>, _>(revoked_at)
            .map_err(other)?
            .map(Timestamp),
        consumed_at: row
            .try_get::<Option<i64>, _>(consumed_at)
            .map_err(other)?
            .map(Timestamp),
        payload: serde_json::from_str(&payload).map_err(other)?,
    })
}
