-- Settings administrators change at runtime (default lifetimes of new applications): one JSON
-- document, written with the configuration version like every configuration record.
CREATE TABLE settings (id TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at BIGINT NOT NULL);
