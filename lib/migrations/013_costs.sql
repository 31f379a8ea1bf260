-- What Replicate billed: each run's and generation's metrics and cost, and a monthly ledger.

-- The hardware and its price are fixed when the job is reserved, so the cost of a finished job
-- does not depend on the settings of whichever instance hears of its end. cost_settled_at: the
-- final state was billed once, however many times it is delivered.
ALTER TABLE training_runs
    ADD COLUMN hardware text,
    ADD COLUMN usd_per_second numeric,
    ADD COLUMN metrics jsonb,
    ADD COLUMN cost_usd numeric,
    ADD COLUMN cost_settled_at timestamptz;
ALTER TABLE generations
    ADD COLUMN hardware text,
    ADD COLUMN usd_per_second numeric,
    ADD COLUMN metrics jsonb,
    ADD COLUMN cost_usd numeric,
    ADD COLUMN cost_settled_at timestamptz;

-- What each user spends, one row per training or per image: the estimate while the job runs,
-- Replicate's billed cost once known. No foreign keys: deleting a model does not give the
-- money back. Image rows reserved by a pack are linked to no generation; each generation that
-- ends settles the oldest open ones, at the price they were reserved at.
CREATE TABLE spend_ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('training', 'image')),
    training_run_id uuid UNIQUE,
    generation_id uuid,
    estimated_usd numeric NOT NULL CHECK (estimated_usd >= 0),
    usd_per_second numeric NOT NULL,
    cost_usd numeric CHECK (cost_usd >= 0),
    settled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX spend_ledger_user ON spend_ledger (user_id, created_at);
CREATE INDEX spend_ledger_open ON spend_ledger (user_id, kind, id) WHERE settled_at IS NULL;

-- The recent successful jobs whose billed seconds per step make the estimates.
CREATE INDEX training_runs_billed ON training_runs (completed_at)
    WHERE status = 'succeeded' AND metrics ? 'predict_time';
CREATE INDEX generations_billed ON generations (completed_at)
    WHERE status = 'succeeded' AND metrics ? 'predict_time';
