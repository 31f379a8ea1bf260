-- A start or generate that gave up on Replicate's create call without an answer (a timeout, a
-- lost connection, a function that died mid-call): the object may still be created upstream.
-- Its webhook or the cron then adopts it onto this row (lib/sync/orphans.py) instead of
-- canceling it.
ALTER TABLE training_runs ADD COLUMN create_unanswered boolean NOT NULL DEFAULT false;
ALTER TABLE generations ADD COLUMN create_unanswered boolean NOT NULL DEFAULT false;
