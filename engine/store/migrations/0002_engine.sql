-- The engine's state. Every state column carries a CHECK generated from engine/state/states.ts
-- (test/integration/store-schema.test.ts compares the live schema with them).

CREATE TABLE cairn.dag (
  dag_id          text PRIMARY KEY,
  file            text,
  paused          boolean NOT NULL DEFAULT false,
  version_id      bigint,                       -- current (last good) version
  schedule_cursor timestamptz,                  -- logical date of the newest scheduled run created
  enabled_at      timestamptz,                  -- last time the DAG went from paused (or new) to active: catchup none starts here
  removed         boolean NOT NULL DEFAULT false,
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cairn.dag_version (
  version_id bigserial PRIMARY KEY,
  dag_id     text NOT NULL REFERENCES cairn.dag (dag_id),
  hash       text NOT NULL,
  spec       jsonb NOT NULL,
  source     text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (dag_id, hash)
);

CREATE TABLE cairn.run (
  run_id              text PRIMARY KEY,
  dag_id              text NOT NULL REFERENCES cairn.dag (dag_id),
  version_id          bigint NOT NULL REFERENCES cairn.dag_version (version_id),
  run_type            text NOT NULL CHECK (run_type IN ('scheduled', 'manual', 'backfill')),
  state               text NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed', 'cancelled')),
  logical_date        timestamptz NOT NULL,
  data_interval_start timestamptz NOT NULL,
  data_interval_end   timestamptz NOT NULL,
  params              jsonb NOT NULL DEFAULT '{}',
  queued_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_at          timestamptz,
  ended_at            timestamptz,
  throttled           boolean NOT NULL DEFAULT false,  -- ready tasks wait for max_active_tasks or a pool
  -- Never two runs of one DAG for one logical date, whoever creates them.
  UNIQUE (dag_id, logical_date)
);
CREATE INDEX run_dag_queued_idx ON cairn.run (dag_id, queued_at DESC);
CREATE INDEX run_active_idx ON cairn.run (state) WHERE state IN ('queued', 'running');

CREATE TABLE cairn.task_instance (
  run_id        text NOT NULL REFERENCES cairn.run (run_id) ON DELETE CASCADE,
  task_id       text NOT NULL,
  state         text NOT NULL CHECK (state IN ('pending', 'queued', 'running', 'up_for_retry', 'success', 'failed', 'upstream_failed', 'skipped', 'cancelled')),
  attempt       integer NOT NULL DEFAULT 0,     -- number of the latest attempt (0: none yet)
  failures      integer NOT NULL DEFAULT 0,     -- attempts that failed; retries are counted against these
  priority      integer NOT NULL DEFAULT 0,
  pool          text NOT NULL DEFAULT 'default',
  next_retry_at timestamptz,
  queued_at     timestamptz,
  started_at    timestamptz,
  ended_at      timestamptz,
  outputs       jsonb,
  failure_kind  text,
  message       text,
  PRIMARY KEY (run_id, task_id)
);
CREATE INDEX task_instance_active_idx ON cairn.task_instance (pool, state) WHERE state IN ('queued', 'running');
CREATE INDEX task_instance_retry_idx ON cairn.task_instance (next_retry_at) WHERE state = 'up_for_retry';

CREATE TABLE cairn.attempt (
  run_id       text NOT NULL,
  task_id      text NOT NULL,
  attempt      integer NOT NULL,
  state        text NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed', 'skipped', 'lost', 'cancelled')),
  claim_id     uuid,                            -- fences every write of the worker that holds the attempt
  worker_id    text,
  queued_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_at   timestamptz,
  heartbeat_at timestamptz,
  ended_at     timestamptz,
  exit_code    integer,
  failure_kind text,
  message      text,
  PRIMARY KEY (run_id, task_id, attempt),
  FOREIGN KEY (run_id, task_id) REFERENCES cairn.task_instance (run_id, task_id) ON DELETE CASCADE
);
CREATE INDEX attempt_running_idx ON cairn.attempt (heartbeat_at) WHERE state = 'running';
CREATE INDEX attempt_queued_idx ON cairn.attempt (queued_at) WHERE state = 'queued';

-- Append-only: every change of a run's or task instance's state.
CREATE TABLE cairn.state_history (
  id         bigserial PRIMARY KEY,
  run_id     text NOT NULL,
  task_id    text,                              -- null for the run itself
  attempt    integer,
  from_state text,
  to_state   text NOT NULL,
  reason     text,
  at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX state_history_run_idx ON cairn.state_history (run_id, id);

CREATE TABLE cairn.task_log (
  id      bigserial PRIMARY KEY,
  run_id  text NOT NULL,
  task_id text NOT NULL,
  attempt integer NOT NULL,
  stream  text NOT NULL CHECK (stream IN ('stdout', 'stderr', 'log')),
  line    text NOT NULL,
  at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX task_log_attempt_idx ON cairn.task_log (run_id, task_id, attempt, id);

CREATE TABLE cairn.worker (
  worker_id    text PRIMARY KEY,
  hostname     text NOT NULL,
  pid          integer NOT NULL,
  state        text NOT NULL CHECK (state IN ('running', 'draining', 'stopped')),
  slots        integer NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  stopped_at   timestamptz
);

CREATE TABLE cairn.pool (
  name  text PRIMARY KEY,
  slots integer CHECK (slots IS NULL OR slots >= 1)   -- null: unlimited
);

-- Files that failed to load, with their diagnostics; the last good version of their DAG keeps running.
CREATE TABLE cairn.import_error (
  file        text PRIMARY KEY,
  dag_id      text,
  diagnostics jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
