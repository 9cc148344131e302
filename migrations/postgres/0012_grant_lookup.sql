-- Grants by their id: a refresh token is read with its grant and the grant's user in one
-- statement, joined on the token's grant_id; only grants are in this index, so the lookup does
-- not walk the rotated tokens a long grant leaves under its id.
CREATE INDEX IF NOT EXISTS artifacts_grants ON artifacts (grant_id) WHERE kind = 'grant';
