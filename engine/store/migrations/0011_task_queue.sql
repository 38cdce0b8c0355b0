-- The queue a task instance is dispatched on (its task's `queue:`), so that a queued attempt whose
-- queue job was lost is queued again on the same queue. Existing rows were all on the default queue.
ALTER TABLE cairn.task_instance ADD COLUMN queue text NOT NULL DEFAULT 'default';
