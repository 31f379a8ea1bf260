-- Client uploads between their token and Blob's completion callback. Blob stores a token's
-- pathname with a random suffix only it knows until the callback, so the token's pathname, its
-- owner and its expiry are written before any byte is stored: deletion and the cron find the
-- file by that pathname even when the callback never comes.

CREATE TABLE pending_uploads (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id text NOT NULL,
    pathname text NOT NULL,           -- as the token names it, before Blob's random suffix
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,  -- the token's validUntil
    abandoned_at timestamptz          -- its owner deleted the account: a late file is deleted
);
CREATE INDEX pending_uploads_pathname ON pending_uploads (pathname);
CREATE INDEX pending_uploads_user ON pending_uploads (user_id);
CREATE INDEX pending_uploads_expiry ON pending_uploads (expires_at);
