-- Web authentication: users (argon2id password hashes), API tokens and browser sessions.
-- Tokens and session ids are stored only as SHA-256 hashes: a copy of the database lets nobody in.

CREATE TABLE cairn.web_user (
  username      text PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$'),
  role          text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  password_hash text NOT NULL,
  disabled      boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cairn.api_token (
  token_id     bigserial PRIMARY KEY,
  name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$'),
  role         text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  token_hash   bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
  created_by   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);

CREATE TABLE cairn.web_session (
  session_hash bytea PRIMARY KEY CHECK (octet_length(session_hash) = 32),
  username     text NOT NULL REFERENCES cairn.web_user (username) ON DELETE CASCADE ON UPDATE CASCADE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);
CREATE INDEX web_session_expires_idx ON cairn.web_session (expires_at);
CREATE INDEX web_session_user_idx ON cairn.web_session (username);
