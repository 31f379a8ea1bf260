"""Deleting a model, or all of a user's data, completely — and finishing what a failure left.

Order: the model is marked (hidden from every endpoint at once), its running training is
stopped, then its stored objects and its Replicate versions are deleted, and its rows last.
Every step is idempotent, so a failure halfway leaves a marked model that the next attempt
(`finish_pending_deletions`, called by the cron) completes.
"""

import logging
from typing import TYPE_CHECKING, Any

import psycopg

from lib.accounts import quotas
from lib.accounts.user_models import is_uuid
from lib.errors import ApiError, NotFound
from lib.sync import upstream
from lib.sync.statuses import STATUS_RANK, TERMINAL_RANK
from lib.sync.training_runs import apply_snapshot, end_run

if TYPE_CHECKING:
    from lib.adapters.replicate import Replicate
    from lib.adapters.storage.base import Storage

logger = logging.getLogger(__name__)

# A run written but never sent to Replicate is abandoned once no start request can still be
# holding it (Vercel stops a function after 300 s).
ABANDONED_RUN_MINUTES = 15
# How long an attempt may take before the cron tries the same model again.
RETRY_AFTER_SECONDS = 120
STORAGE_BATCH = 500


def delete_model(
    conn: psycopg.Connection,
    *,
    user_id: str,
    model_id: str,
    storage: "Storage",
    replicate: "Replicate",
) -> bool:
    """Delete one of the caller's models; False when something is left for the cron."""
    if not is_uuid(model_id):
        raise NotFound("Model not found", code="model_not_found")
    marked = conn.execute(
        "UPDATE user_models SET deletion_requested_at = now(), deletion_attempted_at = now()"
        " WHERE id = %s AND user_id = %s AND deletion_requested_at IS NULL RETURNING id",
        (model_id, user_id),
    ).fetchone()
    if marked is None:
        raise NotFound("Model not found", code="model_not_found")
    logger.info("model deletion requested model=%s", model_id)
    return _purge(conn, model_id, storage=storage, replicate=replicate)


def delete_account(
    conn: psycopg.Connection, *, user_id: str, storage: "Storage", replicate: "Replicate"
) -> bool:
    """Delete every model and upload of the user; False when something is left for the cron."""
    marked = conn.execute(
        "UPDATE user_models SET deletion_attempted_at = now(),"
        " deletion_requested_at = coalesce(deletion_requested_at, now())"
        " WHERE user_id = %s RETURNING id",
        (user_id,),
    ).fetchall()
    logger.info("account deletion requested models=%d", len(marked))
    purged = [_purge(conn, row["id"], storage=storage, replicate=replicate) for row in marked]
    try:
        _delete_loose_uploads(conn, user_id, storage)
    except ApiError as error:
        logger.warning("account uploads left for later code=%s", error.code)
        return False
    return all(purged)


def outcome(done: bool) -> tuple[dict[str, str], int]:
    """The DELETE answer: 200 when everything is gone, 202 while the cron finishes the rest."""
    return ({"status": "deleted"}, 200) if done else ({"status": "deleting"}, 202)


def finish_pending_deletions(
    conn: psycopg.Connection, *, storage: "Storage", replicate: "Replicate", limit: int = 20
) -> int:
    """Complete deletions a failure left halfway (oldest first); return how many finished.

    The cron calls it. Attempts are claimed with one conditional UPDATE, so instances running
    at once do not work on the same model, and a model is retried at most every 2 minutes.
    """
    claimed = conn.execute(
        """
        UPDATE user_models SET deletion_attempted_at = now()
        WHERE id IN (
            SELECT id FROM user_models
            WHERE deletion_requested_at IS NOT NULL
              AND (deletion_attempted_at IS NULL
                   OR deletion_attempted_at < now() - make_interval(secs => %s))
            ORDER BY deletion_requested_at LIMIT %s
            FOR UPDATE SKIP LOCKED)
        RETURNING id
        """,
        (RETRY_AFTER_SECONDS, limit),
    ).fetchall()
    finished = sum(_purge(conn, row["id"], storage=storage, replicate=replicate) for row in claimed)
    quotas.prune(conn)
    return finished


def _purge(conn: psycopg.Connection, model_id: Any, *, storage, replicate) -> bool:
    """Everything of one marked model, in the safe order; False when it must be retried."""
    try:
        if not _stop_training(conn, model_id, replicate):
            logger.info("model deletion waits for its training model=%s", model_id)
            return False
        uploads = _exclusive_uploads(conn, model_id)
        _delete_objects(storage, _stored_keys(conn, model_id) + [u["storage_key"] for u in uploads])
        _delete_from_replicate(conn, model_id, replicate)
        _delete_rows(conn, model_id, [u["id"] for u in uploads])
    except ApiError as error:
        logger.warning("model deletion left for later model=%s code=%s", model_id, error.code)
        return False
    logger.info("model deleted model=%s", model_id)
    return True


