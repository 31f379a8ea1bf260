-- Training lifecycle: the reconcile cron's claims on weight copies, and indexes for its scans.

-- A lora_weights row is first the claim on copying a run's weights (UNIQUE training_run_id +
-- ON CONFLICT: one copier per run, however many cron runs overlap), then the archived copy.
ALTER TABLE lora_weights
    ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN attempts smallint NOT NULL DEFAULT 1,
    ADD COLUMN error text,
    ADD COLUMN archived_at timestamptz;

-- Live runs, found by how long they have been silent.
CREATE INDEX training_runs_live ON training_runs (created_at) WHERE status_rank < 3;
-- Finished runs whose ZIP is still stored.
CREATE INDEX training_runs_zip_held ON training_runs (completed_at)
    WHERE status_rank = 3 AND zip_key IS NOT NULL;
-- Succeeded runs, scanned for weights not yet archived.
CREATE INDEX training_runs_succeeded ON training_runs (completed_at) WHERE status = 'succeeded';
