-- Model registry (SPEC section 7): named models with numbered versions. A version's file lives on
-- shared storage under <data dir>/_models/<name>/<version>/model.onnx; Postgres keeps what the
-- version is, where it came from (lineage) and which stage it is in. Stage changes are audited.
CREATE TABLE cairn.model (
  name            text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
  latest_version  integer NOT NULL DEFAULT 0 CHECK (latest_version >= 0),
  created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cairn.model_version (
  model           text NOT NULL REFERENCES cairn.model (name) ON DELETE CASCADE,
  version         integer NOT NULL CHECK (version >= 1),
  stage           text NOT NULL DEFAULT 'candidate' CHECK (stage IN ('candidate', 'canary', 'production', 'archived')),
  -- The model file, relative to the data directory (shared storage may be mounted at different places).
  artifact        text NOT NULL,
  sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  metrics         jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- {run, task, attempt, dag_version, dataset: {name, version}, feature_views: [{feature_view, definition_version}]}
  -- No foreign keys: lineage outlives `cairn db prune`.
  lineage         jsonb NOT NULL DEFAULT '{}'::jsonb,
  features        jsonb NOT NULL DEFAULT '[]'::jsonb,
  task_kind       text CHECK (task_kind IN ('binary', 'multiclass', 'regression')),
  -- Share of the serving traffic (0..1) this version gets; used by canary rollouts.
  traffic_share   double precision NOT NULL DEFAULT 0 CHECK (traffic_share >= 0 AND traffic_share <= 1),
  run_id          text,
  task_id         text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model, version)
);

-- At most one production and one canary version per model, enforced by the database.
CREATE UNIQUE INDEX model_version_one_production ON cairn.model_version (model) WHERE stage = 'production';
CREATE UNIQUE INDEX model_version_one_canary ON cairn.model_version (model) WHERE stage = 'canary';
CREATE INDEX model_version_run ON cairn.model_version (run_id, task_id) WHERE run_id IS NOT NULL;

CREATE TABLE cairn.model_audit (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  model           text NOT NULL,
  version         integer NOT NULL,
  -- NULL when the version was registered.
  from_stage      text,
  to_stage        text NOT NULL,
  -- Who: {"user": name} | {"token": id} | {"run": id, "task": id}
  actor           jsonb NOT NULL,
  at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_audit_model ON cairn.model_audit (model, version, at);
