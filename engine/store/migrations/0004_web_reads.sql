-- Reads of the web page that must stay fast with many runs:
-- the runs and grid pages (newest first, keyset on queued_at then run_id), and runs per DAG version.
CREATE INDEX run_dag_page_idx ON cairn.run (dag_id, queued_at DESC, run_id DESC);
DROP INDEX cairn.run_dag_queued_idx;
CREATE INDEX run_version_idx ON cairn.run (version_id);
