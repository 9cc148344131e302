-- Application logos (seed 000: shown in the applications list and on the authentication pages):
-- one image per application, written with the configuration version, deleted with its client.
CREATE TABLE logos (
    id TEXT PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    doc TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
