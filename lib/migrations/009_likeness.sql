-- The same-person check and the trainer version each run used.

-- Photos sent to start but not trained on, and why ([{"url", "filename", "reason"}]): unusable
-- ones and those showing another person. Never a face descriptor: those are not stored.
ALTER TABLE training_runs
    ADD COLUMN left_out jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN trainer_version text;
