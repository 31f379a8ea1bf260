-- Events to the app (an outbox) and Studio pack runs.

-- Each event is written in the transaction of the state change that causes it and sent later,
-- so no crash loses one; `subject` names that state change, so however many paths (webhook,
-- poll, cron) race to apply it, it makes one event. Every attempt sends the same id and body.
CREATE TABLE app_events (
    id text PRIMARY KEY,                  -- the webhook-id of every attempt
    type text NOT NULL,
    subject text NOT NULL UNIQUE,         -- e.g. "training_run:<id>"
    body text NOT NULL,                   -- the exact JSON every attempt sends
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'undelivered')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX app_events_due ON app_events (next_attempt_at) WHERE status = 'pending';

CREATE TABLE pack_runs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id uuid NOT NULL REFERENCES user_models (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    pack_id text NOT NULL,
    status text NOT NULL DEFAULT 'processing' CHECK (status IN ('processing', 'completed')),
    total integer NOT NULL CHECK (total > 0),
    done integer NOT NULL DEFAULT 0,      -- generations that ended, failed ones included
    failed integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    CHECK (done <= total AND failed <= done)
);
CREATE INDEX pack_runs_model ON pack_runs (model_id, created_at DESC);

ALTER TABLE generations ADD COLUMN pack_run_id uuid REFERENCES pack_runs (id) ON DELETE CASCADE;
CREATE INDEX generations_pack_run ON generations (pack_run_id) WHERE pack_run_id IS NOT NULL;
