-- Authentication schemes (seeds 001/002): named ways of signing in that applications pick.
CREATE TABLE auth_schemes (id TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at BIGINT NOT NULL);
