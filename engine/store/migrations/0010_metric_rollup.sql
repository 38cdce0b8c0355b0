-- Counts for /metrics kept on write, so a scrape reads O(series) rows instead of aggregating the whole
-- history (400 ms per scrape at 10k runs, 3-4 s at 50k before this).
--
-- Statement triggers append signed deltas to cairn.metric_delta (an insert never waits on another
-- transaction, so busy counters are no hot rows); a scrape reads cairn.metric_rollup plus the deltas, and
-- folds the deltas into the rollup now and then (engine/store/metric-rollup.ts).
--
--   kind 'run'            runs by dag_id and state                       (task_id '', le 0)
--   kind 'task_instance'  task instances by dag_id, task_id and state    (le 0)
--   kind 'duration'       finished attempts by dag_id, task_id, state and histogram bucket `le`, with
--                         the sum of their durations; cumulative: pruning history never lowers it

CREATE TABLE cairn.metric_rollup (
  kind    text NOT NULL CHECK (kind IN ('run', 'task_instance', 'duration')),
  dag_id  text NOT NULL,
  task_id text NOT NULL DEFAULT '',
  state   text NOT NULL,
  le      double precision NOT NULL DEFAULT 0,
  n       bigint NOT NULL,
  total   double precision NOT NULL DEFAULT 0,
  PRIMARY KEY (kind, dag_id, task_id, state, le)
);

CREATE TABLE cairn.metric_delta (
  id      bigserial PRIMARY KEY,
  kind    text NOT NULL,
  dag_id  text NOT NULL,
  task_id text NOT NULL DEFAULT '',
  state   text NOT NULL,
  le      double precision NOT NULL DEFAULT 0,
  n       bigint NOT NULL,
  total   double precision NOT NULL DEFAULT 0
);

