-- Users, consents, single-use artifacts and failure counters (browser sign-in).
ALTER TABLE artifacts ADD COLUMN consumed_at BIGINT;

-- One JSON document per user; `username` is the case-folded unique login name.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The scopes a user granted an application.
CREATE TABLE consents (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Failed sign-ins per account and per address, in fixed windows.
CREATE TABLE failure_counters (
    id TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX failure_counters_expires_at ON failure_counters (expires_at);
