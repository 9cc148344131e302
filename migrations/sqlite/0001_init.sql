-- Tessera schema, SQLite dialect. Immutable once merged: add a new file for every change.
CREATE TABLE config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

-- Typed configuration tables: one JSON document per record, keyed by its natural id.
CREATE TABLE clients (id TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE apis (id TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE scopes (id TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE signing_keys (id TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at BIGINT NOT NULL);

-- Short-lived artifacts keyed by a time-ordered prefix and the SHA-256 of their secret handle.
CREATE TABLE artifacts (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    grant_id TEXT,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    payload TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX artifacts_expires_at ON artifacts (expires_at);
CREATE INDEX artifacts_grant_id ON artifacts (grant_id) WHERE grant_id IS NOT NULL;
