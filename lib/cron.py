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

from lib.accounts import deletion
from lib.app_events import delivery, outbox
from lib.errors import ApiError
from lib.intake import pending_uploads
from lib.settings import Settings
from lib.sync import generations, orphans, polling, upstream, weights
from lib.sync.statuses import STATUS_RANK, TERMINAL_RANK
from lib.sync.training_runs import end_run

if TYPE_CHECKING:
    from lib.adapters.replicate import Replicate
    from lib.adapters.storage.base import Storage

logger = logging.getLogger(__name__)

CRON_QUIET_SECONDS = 5 * 60
# Longer than any start request can run (the functions' maxDuration is 300 s).
PENDING_ABANDONED_MINUTES = 10
PENDING_RANK = STATUS_RANK["pending"]
RUNS_PER_BATCH = 25
# Pages (of 100) of the account's latest trainings and predictions searched for orphans.
ORPHAN_PAGES = 3
ZIPS_PER_BATCH = 100
ZIP_RECLAIM_MINUTES = 15
# Replicate retries a delivery for about a minute; a day of webhook-ids is ample to apply each
# once, and keeps the table from growing by every logs delivery of every training.
WEBHOOK_EVENTS_KEPT_HOURS = 24
# Seconds into a run after which each stage claims no more work: the function (maxDuration
# 300 s) finishes what it holds; the rest waits for the next run.
CHECKS_UNTIL, WEIGHTS_UNTIL, ZIPS_UNTIL, EVENTS_UNTIL = 60, 200, 240, 270
EVENTS_PER_BATCH = 10
NEVER_STARTED_ERROR = {
    "training_runs": "The training never reached Replicate: its start was interrupted; retry it",
    "generations": "The generation never reached Replicate: its request was interrupted",
}
SUMMARY_KEYS = (
    "orphansRecorded",
    "orphansAdopted",
    "orphansCanceled",
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
    "unreportedUploadsDeleted",
    "webhookEventsPruned",
    "eventsSent",
    "eventsFailed",
)


def reconcile(
    conn: psycopg.Connection,
    *,
    replicate: "Replicate",
    storage: "Storage",
    settings: Settings,
) -> dict[str, int]:
    """One cron run: bounded work, safe beside any other run; a count of what it did."""
    began = time.monotonic()

    def within(seconds: int) -> bool:
        return time.monotonic() < began + seconds

    summary = Counter(dict.fromkeys(SUMMARY_KEYS, 0))
    # Before failing abandoned starts: a training created for one of them is recorded instead.
    summary.update(_settle_orphans(conn, replicate=replicate, storage=storage))
    summary["abandonedPending"] = _fail_abandoned_pending(conn)
    while within(CHECKS_UNTIL) and (
        quiet := polling.claim_quiet_rows(
            conn, "training_runs", after_seconds=CRON_QUIET_SECONDS, limit=RUNS_PER_BATCH
        )
    ):
        for run in quiet:
            summary["checked"] += 1
            summary[polling.check_training(conn, run, replicate=replicate, settings=settings)] += 1
    while within(CHECKS_UNTIL) and (
        quiet := polling.claim_quiet_rows(
            conn, "generations", after_seconds=CRON_QUIET_SECONDS, limit=RUNS_PER_BATCH
        )
    ):
        ids = [row["replicate_id"] for row in quiet]
        polling.poll_predictions(conn, ids, replicate=replicate, storage=storage)
        summary["generationsChecked"] += len(quiet)
    while within(WEIGHTS_UNTIL) and (
        outcome := weights.archive_next(conn, replicate=replicate, storage=storage)
    ):
        summary[outcome] += 1
    while within(ZIPS_UNTIL) and (deleted := _delete_finished_zips(conn, storage)):
        summary["zipsDeleted"] += deleted
    summary["deletionsFinished"] = deletion.finish_pending_deletions(
        conn, storage=storage, replicate=replicate
    )
    summary["unreportedUploadsDeleted"] = pending_uploads.sweep(conn, storage=storage)
    summary["webhookEventsPruned"] = _prune_webhook_events(conn)
    while within(EVENTS_UNTIL) and settings.app_webhook_url:
        sent = delivery.send_due(conn, settings=settings, limit=EVENTS_PER_BATCH)
        if not any(sent.values()):
            break
        summary["eventsSent"] += sent["sent"]
        summary["eventsFailed"] += sent["failed"]
    outbox.prune(conn)
    logger.info("reconciled %s", " ".join(f"{k}={v}" for k, v in summary.items()))
    return dict(summary)


