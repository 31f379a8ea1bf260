"""Trainings and predictions that run on Replicate while no row of ours records them.

A create call we gave up on (a timeout, a lost connection, a function that died mid-call) may
still create the object upstream, where it bills while nothing shows it. Found by its webhook
(`?run=`, `?generation=`), by the progress poll of its model or by the cron listing the account's
recent trainings and predictions, it is adopted when the row it belongs to failed only because
the create answer never came (`create_unanswered`) and nothing has replaced that row since (no
newer run of the model, no other live training of the user): the row is put back to `pending`
with the object's id, so the caller's next apply shows the real progress and result. Otherwise
a live one is canceled at once.
"""

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from lib.errors import BadRequest
from lib.sync import generations, snapshots, training_runs
from lib.sync.polling import POLLED_TABLES

if TYPE_CHECKING:  # pulls in httpx; the webhook function must not pay for it
    from lib.adapters.replicate import Replicate

logger = logging.getLogger(__name__)

LIVE = frozenset({"starting", "processing"})
# The run a training belongs to, from its input ZIP's key (`…/trainings/<run id>.zip`).
RUN_IN_ZIP_URL = re.compile(
    r"/trainings/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)
# How far back the cron looks: longer than the gap between two daily (Hobby) cron runs.
LOOKBACK = timedelta(hours=48)
# How long after a create went unanswered the progress endpoint still looks for its training.
ORPHAN_SEARCH = timedelta(minutes=30)

_ADOPT_RUN = """
    UPDATE training_runs r SET status = 'pending', status_rank = 0, error = NULL,
        completed_at = NULL, replicate_training_id = %(object_id)s, create_unanswered = false,
        last_event_at = now()
    WHERE r.id = %(row_id)s AND r.status = 'failed' AND r.create_unanswered
      AND r.replicate_training_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM training_runs later
                      WHERE later.model_id = r.model_id AND later.created_at > r.created_at)
    RETURNING r.id
"""
_ADOPT_GENERATION = """
    UPDATE generations g SET status = 'pending', status_rank = 0, error = NULL,
        completed_at = NULL, replicate_prediction_id = %(object_id)s, create_unanswered = false,
        last_event_at = now()
    WHERE g.id = %(row_id)s AND g.status = 'failed' AND g.create_unanswered
      AND g.replicate_prediction_id IS NULL
    RETURNING g.id
"""


def apply_training(
    conn: psycopg.Connection, snapshot: dict[str, Any], *, run_id: Any, recorded: bool = False
) -> tuple[str, training_runs.Applied | None]:
    """Apply a training reported for a run (its webhook's `?run=`, the progress poll, the
    cron's listing): the outcome — applied, unchanged, adopted, or cancel (the caller cancels
    it upstream, outside any transaction) — and what was applied."""
    applied = training_runs.apply_snapshot(conn, snapshot, run_id=run_id)
    if applied:
        return "applied", applied
    if recorded:
        return "unchanged", None
    outcome = _settle_training(conn, snapshot, training_runs.uuid_or_none(run_id))
    if outcome == "adopted":
        return outcome, training_runs.apply_snapshot(conn, snapshot)
    return outcome, None


def apply_prediction(
    conn: psycopg.Connection, generation: dict[str, Any], snapshot: dict[str, Any]
) -> tuple[str, generations.PendingCopy | None]:
    """Apply a prediction reported for a generation (its webhook's `?generation=`, the cron's
    listing): the outcome as apply_training's, and the images to copy."""
    changed, copy = generations.apply_prediction(conn, generation, snapshot)
    if changed or copy:  # a copy: the images of a recorded prediction still to be stored
        return ("applied" if changed else "unchanged"), copy
    outcome = _settle_prediction(conn, snapshot, generation["id"])
    if outcome == "adopted":
        generation = generations.find_generation(conn, snapshot["id"], None)
        return outcome, generations.apply_prediction(conn, generation, snapshot)[1]
    return outcome, None


def _settle_training(conn: psycopg.Connection, snapshot: dict[str, Any], run_id: Any) -> str:
    row = conn.execute(
        "SELECT bool_or(replicate_training_id = %s) AS recorded, bool_or(id = %s) AS named"
        " FROM training_runs WHERE replicate_training_id = %s OR id = %s",
        (snapshot["id"], run_id, snapshot["id"], run_id),
    ).fetchone()
    if row["recorded"] or not row["named"]:
        return "unchanged"  # recorded, or naming no run of ours: never cancel what is not ours
    if _adopt(conn, _ADOPT_RUN, row_id=run_id, object_id=snapshot["id"]):
        logger.warning("orphan training adopted run=%s training=%s", run_id, snapshot["id"])
        return "adopted"
    return _cancel_if_live(snapshot, run_id)


def _settle_prediction(
    conn: psycopg.Connection, snapshot: dict[str, Any], generation_id: Any
) -> str:
    recorded = conn.execute(
        "SELECT 1 FROM generations WHERE replicate_prediction_id = %s", (snapshot["id"],)
    ).fetchone()
    if recorded:
        return "unchanged"
    if _adopt(conn, _ADOPT_GENERATION, row_id=generation_id, object_id=snapshot["id"]):
        logger.warning(
            "orphan prediction adopted generation=%s prediction=%s", generation_id, snapshot["id"]
        )
        return "adopted"
    return _cancel_if_live(snapshot, generation_id)


def unrecorded_trainings(
    conn: psycopg.Connection, replicate: "Replicate", *, pages: int
) -> list[tuple[str, dict[str, Any]]]:
    """(run id, training) for each recent training of ours no run records, newest first."""
    since = datetime.now(UTC) - LOOKBACK
    listed = [t for t in replicate.recent_trainings(pages=pages) if _created_after(t, since)]
    recorded = _recorded(conn, "training_runs", [t["id"] for t in listed])
    found = []
    for training in listed:
        run_id = run_of(training.get("input"))
        if run_id and training["id"] not in recorded:
            try:
                found.append((run_id, snapshots.from_object(training)))
            except BadRequest:
                continue  # not an object we could ever apply
    return found


def claim_search(conn: psycopg.Connection, run_id: Any, *, after_seconds: int) -> bool:
    """Whether this caller should look upstream for the training of a run whose create went
    unanswered lately: once per `after_seconds` across all instances, for ORPHAN_SEARCH."""
    row = conn.execute(
        """
        UPDATE training_runs SET last_polled_at = now()
        WHERE id = %(id)s AND status = 'failed' AND create_unanswered
          AND replicate_training_id IS NULL
          AND completed_at > now() - make_interval(secs => %(window)s)
          AND (last_polled_at IS NULL
               OR last_polled_at < now() - make_interval(secs => %(after)s))
        RETURNING id
        """,
        {"id": run_id, "window": ORPHAN_SEARCH.total_seconds(), "after": after_seconds},
    ).fetchone()
    return row is not None


def training_of_run(replicate: "Replicate", run_id: Any) -> dict[str, Any] | None:
    """The run's training among the account's latest (one page), as a snapshot."""
    for training in replicate.recent_trainings(pages=1):
        if run_of(training.get("input")) == str(run_id):
            return snapshots.from_object(training)
    return None


def unrecorded_predictions(
    conn: psycopg.Connection, replicate: "Replicate", *, pages: int
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(generation, prediction) for each recent prediction no generation records, matched to
    the latest unrecorded generation of the same trained version with the same input."""
    since = datetime.now(UTC) - LOOKBACK
    listed = [p for p in replicate.recent_predictions(pages=pages) if _created_after(p, since)]
    recorded = _recorded(conn, "generations", [p["id"] for p in listed])
    found = []
    for prediction in listed:
        if prediction["id"] in recorded or not isinstance(prediction["input"], dict):
            continue
        generation = conn.execute(
            """
            SELECT g.id, g.user_id, g.input, g.status_rank FROM generations g
            JOIN user_models m ON m.id = g.model_id
            WHERE g.replicate_prediction_id IS NULL AND m.replicate_version_id = %s
              AND g.input = %s AND g.created_at > %s
            ORDER BY g.created_at DESC LIMIT 1
            """,
            (prediction["version"], Jsonb(prediction["input"]), since),
        ).fetchone()
        if generation:
            try:
                found.append((generation, snapshots.from_object(prediction)))
            except BadRequest:
                continue
    return found


def run_of(training_input: Any) -> str | None:
    """The run whose ZIP a training's input names, if any."""
    images = training_input.get("input_images") if isinstance(training_input, dict) else None
    match = RUN_IN_ZIP_URL.search(images) if isinstance(images, str) else None
    return match.group(1) if match else None


def _adopt(conn: psycopg.Connection, query: str, *, row_id: Any, object_id: str) -> bool:
    try:
        with conn.transaction():
            row = conn.execute(query, {"row_id": row_id, "object_id": object_id}).fetchone()
            return row is not None
    except psycopg.errors.UniqueViolation:
        # training_runs_one_active_per_user: the user started another training meanwhile.
        return False


def _cancel_if_live(snapshot: dict[str, Any], row_id: Any) -> str:
    if snapshot["status"] not in LIVE:
        return "unchanged"  # over: it bills nothing more
    logger.warning("orphan to cancel row=%s id=%s", row_id, snapshot["id"])
    return "cancel"


def _created_after(job: dict[str, Any], since: datetime) -> bool:
    created = snapshots.moment(job.get("created_at"))
    return created is None or created >= since


def _recorded(conn: psycopg.Connection, table: str, ids: list[str]) -> set[str]:
    """Which of these Replicate ids a row of `table` records."""
    query = sql.SQL("SELECT {column} AS id FROM {table} WHERE {column} = ANY(%s)").format(
        column=sql.Identifier(POLLED_TABLES[table]), table=sql.Identifier(table)
    )
    return {row["id"] for row in conn.execute(query, (ids,)).fetchall()}
