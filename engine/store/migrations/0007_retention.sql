-- Retention (`cairn db prune`, cairn.yaml `retention`) finds the oldest finished runs without reading
-- every run. The state list matches the terminal run states of engine/state/states.ts.
CREATE INDEX run_finished_idx ON cairn.run ((coalesce(ended_at, queued_at))) WHERE state IN ('success', 'failed', 'cancelled');
