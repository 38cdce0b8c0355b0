-- Feature views (SPEC sections 4 and 7). The scheduler's DAG sync stores each valid feature view
-- file's definition here; workers read definitions from these rows, never from files. A changed
-- definition (hash of its normalized form) gets the next definition version; old versions and the
-- offline history materialized under them are kept.
CREATE TABLE cairn.feature_view (
  name             text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
  -- File that declares it, relative to the working directory like cairn.dag.file; kept after removal.
  file             text,
  current_version  integer NOT NULL CHECK (current_version >= 1),
  -- Its file is gone or no longer declares it: workers refuse to materialize it, history stays.
  removed          boolean NOT NULL DEFAULT false,
  -- Descriptive fields, updated in place (they do not change what is computed).
  description      text,
  owner            text,
  tags             jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cairn.feature_view_definition (
  view        text NOT NULL REFERENCES cairn.feature_view (name) ON DELETE CASCADE,
  version     integer NOT NULL CHECK (version >= 1),
  -- sha256 of the normalized definition (JSON text).
  hash        text NOT NULL,
  -- Normalized: {"entity": [..], "source", "timestamp", "ttl_ms": n|null, "online": bool,
  --              "features": [{"name", "agg", "column": c|null, "window_ms": n|null}, ...]} (file order).
  definition  jsonb NOT NULL,
  -- The YAML text it was loaded from, for display.
  source      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (view, version)
);

-- Offline store: one row per materialized (view, definition version, interval end). Its rows are the
-- Parquet files in `location` (a folder relative to the datasets directory). Re-materializing the
-- same interval points the row at a fresh folder in one statement, so readers see the old rows or
-- the new ones, never a mix, and one interval end never has two sets of rows (no duplicates from
-- overlapping backfills).
CREATE TABLE cairn.feature_materialization (
  view                text NOT NULL,
  definition_version  integer NOT NULL,
  -- The feature timestamp of every row (the run's data interval end).
  interval_end        timestamptz NOT NULL,
  interval_start      timestamptz NOT NULL,
  location            text NOT NULL UNIQUE,
  row_count           bigint NOT NULL CHECK (row_count >= 0),
  -- Lineage: the source dataset version the rows were computed from.
  source_dataset      text NOT NULL,
  source_version      integer NOT NULL,
  -- Rows written to the online store by this materialization (null: not online).
  online_rows         bigint,
  -- No foreign key: lineage outlives `cairn db prune`.
  run_id              text,
  task_id             text,
  attempt             integer,
  materialized_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (view, definition_version, interval_end),
  FOREIGN KEY (view, definition_version) REFERENCES cairn.feature_view_definition (view, version) ON DELETE CASCADE
);

-- Online store: the newest materialized row per (view, entity). `entity_key` is the canonical text
-- of the key values (a JSON array of strings, see engine/data/entity-key.ts); a write replaces a row
-- only when it is not older: (definition_version, feature_timestamp) greater or equal.
CREATE TABLE cairn.feature_online (
  view                text NOT NULL REFERENCES cairn.feature_view (name) ON DELETE CASCADE,
  entity_key          text NOT NULL,
  entity              jsonb NOT NULL,
  features            jsonb NOT NULL,
  feature_timestamp   timestamptz NOT NULL,
  definition_version  integer NOT NULL,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (view, entity_key)
);
