//! `trait Store`: the only I/O boundary of the protocol (DESIGN §2). Two real implementations live in
//! `tessera-store` (SQLite, PostgreSQL); both pass one contract suite.

use async_trait::async_trait;

use crate::audit::{AuditEvent, AuditQuery};
use crate::clock::Timestamp;
use crate::error::Error;
use crate::federation::{IdentityProvider, LinkedIdentity};
use crate::model::{
    Api, Artifact, ArtifactKey, Client, Consent, Installation, KeyRecord, Logo, Scope,
    StoredSettings, User,
};
use crate::scheme::AuthScheme;
use crate::usage::UsageCount;

/// A configuration record: one row of a typed table. Records travel only on the administrative
/// path, a few at a time, so the size of the client variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Client(Client),
    Api(Api),
    Scope(Scope),
    Key(KeyRecord),
    Settings(StoredSettings),
    Installation(Installation),
    Logo(Logo),
    Scheme(AuthScheme),
    Idp(IdentityProvider),
}

/// Which typed table a record lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Clients,
    Apis,
    Scopes,
    Keys,
    Settings,
    Logos,
    Schemes,
    Idps,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Clients => "clients",
            Table::Apis => "apis",
            Table::Scopes => "scopes",
            Table::Keys => "signing_keys",
            Table::Settings => "settings",
            Table::Logos => "logos",
            Table::Schemes => "auth_schemes",
            Table::Idps => "identity_providers",
        }
    }
}

impl Record {
    pub fn table(&self) -> Table {
        match self {
            Record::Client(_) => Table::Clients,
            Record::Api(_) => Table::Apis,
            Record::Scope(_) => Table::Scopes,
            Record::Key(_) => Table::Keys,
            Record::Settings(_) | Record::Installation(_) => Table::Settings,
            Record::Logo(_) => Table::Logos,
            Record::Scheme(_) => Table::Schemes,
            Record::Idp(_) => Table::Idps,
        }
    }
    pub fn key(&self) -> &str {
        match self {
            Record::Client(c) => &c.client_id,
            Record::Api(a) => &a.identifier,
            Record::Scope(s) => &s.name,
            Record::Key(k) => &k.kid,
            Record::Settings(_) => StoredSettings::KEY,
            Record::Installation(_) => Installation::KEY,
            Record::Logo(l) => &l.client_id,
            Record::Scheme(s) => &s.name,
            Record::Idp(i) => &i.name,
        }
    }
}

/// One step of an atomic configuration change.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Fails with [`StoreError::Conflict`] when the key exists.
    Create(Record),
    /// Fails with [`StoreError::NotFound`] when the key does not exist.
    Update(Record),
    /// Fails with [`StoreError::NotFound`] when the key does not exist.
    Delete(Table, String),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    /// [`Store::apply_at`] found another version than expected: someone else changed the configuration.
    #[error("the configuration changed concurrently")]
    Stale,
    #[error("store unavailable: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    #[error("store error: {0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::Unavailable(_) => Error::unavailable(e),
            _ => Error::server(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The artifact [`Store::consume_artifact`] consumes: its key, and the kind and client it must
/// have (an artifact of another kind or client is left alone and reported missing).
#[derive(Debug, Clone, Copy)]
pub struct Consume<'a> {
    pub key: &'a ArtifactKey,
    pub kind: crate::model::ArtifactKind,
    pub client_id: &'a str,
}

/// What [`Store::consume_artifact`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Consumed {
    /// This call consumed it; the artifact as it was before.
    First(Artifact),
    /// It had been consumed before (a replay); the artifact as stored.
    Again(Artifact),
    Missing,
}

