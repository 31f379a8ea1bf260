"""Reaching the truth when webhooks go missing, and tidying up after finished trainings.

The progress endpoint checks one quiet run; the cron (`GET /api/cron/reconcile`) checks every
quiet run and generation, archives trained weights and deletes training ZIPs. Each piece of
work is claimed in PostgreSQL first, so overlapping cron runs and progress polls do every piece
exactly once.
"""

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from lib.adapters.storage.keys import user_prefix
from lib.errors import ApiError
from lib.settings import Settings
from lib.sync import polling
from lib.sync.training_runs import apply_snapshot, end_run

if TYPE_CHECKING:  # both pull in httpx; the progress function must not pay for it
    from lib.adapters.replicate import Replicate
    from lib.adapters.storage.base import Storage

logger = logging.getLogger(__name__)

CRON_QUIET_SECONDS = 5 * 60
# Longer than any start request can run (the functions' maxDuration is 300 s).
PENDING_ABANDONED_MINUTES = 10
RUNS_PER_BATCH = 25
ZIPS_PER_BATCH = 100
# Seconds into a run after which each stage claims no more work: the function (maxDuration
# 300 s) finishes what it holds; the rest waits for the next run.
CHECKS_UNTIL, WEIGHTS_UNTIL, ZIPS_UNTIL = 60, 200, 240
# A claimed copy not finished after this long died with its function; it may be claimed again.
WEIGHTS_RECLAIM_MINUTES = 15
WEIGHTS_MAX_ATTEMPTS = 5

NOT_FOUND_ERROR = "Replicate no longer knows this training (it answered 404); retry it"
NEVER_STARTED_ERROR = {
    "training_runs": "The training never reached Replicate: its start was interrupted; retry it",
    "generations": "The generation never reached Replicate: its request was interrupted",
}
SUMMARY_KEYS = (
    "abandonedPending",
    "checked",
    "recovered",
    "unchanged",
    "failedNotFound",
    "failedStartTimeout",
    "checkErrors",
    "generationsChecked",
    "weightsArchived",
    "weightsFailed",
    "zipsDeleted",
    "deletionsFinished",
)


def start_timeout_error(minutes: int) -> str:
    """The error a run gets when Replicate kept it `starting` for too long."""
    return f"Replicate did not start the training within {minutes} minutes; retry it"


def reconcile(
    conn: psycopg.Connection,
    *,
    replicate: "Replicate",
    storage: "Storage",
    settings: Settings,
) -> dict[str, int]:
    """One cron run: bounded work, safe beside any other run; a count of what it did."""
    from lib.accounts import deletion
    from lib.studio import generate  # imported here: the progress function never needs them

    began = time.monotonic()

    def within(seconds: int) -> bool:
        return time.monotonic() < began + seconds

    summary = Counter(dict.fromkeys(SUMMARY_KEYS, 0))
    summary["abandonedPending"] = sum(_fail_abandoned_pending(conn, t) for t in NEVER_STARTED_ERROR)
    while within(CHECKS_UNTIL) and (
        quiet := polling.claim_quiet_rows(
            conn, "training_runs", after_seconds=CRON_QUIET_SECONDS, limit=RUNS_PER_BATCH
        )
    ):
        for run in quiet:
            summary["checked"] += 1
            summary[check_training(conn, run, replicate=replicate, settings=settings)] += 1
    while within(CHECKS_UNTIL) and (
        quiet := polling.claim_quiet_rows(
            conn, "generations", after_seconds=CRON_QUIET_SECONDS, limit=RUNS_PER_BATCH
        )
    ):
        generate.poll_predictions(conn, settings, [row["replicate_id"] for row in quiet])
        summary["generationsChecked"] += len(quiet)
    while within(WEIGHTS_UNTIL) and (claim := _claim_weights(conn)):
        summary[_archive_weights(conn, claim, replicate=replicate, storage=storage)] += 1
    while within(ZIPS_UNTIL) and (deleted := _delete_finished_zips(conn, storage)):
        summary["zipsDeleted"] += deleted
    summary["deletionsFinished"] = deletion.finish_pending_deletions(
        conn, storage=storage, replicate=replicate
    )
    logger.info("reconciled %s", " ".join(f"{k}={v}" for k, v in summary.items()))
    return dict(summary)


