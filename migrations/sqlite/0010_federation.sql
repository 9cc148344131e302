-- Upstream identity providers, the identities linked to users, and users found by email
-- (account linking by a verified email).
CREATE TABLE identity_providers (id TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE user_identities (
    idp TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (idp, subject)
);
CREATE INDEX user_identities_user ON user_identities (user_id);
ALTER TABLE users ADD COLUMN email TEXT;
UPDATE users SET email = lower(json_extract(doc, '$.claims.email'));
CREATE INDEX users_email ON users (email);
