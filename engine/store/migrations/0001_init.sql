-- Bootstrap: the schema every cairn table lives in. The engine's tables start at 0002.
CREATE SCHEMA IF NOT EXISTS cairn;

CREATE TABLE cairn.meta (
  key   text PRIMARY KEY,
  value text
);