/// What [`Store::get_artifact_with_grant`] read: an artifact, the grant it belongs to and that
/// grant's user, as one read sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct WithGrant {
    pub artifact: Artifact,
    /// The artifact of kind grant whose `grant_id` is the artifact's, if there is one.
    pub grant: Option<Artifact>,
    /// The user that grant names ([`Artifact::user_id`]), if it exists.
    pub user: Option<User>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Readiness: the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// A counter every [`Store::apply`] raises; caches compare it to notice changes made elsewhere.
    async fn config_version(&self) -> StoreResult<i64>;

    /// Applies all changes in one transaction, or none of them.
    async fn apply(&self, changes: &[Change]) -> StoreResult<()>;

    /// [`Store::apply`], only if the configuration is still at `version` ([`StoreError::Stale`]
    /// otherwise): optimistic concurrency for changes computed from what was read at `version`.
    async fn apply_at(&self, version: i64, changes: &[Change]) -> StoreResult<()>;

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<Client>>;
    async fn list_clients(&self) -> StoreResult<Vec<Client>>;
    async fn get_api(&self, identifier: &str) -> StoreResult<Option<Api>>;
    async fn list_apis(&self) -> StoreResult<Vec<Api>>;
    async fn get_scope(&self, name: &str) -> StoreResult<Option<Scope>>;
    async fn list_scopes(&self) -> StoreResult<Vec<Scope>>;
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>>;
    /// The settings administrators changed at runtime, if any.
    async fn get_settings(&self) -> StoreResult<Option<StoredSettings>>;
    /// What the database was set up for, once recorded.
    async fn installation(&self) -> StoreResult<Option<Installation>>;
    /// An application's logo; deleting the client deletes it too.
    async fn get_logo(&self, client_id: &str) -> StoreResult<Option<Logo>>;
    async fn list_schemes(&self) -> StoreResult<Vec<AuthScheme>>;
    /// Upstream identity providers; deleting one (a [`Change::Delete`] of [`Table::Idps`])
    /// unlinks every identity of it in the same transaction.
    async fn list_idps(&self) -> StoreResult<Vec<IdentityProvider>>;

    /// Links an identity to its user; [`StoreError::Conflict`] when the identity (provider and
    /// subject) is linked already, to anyone.
    async fn link_identity(&self, identity: &LinkedIdentity) -> StoreResult<()>;
    /// Replaces the record of an identity linked to `identity.user_id`; [`StoreError::NotFound`]
    /// when it is not linked to that user.
    async fn update_identity(&self, identity: &LinkedIdentity) -> StoreResult<()>;
    /// True when the identity was linked and now is not.
    async fn unlink_identity(&self, idp: &str, subject: &str) -> StoreResult<bool>;
    async fn find_identity(&self, idp: &str, subject: &str) -> StoreResult<Option<LinkedIdentity>>;
    /// Every identity linked to a user (deleting the user unlinks them).
    async fn user_identities(&self, user_id: &str) -> StoreResult<Vec<LinkedIdentity>>;
    /// Up to `limit` users whose `email` claim is `email`, compared case-insensitively.
    async fn find_users_by_email(&self, email: &str, limit: i64) -> StoreResult<Vec<User>>;

    /// Stores a new artifact; its key is unique ([`StoreError::Conflict`] otherwise).
    async fn insert_artifact(&self, artifact: &Artifact) -> StoreResult<()>;
    /// Stores new artifacts in one write (one commit for all): each whose key is free;
    /// [`StoreError::Conflict`] when any key was taken (the others are stored).
    async fn insert_artifacts(&self, artifacts: &[Artifact]) -> StoreResult<()>;
    /// The artifact with this key, expired or not.
    async fn get_artifact(&self, key: &ArtifactKey) -> StoreResult<Option<Artifact>>;
    /// [`Store::get_artifact`] with the grant it belongs to and that grant's user, in one read
    /// (a refresh token checks all three: one round trip instead of three).
    async fn get_artifact_with_grant(&self, key: &ArtifactKey) -> StoreResult<Option<WithGrant>>;
    /// Marks an artifact revoked; true when this call revoked it.
    async fn revoke_artifact(&self, key: &ArtifactKey, at: Timestamp) -> StoreResult<bool>;
    /// Marks an artifact consumed exactly once, in one conditional update; the first caller may
    /// also replace its payload (a rotated refresh token keeps its successor for retries).
    async fn consume_artifact(
        &self,
        which: Consume<'_>,
        at: Timestamp,
        payload: Option<&serde_json::Value>,
    ) -> StoreResult<Consumed>;
    /// [`Store::consume_artifact`] that, only when this call consumed `which`, also stores
    /// `successor` in the same write: a refresh token's rotation, one commit, and never a
    /// successor beside a predecessor someone else consumed. [`StoreError::Conflict`] when the
    /// successor's key exists.
    async fn rotate_artifact(
        &self,
        which: Consume<'_>,
        at: Timestamp,
        payload: Option<&serde_json::Value>,
        successor: &Artifact,
    ) -> StoreResult<Consumed>;
    /// Revokes every artifact of a grant; returns how many this call revoked.
    async fn revoke_grant(&self, grant_id: &str, at: Timestamp) -> StoreResult<u64>;
    /// Every artifact whose `grant_id` is `grant_id` (a session's grants hang off its sid).
    async fn artifacts_of(&self, grant_id: &str) -> StoreResult<Vec<Artifact>>;
    /// Every artifact that belongs to `user_id` ([`Artifact::user_id`]: sessions and grants),
    /// expired or not, in key order (keys start with their creation time).
    async fn user_artifacts(&self, user_id: &str) -> StoreResult<Vec<Artifact>>;
    /// Deletes up to `limit` artifacts that expired before `now`, and up to `limit` stale throttle
    /// counters; returns the larger of the two counts (a caller repeats while it equals `limit`).
    async fn purge_expired(&self, now: Timestamp, limit: i64) -> StoreResult<u64>;

    /// Fails with [`StoreError::Conflict`] when the id or the (case-folded) username exists.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    /// Writes the user only if the stored record is still at `user.revision` (the one it was read
    /// at), else [`StoreError::Stale`]; the stored revision goes one up. Fails with
    /// [`StoreError::NotFound`] or, for a taken username, [`StoreError::Conflict`].
    async fn update_user(&self, user: &User) -> StoreResult<()>;
    /// Deletes the user and their consents.
    async fn delete_user(&self, id: &str) -> StoreResult<()>;
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>>;
    /// By username, case-insensitively.
    async fn find_user(&self, username: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;

    async fn get_consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<Consent>>;
    /// Creates or replaces the consent of a user for a client.
    async fn put_consent(&self, consent: &Consent) -> StoreResult<()>;
    async fn list_consents(&self, user_id: &str) -> StoreResult<Vec<Consent>>;
    /// Every user's consent for one client, by user id.
    async fn client_consents(&self, client_id: &str) -> StoreResult<Vec<Consent>>;
    /// True when a consent was deleted.
    async fn delete_consent(&self, user_id: &str, client_id: &str) -> StoreResult<bool>;

    /// Appends an event to the audit log, kept until `expires_at` (then purged).
    async fn record_event(&self, event: &AuditEvent, expires_at: Timestamp) -> StoreResult<()>;
    /// Deletes up to `limit` audit events past their retention; returns how many.
    async fn purge_events(&self, now: Timestamp, limit: i64) -> StoreResult<u64>;
    /// Events matching `query`, newest (highest id) first, at most `query.limit`.
    async fn list_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;

    /// Counts a failure under `key` in a fixed window of `window` seconds starting at the first
    /// failure; returns the count including this one.
    async fn count_failure(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<i64>;
    /// Failures under `key` in its current window, and when that window ends.
    async fn failures(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<Failures>;
    async fn clear_failures(&self, key: &str) -> StoreResult<()>;
    /// Adds usage counts ([`crate::usage`]) to the stored ones (one transaction), and deletes
    /// the counts of minutes before `before`.
    async fn add_usage(&self, counts: &[UsageCount], before: i64) -> StoreResult<()>;
    /// The usage counts of minutes from `since` on, of one application or of all.
    async fn usage_since(
        &self,
        since: i64,
        client_id: Option<&str>,
    ) -> StoreResult<Vec<UsageCount>>;

    /// Takes or renews the lease `name` for `holder` until `now + ttl`: true when `holder` has it
    /// (it was free, expired, or already this holder's). One node at a time runs a cluster-wide job.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: i64,
    ) -> StoreResult<bool>;
}

/// What [`Store::failures`] found: the count in the current window and its end (`count` 0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub count: i64,
    pub until: Timestamp,
}
