-- State changes and manual runs.

-- Who made a state change: the user (or API token) for a mark, clear or cancel; null for the engine.
ALTER TABLE cairn.state_history ADD COLUMN actor text;

-- A manual run triggered without a logical date takes the trigger time as its logical date. Two of
-- them in one millisecond must not collide, nor may one block the scheduled run of the same instant:
-- only a run whose logical date was chosen (scheduled, backfill, or manual with a logical date given)
-- owns it, and no two runs of a DAG own the same one.
ALTER TABLE cairn.run ADD COLUMN owns_logical_date boolean NOT NULL DEFAULT true;
ALTER TABLE cairn.run DROP CONSTRAINT run_dag_id_logical_date_key;
CREATE UNIQUE INDEX run_owned_logical_date_key ON cairn.run (dag_id, logical_date) WHERE owns_logical_date;
CREATE INDEX run_dag_logical_date_idx ON cairn.run (dag_id, logical_date);
