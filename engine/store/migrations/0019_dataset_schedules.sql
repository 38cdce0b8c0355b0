-- Data-aware scheduling: `schedule: { datasets: [a, b] }` runs a DAG when every listed dataset has a new
-- version since the DAG's last dataset-triggered run. The cursor holds, per DAG and dataset, the version
-- the last such run was created for (or the latest version when the DAG first listed the dataset: versions
-- published before a DAG existed do not trigger it, as in Airflow).
ALTER TABLE cairn.run DROP CONSTRAINT run_run_type_check;
ALTER TABLE cairn.run ADD CONSTRAINT run_run_type_check CHECK (run_type IN ('scheduled', 'manual', 'backfill', 'dataset'));

CREATE TABLE cairn.dag_dataset_cursor (
  dag_id    text NOT NULL REFERENCES cairn.dag (dag_id) ON DELETE CASCADE,
  dataset   text NOT NULL,
  version   integer NOT NULL CHECK (version >= 0),
  PRIMARY KEY (dag_id, dataset)
);
