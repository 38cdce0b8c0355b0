-- Canary rollouts of model versions (SPEC section 7, `serve.rollout`): one row per rollout with its
-- plan and, per step, the canary's figures in that step's window and the decision. The model's stage
-- and traffic shares stay in cairn.model_version; this is the history the web page and
-- GET /api/v1/models/{name} show, and what a retried or re-run rollout resumes from.
CREATE TABLE cairn.model_rollout (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  model           text NOT NULL,
  version         integer NOT NULL,
  -- The task instance that runs (or last ran) it; NULL for none. No foreign keys: history outlives `cairn db prune`.
  run_id          text,
  task_id         text,
  attempt         integer,
  status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'promoted', 'rolled_back', 'held')),
  -- {steps: [10, 50, 100], step_duration_ms, analysis: {min_requests, max_error_rate, max_p99_latency_ms}, on_failure}
  plan            jsonb NOT NULL,
  -- [{percent, started_at, ended_at, requests, errors, error_rate, p99_ms, passed, reason}], in order
  steps           jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(steps) = 'array'),
  reason          text,
  started_at      timestamptz NOT NULL DEFAULT now(),
  ended_at        timestamptz,
  FOREIGN KEY (model, version) REFERENCES cairn.model_version (model, version) ON DELETE CASCADE,
  CHECK ((status IN ('running', 'held')) = (ended_at IS NULL))
);

-- One unfinished (running or held) rollout per model, as there is one canary.
CREATE UNIQUE INDEX model_rollout_one_active ON cairn.model_rollout (model) WHERE status IN ('running', 'held');
CREATE INDEX model_rollout_model ON cairn.model_rollout (model, id);

-- Traffic changes are audited too (SPEC: every stage and traffic change with who made it): the share
-- the version had after the change; a share change within a stage is a row from canary to canary.
ALTER TABLE cairn.model_audit ADD COLUMN traffic_share double precision;
