"""Trained weights copied from Replicate into our storage, as soon as a training succeeds.

Replicate serves a training's weights file for a limited time, so the copy starts right after
the `completed` webhook is answered; the cron claims whatever is left. Each copy is claimed in
PostgreSQL first, so overlapping requests and cron runs copy each file once.
"""

import logging
from typing import TYPE_CHECKING, Any

import psycopg

from lib.adapters.storage.keys import user_prefix
from lib.errors import ApiError, NotFoundUpstream

if TYPE_CHECKING:
    from lib.adapters.replicate import Replicate
    from lib.adapters.storage.base import Storage

logger = logging.getLogger(__name__)

# A claimed copy not finished after this long died with its function; it may be claimed again.
WEIGHTS_RECLAIM_MINUTES = 15
WEIGHTS_MAX_ATTEMPTS = 5


def archive_next(
    conn: psycopg.Connection, *, replicate: "Replicate", storage: "Storage"
) -> str | None:
    """Copy the next weights file waiting for it: `weightsArchived`, `weightsFailed`, or None
    when none waits."""
    claim = _claim_weights(conn)
    if claim is None:
        return None
    return _archive_weights(conn, claim, replicate=replicate, storage=storage)


_CLAIMED = """
    RETURNING id, training_run_id, source_url,
              (SELECT user_id FROM training_runs WHERE id = training_run_id) AS user_id
"""


def _claim_weights(conn: psycopg.Connection) -> dict[str, Any] | None:
    """The next weights copy to make: a succeeded run never claimed, or a copy that died."""
    fresh = conn.execute(
        """
        INSERT INTO lora_weights (model_id, training_run_id, source_url)
        SELECT r.model_id, r.id, m.lora_weights_url
        FROM training_runs r JOIN user_models m ON m.id = r.model_id
        WHERE r.status = 'succeeded' AND m.lora_weights_url IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM lora_weights w WHERE w.training_run_id = r.id)
        ORDER BY r.completed_at
        LIMIT 1
        FOR UPDATE OF r SKIP LOCKED
        ON CONFLICT (training_run_id) DO NOTHING
        """
        + _CLAIMED
    ).fetchone()
    if fresh:
        return fresh
    return conn.execute(
        """
        UPDATE lora_weights SET claimed_at = now(), attempts = attempts + 1
        WHERE id = (
            SELECT id FROM lora_weights
            WHERE archived_at IS NULL AND attempts < %(attempts)s
              AND claimed_at < now() - make_interval(mins => %(minutes)s)
            ORDER BY claimed_at
            LIMIT 1
            FOR UPDATE SKIP LOCKED
        )
        """
        + _CLAIMED,
        {"attempts": WEIGHTS_MAX_ATTEMPTS, "minutes": WEIGHTS_RECLAIM_MINUTES},
    ).fetchone()


def _archive_weights(
    conn: psycopg.Connection,
    claim: dict[str, Any],
    *,
    replicate: "Replicate",
    storage: "Storage",
) -> str:
    """Stream the weights from Replicate into our storage and record where they are."""
    key = f"{user_prefix(claim['user_id'])}/weights/{claim['training_run_id']}.tar"
    try:
        with replicate.stream_download(claim["source_url"]) as chunks:
            stored = storage.put_stream(key, chunks, "application/x-tar")
    except ApiError as error:
        gone = isinstance(error, NotFoundUpstream)  # retrying cannot bring the file back
        conn.execute(
            "UPDATE lora_weights SET error = %s,"
            " attempts = CASE WHEN %s THEN %s ELSE attempts END WHERE id = %s",
            (error.message, gone, WEIGHTS_MAX_ATTEMPTS, claim["id"]),
        )
        logger.warning("weights copy failed run=%s code=%s", claim["training_run_id"], error.code)
        return "weightsFailed"
    conn.execute(
        "UPDATE lora_weights SET storage_backend = %s, storage_key = %s, size = %s, sha256 = %s,"
        " archived_at = now(), error = NULL WHERE id = %s",
        (storage.backend, stored.key, stored.size, stored.sha256, claim["id"]),
    )
    logger.info("weights archived run=%s size=%s", claim["training_run_id"], stored.size)
    return "weightsArchived"
