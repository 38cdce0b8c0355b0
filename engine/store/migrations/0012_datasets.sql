-- Datasets (SPEC section 7): named, numbered, immutable versions. Rows live in Parquet files under
-- the datasets directory; Postgres keeps what a version is. A version row is written only when its
-- files are complete, in one transaction, so a reader that finds the row finds every file: a failed
-- or cancelled task leaves at most an unreferenced folder, never a half version.
CREATE TABLE cairn.dataset (
  name            text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
  latest_version  integer NOT NULL DEFAULT 0 CHECK (latest_version >= 0),
  created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cairn.dataset_version (
  dataset         text NOT NULL REFERENCES cairn.dataset (name) ON DELETE CASCADE,
  version         integer NOT NULL CHECK (version >= 1),
  -- Folder of the version's Parquet files, relative to the datasets directory (a shared filesystem
  -- in multi-machine deployments may be mounted at different places).
  location        text NOT NULL,
  columns         jsonb NOT NULL,
  row_count       bigint NOT NULL CHECK (row_count >= 0),
  bytes           bigint NOT NULL CHECK (bytes >= 0),
  -- Order-independent digest of the rows: a retry that publishes the same rows for the same task
  -- instance gets the version already published instead of a second one.
  fingerprint     text NOT NULL,
  -- What made it: an operator type (ingest, features.training_set, ...) or 'import' for the CLI.
  produced_kind   text NOT NULL,
  -- No foreign key: lineage outlives `cairn db prune`.
  run_id          text,
  task_id         text,
  attempt         integer,
  actor           text,
  inputs          jsonb NOT NULL DEFAULT '[]'::jsonb,
  expectations    jsonb,
  -- Rows kept aside by on_bad_rows: quarantine: {count, location} (location: a Parquet file with line, reason and the raw text).
  bad_rows        jsonb,
  details         jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dataset, version),
  UNIQUE (location)
);

CREATE INDEX dataset_version_run ON cairn.dataset_version (run_id, task_id) WHERE run_id IS NOT NULL;