def check_training(
    conn: psycopg.Connection, run: dict[str, Any], *, replicate: "Replicate", settings: Settings
) -> str:
    """Ask Replicate about one claimed run and apply its answer; return the outcome."""
    from lib.adapters.replicate import NotFoundUpstream

    training_id = run["replicate_id"]
    try:
        snapshot = replicate.get_training(training_id)
    except NotFoundUpstream:
        # Replicate forgets trainings stuck in its queue (404 ~30 min after create).
        end_run(conn, run["id"], status="failed", error=NOT_FOUND_ERROR)
        logger.warning("training unknown to replicate, failed training=%s", training_id)
        return "failedNotFound"
    except ApiError as error:
        # The stored state is still the best answer; the next check tries again.
        logger.warning("check failed training=%s code=%s", training_id, error.code)
        return "checkErrors"
    applied = apply_snapshot(conn, snapshot)
    if snapshot["status"] == "starting" and _fail_if_start_overdue(conn, run["id"], settings):
        cancel_quietly(replicate, training_id)  # so it never starts, and never bills
        return "failedStartTimeout"
    logger.info("checked quiet training=%s status=%s", training_id, snapshot["status"])
    return "recovered" if applied else "unchanged"


def _fail_if_start_overdue(conn: psycopg.Connection, run_id: Any, settings: Settings) -> bool:
    """Fail a run still starting (or pending) past the limit; True when this call did."""
    minutes = settings.training_start_timeout_minutes
    row = conn.execute(
        "UPDATE training_runs SET status = 'failed', status_rank = 3, error = %s,"
        " completed_at = now()"
        " WHERE id = %s AND status_rank <= 1"
        " AND created_at < now() - make_interval(mins => %s) RETURNING id",
        (start_timeout_error(minutes), run_id, minutes),
    ).fetchone()
    if row:
        logger.warning("training still starting after %s min, failed run=%s", minutes, run_id)
    return row is not None


def cancel_quietly(replicate: "Replicate", training_id: str) -> None:
    """Ask Replicate to cancel a training we gave up on; a failure is only logged."""
    try:
        replicate.cancel_training(training_id)
    except ApiError as error:
        logger.warning("cancel failed training=%s code=%s", training_id, error.code)


def _fail_abandoned_pending(conn: psycopg.Connection, table: str) -> int:
    # A crash between writing the row and Replicate's answer leaves it pending forever.
    query = sql.SQL(
        """
        UPDATE {table} SET status = 'failed', status_rank = 3, error = %(error)s,
                           completed_at = now()
        WHERE id IN (
            SELECT id FROM {table}
            WHERE status_rank = 0 AND created_at < now() - make_interval(mins => %(minutes)s)
            FOR UPDATE SKIP LOCKED
        )
        RETURNING id
        """
    ).format(table=sql.Identifier(table))
    error = NEVER_STARTED_ERROR[table]
    rows = conn.execute(query, {"error": error, "minutes": PENDING_ABANDONED_MINUTES}).fetchall()
    return len(rows)


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
    from lib.adapters.replicate import NotFoundUpstream

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


def _delete_finished_zips(conn: psycopg.Connection, storage: "Storage") -> int:
    """Delete the ZIPs of ended runs, then forget their keys, under the rows' locks."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT id, zip_key FROM training_runs"
            " WHERE status_rank = 3 AND zip_key IS NOT NULL"
            " ORDER BY completed_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (ZIPS_PER_BATCH,),
        ).fetchall()
        if rows:
            storage.delete([row["zip_key"] for row in rows])
            conn.execute(
                "UPDATE training_runs SET zip_key = NULL, zip_url = NULL WHERE id = ANY(%s)",
                ([row["id"] for row in rows],),
            )
    return len(rows)
