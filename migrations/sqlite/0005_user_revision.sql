-- A user's revision: an update lands only on the revision it was read at, so two administrators
-- (or a password reset and a profile edit) cannot overwrite each other's change.
ALTER TABLE users ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
