-- Multipart selfies are written down in pending_uploads before their object is stored, like
-- client uploads; the cron sweeps expired rows under a claim rather than a lock held while
-- storage answers.
ALTER TABLE pending_uploads ADD COLUMN swept_at timestamptz;
