-- Re-attach (SPEC section 4, `train`): a remote training job outlives the worker that started it.
-- executor_handle: what identifies the attempt's job durably (engine/executors/executor.ts JobHandle:
--   {"executor":"slurm","cluster":..,"jobId":".."} or {"executor":"ssh","cluster":..,"processes":[..]}).
--   Written, fenced by the attempt's claim, BEFORE the job may run; a worker that claims an attempt
--   that has one re-attaches to that job instead of starting another: one job per attempt, ever.
-- executor_state: what the web page shows of the job while it runs:
--   {"executor":"slurm"|"ssh"|"local","job_id"?:"..","state"?:"RUNNING","ranks":[{"rank":0,"host":"n1"}],"updated_at":".."}
ALTER TABLE cairn.attempt
  ADD COLUMN executor_handle jsonb CHECK (executor_handle IS NULL OR jsonb_typeof(executor_handle) = 'object'),
  ADD COLUMN executor_state jsonb CHECK (executor_state IS NULL OR jsonb_typeof(executor_state) = 'object');
