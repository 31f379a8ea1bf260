-- Tenancy: deletions that survive a failure halfway, and usage counted for daily limits.

-- A model being deleted is hidden from every endpoint at once; its objects, its Replicate
-- version and finally its rows are removed after, by the request or later by the cron.
ALTER TABLE user_models
    ADD COLUMN deletion_requested_at timestamptz,
    ADD COLUMN deletion_attempted_at timestamptz;
CREATE INDEX user_models_pending_deletion ON user_models (deletion_requested_at)
    WHERE deletion_requested_at IS NOT NULL;

-- What each user consumed, for the rolling 24-hour limits. Kept apart from the models so that
-- deleting a model does not give its trainings back; rows older than a day are pruned.
CREATE TABLE usage_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('training', 'generation')),
    amount integer NOT NULL CHECK (amount > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_events_user ON usage_events (user_id, kind, created_at);
