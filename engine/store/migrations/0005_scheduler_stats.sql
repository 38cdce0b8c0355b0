-- Each scheduler's pass statistics, written every few seconds, so /metrics (on any web process) can
-- report scheduler loop time without a port on the scheduler.
CREATE TABLE cairn.scheduler (
  scheduler_id    text PRIMARY KEY,
  hostname        text NOT NULL,
  pid             integer NOT NULL,
  state           text NOT NULL CHECK (state IN ('running', 'stopped')),
  started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  heartbeat_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  passes          bigint NOT NULL DEFAULT 0,        -- since start
  pass_seconds    double precision NOT NULL DEFAULT 0,  -- total time in passes since start
  last_pass_seconds double precision,
  max_pass_seconds  double precision             -- longest pass in the last reporting window
);
