-- Leases: one node at a time runs a cluster-wide background job (the purge); a lease is taken
-- when free or expired and renewed by its holder.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
