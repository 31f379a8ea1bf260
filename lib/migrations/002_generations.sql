-- Studio: pictures generated with a trained model. Outputs are copied into our storage because
-- Replicate deletes API prediction outputs after an hour.

CREATE TABLE generations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id uuid NOT NULL REFERENCES user_models (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    replicate_prediction_id text UNIQUE,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'starting', 'processing', 'succeeded', 'failed', 'canceled')),
    status_rank smallint NOT NULL DEFAULT 0,
    prompt text NOT NULL,
    input jsonb NOT NULL,
    error text,
    output_keys text[] NOT NULL DEFAULT '{}',   -- our storage keys of the copied outputs
    output_urls text[] NOT NULL DEFAULT '{}',   -- their public URLs
    last_event_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX generations_model ON generations (model_id, created_at DESC);
CREATE INDEX generations_user ON generations (user_id, created_at DESC);
