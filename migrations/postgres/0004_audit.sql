-- The audit log: administrative changes and security events, newest read first, purged after
-- their retention (expires_at).
CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    client_id TEXT,
    detail TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX audit_events_expires_at ON audit_events (expires_at);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_client_id ON audit_events (client_id, id);
CREATE INDEX consents_client_id ON consents (client_id);