def _settle_orphans(
    conn: psycopg.Connection, *, replicate: "Replicate", storage: "Storage"
) -> Counter:
    """Record, adopt or cancel the account's recent trainings and predictions no row records
    (created after a request gave up on Replicate's answer)."""
    try:
        trainings = orphans.unrecorded_trainings(conn, replicate, pages=ORPHAN_PAGES)
        predictions = orphans.unrecorded_predictions(conn, replicate, pages=ORPHAN_PAGES)
    except ApiError as error:
        logger.warning("orphan search failed code=%s", error.code)
        return Counter(checkErrors=1)
    outcomes = Counter()
    for run_id, training in trainings:
        outcome, _ = orphans.apply_training(conn, training, run_id=run_id)
        if outcome == "cancel":
            upstream.cancel_quietly(replicate, training["id"], kind="training")
        outcomes[outcome] += 1
    for generation, prediction in predictions:
        outcome, copy = orphans.apply_prediction(conn, generation, prediction)
        if outcome == "cancel":
            upstream.cancel_quietly(replicate, prediction["id"], kind="prediction")
        if copy:
            generations.copy_outputs(conn, copy, replicate=replicate, storage=storage)
        outcomes[outcome] += 1
    keys = {"applied": "orphansRecorded", "adopted": "orphansAdopted", "cancel": "orphansCanceled"}
    return Counter({keys[k]: n for k, n in outcomes.items() if k in keys})


def _fail_abandoned_pending(conn: psycopg.Connection) -> int:
    # A crash between writing the row and Replicate's answer leaves it pending forever.
    ended = 0
    for table, end in (
        ("training_runs", _end_abandoned_run),
        ("generations", _end_abandoned_generation),
    ):
        rows = conn.execute(
            sql.SQL(
                "SELECT id FROM {table} WHERE status_rank = %s"
                " AND created_at < now() - make_interval(mins => %s)"
            ).format(table=sql.Identifier(table)),
            (PENDING_RANK, PENDING_ABANDONED_MINUTES),
        ).fetchall()
        ended += sum(end(conn, row["id"]) for row in rows)
    return ended


def _end_abandoned_run(conn: psycopg.Connection, run_id: Any) -> bool:
    error = NEVER_STARTED_ERROR["training_runs"]
    # Its create call may have reached Replicate: a training found later is adopted.
    return end_run(
        conn,
        run_id,
        status="failed",
        error=error,
        below_rank=PENDING_RANK + 1,
        create_unanswered=True,
    )


def _end_abandoned_generation(conn: psycopg.Connection, generation_id: Any) -> bool:
    error = NEVER_STARTED_ERROR["generations"]
    return generations.end_generation(
        conn, generation_id, error=error, below_rank=PENDING_RANK + 1, create_unanswered=True
    )


def _delete_finished_zips(conn: psycopg.Connection, storage: "Storage") -> int:
    """Delete the ZIPs of ended runs, claimed first so no lock is held while storage answers;
    a claim whose function died is taken over after ZIP_RECLAIM_MINUTES."""
    rows = conn.execute(
        """
        UPDATE training_runs SET zip_delete_claimed_at = now()
        WHERE id IN (
            SELECT id FROM training_runs
            WHERE status_rank = %(terminal)s AND zip_key IS NOT NULL
              AND (zip_delete_claimed_at IS NULL
                   OR zip_delete_claimed_at < now() - make_interval(mins => %(reclaim)s))
            ORDER BY completed_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
        RETURNING id, zip_key
        """,
        {"terminal": TERMINAL_RANK, "reclaim": ZIP_RECLAIM_MINUTES, "limit": ZIPS_PER_BATCH},
    ).fetchall()
    if rows:
        storage.delete([row["zip_key"] for row in rows])
        conn.execute(
            "UPDATE training_runs SET zip_key = NULL, zip_url = NULL, zip_delete_claimed_at = NULL"
            " WHERE id = ANY(%s)",
            ([row["id"] for row in rows],),
        )
    return len(rows)


def _prune_webhook_events(conn: psycopg.Connection) -> int:
    deleted = conn.execute(
        "DELETE FROM webhook_events WHERE received_at < now() - make_interval(hours => %s)",
        (WEBHOOK_EVENTS_KEPT_HOURS,),
    )
    return deleted.rowcount
