-- The user an SSO session or a grant belongs to, so an administrator can list and revoke a
-- user's sessions and grants; the sessions and grants stored before this get theirs from the
-- payload.
ALTER TABLE artifacts ADD COLUMN user_id TEXT;
UPDATE artifacts SET user_id = payload::jsonb ->> 'user_id' WHERE kind IN ('grant', 'session');
CREATE INDEX artifacts_user_id ON artifacts (user_id) WHERE user_id IS NOT NULL;
