-- Core training flow: uploads, models, training runs, webhook deliveries, archived weights.

CREATE TABLE selfie_uploads (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id text NOT NULL,
    storage_backend text NOT NULL,
    storage_key text NOT NULL,
    url text NOT NULL UNIQUE,
    filename text NOT NULL,
    content_type text NOT NULL,
    size bigint NOT NULL CHECK (size >= 0),
    width integer NOT NULL,
    height integer NOT NULL,
    sha256 text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX selfie_uploads_user ON selfie_uploads (user_id, created_at DESC);

CREATE TABLE user_models (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id text NOT NULL,
    name text NOT NULL,
    model_type text NOT NULL,
    gender text,
    trigger_word text NOT NULL UNIQUE,
    replicate_model_id text,          -- the destination, "owner/name"
    replicate_version_id text,        -- the trained version's id
    lora_weights_url text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_models_user ON user_models (user_id, created_at DESC);

-- One row per attempt to train a model. Its status is Replicate's, plus `pending`: the row is
-- written before Replicate is called, so a crash in between leaves something to reconcile.
CREATE TABLE training_runs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id uuid NOT NULL REFERENCES user_models (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    replicate_training_id text UNIQUE,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'starting', 'processing', 'succeeded', 'failed', 'canceled')),
    -- pending 0 < starting 1 < processing 2 < terminal 3: updates only ever raise it.
    status_rank smallint NOT NULL DEFAULT 0,
    progress smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error text,
    logs_tail text,
    parameters jsonb NOT NULL,
    upload_ids uuid[] NOT NULL,
    zip_key text,
    zip_url text,
    idempotency_key text,
    last_event_at timestamptz,
    last_polled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    CONSTRAINT training_runs_idempotency UNIQUE (user_id, idempotency_key)
);
CREATE INDEX training_runs_model ON training_runs (model_id, created_at DESC);
-- At most one training in flight per user, enforced by the database rather than a read-then-write.
CREATE UNIQUE INDEX training_runs_one_active_per_user ON training_runs (user_id) WHERE status_rank < 3;

CREATE TABLE webhook_events (
    webhook_id text PRIMARY KEY,
    object_id text NOT NULL,
    status text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lora_weights (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id uuid NOT NULL REFERENCES user_models (id) ON DELETE CASCADE,
    training_run_id uuid NOT NULL UNIQUE REFERENCES training_runs (id) ON DELETE CASCADE,
    source_url text NOT NULL,
    storage_backend text,
    storage_key text,
    size bigint,
    sha256 text,
    created_at timestamptz NOT NULL DEFAULT now()
);