-- The histogram's upper bounds; engine/web/metrics.ts DURATION_BUCKETS must list the same (a test checks).
CREATE FUNCTION cairn.metric_duration_le(seconds double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(
    (SELECT min(b) FROM unnest(ARRAY[1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400]::double precision[]) b WHERE seconds <= b),
    'Infinity'::double precision)
$$;

-- Runs --------------------------------------------------------------------------------------------
CREATE FUNCTION cairn.metric_run_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cairn.metric_delta (kind, dag_id, state, n)
  SELECT 'run', dag_id, state, count(*) FROM new_rows GROUP BY dag_id, state;
  RETURN NULL;
END $$;

CREATE FUNCTION cairn.metric_run_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cairn.metric_delta (kind, dag_id, state, n)
  SELECT 'run', dag_id, state, sum(n) FROM (
    SELECT o.dag_id, o.state, -1 AS n FROM old_rows o JOIN new_rows w USING (run_id) WHERE o.state <> w.state
    UNION ALL
    SELECT w.dag_id, w.state, 1 FROM old_rows o JOIN new_rows w USING (run_id) WHERE o.state <> w.state
  ) d GROUP BY dag_id, state;
  RETURN NULL;
END $$;

-- A deleted run takes its task instances with it (ON DELETE CASCADE); they are counted out here, while
-- they still exist, because once the cascade ran their run is gone and their DAG unknown.
CREATE FUNCTION cairn.metric_run_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cairn.metric_delta (kind, dag_id, state, n) VALUES ('run', OLD.dag_id, OLD.state, -1);
  INSERT INTO cairn.metric_delta (kind, dag_id, task_id, state, n)
  SELECT 'task_instance', OLD.dag_id, task_id, state, -count(*) FROM cairn.task_instance WHERE run_id = OLD.run_id GROUP BY task_id, state;
  RETURN OLD;
END $$;

CREATE TRIGGER metric_run_insert AFTER INSERT ON cairn.run
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cairn.metric_run_insert();
CREATE TRIGGER metric_run_update AFTER UPDATE ON cairn.run
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cairn.metric_run_update();
CREATE TRIGGER metric_run_delete BEFORE DELETE ON cairn.run
  FOR EACH ROW EXECUTE FUNCTION cairn.metric_run_delete();

-- Task instances -----------------------------------------------------------------------------------
CREATE FUNCTION cairn.metric_task_instance_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cairn.metric_delta (kind, dag_id, task_id, state, n)
  SELECT 'task_instance', r.dag_id, t.task_id, t.state, count(*) FROM new_rows t JOIN cairn.run r USING (run_id) GROUP BY 2, 3, 4;
  RETURN NULL;
END $$;

CREATE FUNCTION cairn.metric_task_instance_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cairn.metric_delta (kind, dag_id, task_id, state, n)
  SELECT 'task_instance', r.dag_id, d.task_id, d.state, sum(d.n) FROM (
    SELECT o.run_id, o.task_id, o.state, -1 AS n FROM old_rows o JOIN new_rows w USING (run_id, task_id) WHERE o.state <> w.state
    UNION ALL
    SELECT w.run_id, w.task_id, w.state, 1 FROM old_rows o JOIN new_rows w USING (run_id, task_id) WHERE o.state <> w.state
  ) d JOIN cairn.run r USING (run_id) GROUP BY 2, 3, 4;
  RETURN NULL;
END $$;

-- Only deletes of task instances whose run stays: a cascade from a run delete finds no run here (it was
-- counted out by metric_run_delete).
CREATE FUNCTION cairn.metric_task_instance_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cairn.metric_delta (kind, dag_id, task_id, state, n)
  SELECT 'task_instance', r.dag_id, t.task_id, t.state, -count(*) FROM old_rows t JOIN cairn.run r USING (run_id) GROUP BY 2, 3, 4;
  RETURN NULL;
END $$;

CREATE TRIGGER metric_task_instance_insert AFTER INSERT ON cairn.task_instance
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cairn.metric_task_instance_insert();
CREATE TRIGGER metric_task_instance_update AFTER UPDATE ON cairn.task_instance
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cairn.metric_task_instance_update();
CREATE TRIGGER metric_task_instance_delete AFTER DELETE ON cairn.task_instance
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cairn.metric_task_instance_delete();

-- Attempt durations: counted once, when an attempt that started gets its end time ----------------------
CREATE FUNCTION cairn.metric_attempt_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cairn.metric_delta (kind, dag_id, task_id, state, le, n, total)
  SELECT 'duration', r.dag_id, d.task_id, d.state, cairn.metric_duration_le(d.seconds), count(*), sum(d.seconds)
    FROM (SELECT w.run_id, w.task_id, w.state, extract(epoch FROM w.ended_at - w.started_at)::float8 AS seconds
            FROM new_rows w LEFT JOIN old_rows o USING (run_id, task_id, attempt)
           WHERE w.started_at IS NOT NULL AND w.ended_at IS NOT NULL
             AND (o.run_id IS NULL OR o.ended_at IS NULL OR o.started_at IS NULL)) d
    JOIN cairn.run r USING (run_id)
   GROUP BY 2, 3, 4, 5;
  RETURN NULL;
END $$;

CREATE FUNCTION cairn.metric_attempt_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cairn.metric_delta (kind, dag_id, task_id, state, le, n, total)
  SELECT 'duration', r.dag_id, d.task_id, d.state, cairn.metric_duration_le(d.seconds), count(*), sum(d.seconds)
    FROM (SELECT run_id, task_id, state, extract(epoch FROM ended_at - started_at)::float8 AS seconds
            FROM new_rows WHERE started_at IS NOT NULL AND ended_at IS NOT NULL) d
    JOIN cairn.run r USING (run_id)
   GROUP BY 2, 3, 4, 5;
  RETURN NULL;
END $$;

CREATE TRIGGER metric_attempt_update AFTER UPDATE ON cairn.attempt
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cairn.metric_attempt_ended();
CREATE TRIGGER metric_attempt_insert AFTER INSERT ON cairn.attempt
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cairn.metric_attempt_inserted();

-- What exists already, counted once.
INSERT INTO cairn.metric_rollup (kind, dag_id, state, n)
SELECT 'run', dag_id, state, count(*) FROM cairn.run GROUP BY 2, 3;
INSERT INTO cairn.metric_rollup (kind, dag_id, task_id, state, n)
SELECT 'task_instance', r.dag_id, t.task_id, t.state, count(*) FROM cairn.task_instance t JOIN cairn.run r USING (run_id) GROUP BY 2, 3, 4;
INSERT INTO cairn.metric_rollup (kind, dag_id, task_id, state, le, n, total)
SELECT 'duration', r.dag_id, a.task_id, a.state, cairn.metric_duration_le(d.seconds), count(*), sum(d.seconds)
  FROM cairn.attempt a JOIN cairn.run r USING (run_id)
  CROSS JOIN LATERAL (SELECT extract(epoch FROM a.ended_at - a.started_at)::float8 AS seconds) d
 WHERE a.started_at IS NOT NULL AND a.ended_at IS NOT NULL
 GROUP BY 2, 3, 4, 5;
