-- Token lifecycle and login throttling.
--
-- api_token.expires_at: an optional end (`cairn tokens create NAME --role R --expires 90d`).
-- api_token.owner: the user a token was made by through the API; disabling that user stops the token.
-- A revoked token's name may be used again: only live (not revoked) names are unique.
ALTER TABLE cairn.api_token ADD COLUMN expires_at timestamptz;
ALTER TABLE cairn.api_token ADD COLUMN owner text REFERENCES cairn.web_user (username) ON DELETE CASCADE ON UPDATE CASCADE;
UPDATE cairn.api_token t SET owner = u.username
  FROM cairn.web_user u WHERE t.created_by = 'user ' || u.username;
ALTER TABLE cairn.api_token DROP CONSTRAINT api_token_name_key;
CREATE UNIQUE INDEX api_token_live_name_idx ON cairn.api_token (name) WHERE revoked_at IS NULL;
CREATE INDEX api_token_owner_idx ON cairn.api_token (owner) WHERE owner IS NOT NULL;

-- Login failures per (user name as typed, lower-cased; client address), and per user name from every
-- address (address '*'). The web process decides from these whether an attempt may be checked at all
-- (engine/web/auth/login-throttle.ts); a success records the address as one the user logs in from.
CREATE TABLE cairn.login_throttle (
  username        text NOT NULL CHECK (length(username) <= 64),
  address         text NOT NULL CHECK (length(address) <= 100),
  failures        integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
  last_failure_at timestamptz,
  last_success_at timestamptz,
  PRIMARY KEY (username, address)
);
CREATE INDEX login_throttle_failure_idx ON cairn.login_throttle (last_failure_at);
