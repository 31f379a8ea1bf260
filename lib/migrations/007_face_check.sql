-- The selfie quality gate and progress with an ETA.

-- Each upload's face check verdict. NULL on uploads recorded before the check existed: start
-- lets them through and the ZIP builder's own face check decides.
ALTER TABLE selfie_uploads
    ADD COLUMN faces smallint,
    ADD COLUMN face_share double precision,
    ADD COLUMN usable boolean,
    ADD COLUMN unusable_reason text;

-- The trainer's own step counter and its estimate of the time left (NULL while unknown).
ALTER TABLE training_runs
    ADD COLUMN step integer,
    ADD COLUMN total_steps integer,
    ADD COLUMN eta_seconds integer;