def _stop_training(conn: psycopg.Connection, model_id: Any, replicate: "Replicate") -> bool:
    """Cancel the model's live runs; True once none can still push a version or read a file."""
    live = conn.execute(
        "SELECT id, replicate_training_id,"
        " created_at < now() - make_interval(mins => %s) AS abandoned"
        " FROM training_runs WHERE model_id = %s AND status_rank < %s",
        (ABANDONED_RUN_MINUTES, model_id, TERMINAL_RANK),
    ).fetchall()
    stopped = True
    for run in live:
        if run["replicate_training_id"]:
            stopped &= _cancel(conn, run, replicate)
        elif run["abandoned"]:
            end_run(conn, run["id"], status="failed", error="Deleted before it started")
        else:
            stopped = False  # a start request may be calling Replicate right now
    return stopped


def _cancel(conn: psycopg.Connection, run: dict[str, Any], replicate: "Replicate") -> bool:
    snapshot = upstream.cancel_training(replicate, run["replicate_training_id"])
    if snapshot is None:
        end_run(conn, run["id"], status="failed", error="Replicate no longer knows this training")
        return True
    apply_snapshot(conn, snapshot)
    return STATUS_RANK[snapshot["status"]] == TERMINAL_RANK


def _exclusive_uploads(conn: psycopg.Connection, model_id: Any) -> list[dict[str, Any]]:
    """The model's selfies that no other (not deleted) model of the user trained on."""
    return conn.execute(
        """
        SELECT u.id, u.storage_key FROM selfie_uploads u
        WHERE u.id IN (SELECT unnest(upload_ids) FROM training_runs WHERE model_id = %(model)s)
          AND NOT EXISTS (
              SELECT 1 FROM training_runs r JOIN user_models m ON m.id = r.model_id
              WHERE u.id = ANY(r.upload_ids) AND r.model_id <> %(model)s
                AND m.deletion_requested_at IS NULL)
        """,
        {"model": model_id},
    ).fetchall()


def _stored_keys(conn: psycopg.Connection, model_id: Any) -> list[str]:
    """The training ZIPs, archived weights and generated pictures of the model."""
    rows = conn.execute(
        """
        SELECT zip_key AS key FROM training_runs WHERE model_id = %(model)s
        UNION ALL SELECT storage_key FROM lora_weights WHERE model_id = %(model)s
        UNION ALL SELECT unnest(output_keys) FROM generations WHERE model_id = %(model)s
        """,
        {"model": model_id},
    ).fetchall()
    return [row["key"] for row in rows if row["key"]]


def _delete_objects(storage: "Storage", keys: list[str]) -> None:
    for start in range(0, len(keys), STORAGE_BATCH):
        storage.delete(keys[start : start + STORAGE_BATCH])


def _delete_from_replicate(conn: psycopg.Connection, model_id: Any, replicate) -> None:
    """Every version of the model's destination (the trained weights), then the destination."""
    row = conn.execute(
        "SELECT replicate_model_id, replicate_version_id FROM user_models WHERE id = %s",
        (model_id,),
    ).fetchone()
    destination = row["replicate_model_id"] if row else None
    if not destination:
        return
    versions = set(replicate.list_versions(destination))
    if row["replicate_version_id"]:
        versions.add(row["replicate_version_id"])
    for version_id in sorted(versions):
        replicate.delete_version(destination, version_id)
    replicate.delete_model(destination)


def _delete_rows(conn: psycopg.Connection, model_id: Any, upload_ids: list[Any]) -> None:
    with conn.transaction():
        conn.execute(
            """
            DELETE FROM webhook_events WHERE object_id IN (
                SELECT replicate_training_id FROM training_runs WHERE model_id = %(model)s
                UNION SELECT replicate_prediction_id FROM generations WHERE model_id = %(model)s)
            """,
            {"model": model_id},
        )
        conn.execute("DELETE FROM selfie_uploads WHERE id = ANY(%s)", (upload_ids,))
        # training_runs, lora_weights and generations go with it (ON DELETE CASCADE).
        conn.execute("DELETE FROM user_models WHERE id = %s", (model_id,))


def _delete_loose_uploads(conn: psycopg.Connection, user_id: str, storage: "Storage") -> None:
    """The user's uploads that no remaining model still needs (its own purge takes those)."""
    rows = conn.execute(
        """
        SELECT u.id, u.storage_key FROM selfie_uploads u
        WHERE u.user_id = %s AND NOT EXISTS (
            SELECT 1 FROM training_runs r WHERE u.id = ANY(r.upload_ids))
        """,
        (user_id,),
    ).fetchall()
    _delete_objects(storage, [row["storage_key"] for row in rows])
    conn.execute("DELETE FROM selfie_uploads WHERE id = ANY(%s)", ([row["id"] for row in rows],))
