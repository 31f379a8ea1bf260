-- The sync core: a succeeded prediction's images are copied outside any transaction, under a
-- claim on the row (a copy that dies is claimed again after a few minutes).
ALTER TABLE generations ADD COLUMN copy_claimed_at timestamptz;

-- ZIPs of ended runs are deleted under a claim, not a lock held while storage answers.
ALTER TABLE training_runs ADD COLUMN zip_delete_claimed_at timestamptz;
