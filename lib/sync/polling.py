"""Asking Replicate about rows whose webhooks have gone missing: single-flight claims, then the
same application of its answer as a webhook's.

The progress endpoint polls one quiet run, the gallery its quiet generations, the cron all of
them; each asks Replicate at most once per interval per row, however many instances poll.
"""

import logging
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from lib.errors import ApiError, NotFoundUpstream
from lib.settings import Settings
from lib.sync import generations, snapshots, upstream
from lib.sync.statuses import STATUS_RANK, TERMINAL_RANK
from lib.sync.training_runs import apply_snapshot, end_run

if TYPE_CHECKING:  # both pull in httpx; the progress function must not pay for them
    from lib.adapters.replicate import Replicate
    from lib.adapters.storage.base import Storage

logger = logging.getLogger(__name__)

NOT_FOUND_ERROR = "Replicate no longer knows this training (it answered 404); retry it"

# The rows that live state on Replicate: table -> the column holding Replicate's id.
POLLED_TABLES = {
    "training_runs": "replicate_training_id",
    "generations": "replicate_prediction_id",
}


def claim_quiet(
    conn: psycopg.Connection, table: str, *, ids: list[Any], after_seconds: int
) -> list[str]:
    """Replicate ids among `ids` that are live, silent for a while, and now claimed by us."""
    if not ids:
        return []
    rows = claim_quiet_rows(conn, table, ids=ids, after_seconds=after_seconds, limit=len(ids))
    return [row["replicate_id"] for row in rows]


def claim_quiet_rows(
    conn: psycopg.Connection,
    table: str,
    *,
    after_seconds: int,
    limit: int,
    ids: list[Any] | None = None,
) -> list[dict[str, Any]]:
    """Live rows (among `ids`, or any) silent for `after_seconds`, now claimed: id, replicate_id.

    Only the request whose UPDATE moves last_polled_at polls, so every instance together (and
    every overlapping cron run) asks Replicate at most once per interval per row, without any
    process memory; rows another transaction holds are skipped, not waited for.
    """
    query = sql.SQL(
        """
        UPDATE {table} t SET last_polled_at = now()
        FROM (
            SELECT id FROM {table}
            WHERE (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s::uuid[]))
              AND status_rank < %(terminal)s AND {replicate_id} IS NOT NULL
              AND coalesce(last_event_at, created_at) < now() - make_interval(secs => %(after)s)
              AND (last_polled_at IS NULL
                   OR last_polled_at < now() - make_interval(secs => %(after)s))
            ORDER BY created_at
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        ) quiet
        WHERE t.id = quiet.id
        RETURNING t.id, t.{replicate_id} AS replicate_id
        """
    ).format(table=sql.Identifier(table), replicate_id=sql.Identifier(POLLED_TABLES[table]))
    params = {"ids": ids, "after": after_seconds, "limit": limit, "terminal": TERMINAL_RANK}
    return conn.execute(query, params).fetchall()


def check_training(
    conn: psycopg.Connection, run: dict[str, Any], *, replicate: "Replicate", settings: Settings
) -> str:
    """Ask Replicate about one claimed run and apply its answer; return the outcome."""
    training_id = run["replicate_id"]
    try:
        snapshot = snapshots.from_object(replicate.get_training(training_id))
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
        upstream.cancel_quietly(replicate, training_id)  # so it never starts, and never bills
        return "failedStartTimeout"
    logger.info("checked quiet training=%s status=%s", training_id, snapshot["status"])
    return "recovered" if applied else "unchanged"


def start_timeout_error(minutes: int) -> str:
    """The error a run gets when Replicate kept it `starting` for too long."""
    return f"Replicate did not start the training within {minutes} minutes; retry it"


def _fail_if_start_overdue(conn: psycopg.Connection, run_id: Any, settings: Settings) -> bool:
    """Fail a run still starting (or pending) past the limit; True when this call did."""
    minutes = settings.training_start_timeout_minutes
    failed = end_run(
        conn,
        run_id,
        status="failed",
        error=start_timeout_error(minutes),
        below_rank=STATUS_RANK["processing"],
        older_than_minutes=minutes,
    )
    if failed:
        logger.warning("training still starting after %s min, failed run=%s", minutes, run_id)
    return failed


def poll_predictions(
    conn: psycopg.Connection,
    prediction_ids: list[str],
    *,
    replicate: "Replicate",
    storage: "Storage",
) -> None:
    """Ask Replicate about claimed quiet predictions and apply what it says."""
    for prediction_id in prediction_ids:
        try:
            snapshot = snapshots.from_object(replicate.get_prediction(prediction_id))
        except ApiError as error:
            # The stored state is still the best answer; the next quiet interval tries again.
            logger.warning("poll failed prediction=%s code=%s", prediction_id, error.code)
            continue
        generation = generations.find_generation(conn, prediction_id, None)
        if generation is None:
            continue
        _, copy = generations.apply_prediction(conn, generation, snapshot)
        if copy:
            generations.copy_outputs(conn, copy, replicate=replicate, storage=storage)
        logger.info("polled quiet prediction=%s", prediction_id)
