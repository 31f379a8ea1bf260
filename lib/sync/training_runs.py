"""Applying what Replicate tells us about a training: webhooks, polls and the cron share it.

The state only moves forward (pending < starting < processing < terminal), progress and the
trainer's step never go down, a terminal state is never overwritten, and a row is written only
when something the user can see changes: the status or the percentage at once, the step with its
ETA alone at most once per poll interval.
"""

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from lib.accounts import spend
from lib.adapters.database import atomically
from lib.app_events import state_changes
from lib.sync import snapshots
from lib.sync.statuses import STATUS_RANK, TERMINAL_RANK, ranked
from lib.sync.trainer_logs import TrainerProgress, logs_tail, parse_progress

logger = logging.getLogger(__name__)

CANCELED_ERROR = "Training was canceled"
MAX_URL_LENGTH = 2048
# The frontend polls every 5 s, Replicate sends logs webhooks up to twice a second: a step that
# moved alone is worth one write per poll, not one per webhook.
STEP_WRITE_SECONDS = 5


@dataclass(frozen=True)
class Applied:
    run_id: str
    model_id: str
    status: str
    progress: int


@atomically  # the state change and the app's event are written together
def apply_snapshot(
    conn: psycopg.Connection, snapshot: dict[str, Any], *, run_id: str | None = None
) -> Applied | None:
    """Move the run forward to what the snapshot says; None when nothing changed."""
    snapshot = snapshots.as_training(ranked(snapshot))  # never `succeeded` without a version
    status = snapshot["status"]
    rank = STATUS_RANK[status]
    logs = _text(snapshot.get("logs"))
    trainer = parse_progress(logs)
    progress = _progress(status, trainer)
    row = conn.execute(
        """
        UPDATE training_runs r SET
            replicate_training_id = coalesce(r.replicate_training_id, %(rid)s),
            status = CASE WHEN %(rank)s > r.status_rank THEN %(status)s ELSE r.status END,
            status_rank = GREATEST(r.status_rank, %(rank)s),
            progress = GREATEST(r.progress, %(progress)s),
            step = GREATEST(r.step, %(step)s),
            total_steps = coalesce(%(total_steps)s, r.total_steps),
            eta_seconds = CASE WHEN %(step)s > coalesce(r.step, -1) THEN %(eta)s
                               ELSE r.eta_seconds END,
            error = CASE WHEN %(rank)s = %(terminal)s THEN %(error)s ELSE r.error END,
            logs_tail = coalesce(%(logs_tail)s, r.logs_tail),
            started_at = coalesce(r.started_at, %(started_at)s,
                                  CASE WHEN %(rank)s >= 2 THEN now() END),
            completed_at = CASE WHEN %(rank)s = %(terminal)s
                                THEN coalesce(%(completed_at)s, now()) END,
            last_event_at = now()
        WHERE (r.replicate_training_id = %(rid)s
               OR (r.id = %(run_id)s AND r.replicate_training_id IS NULL))
          AND r.status_rank < %(terminal)s
          AND (%(rank)s > r.status_rank OR %(progress)s > r.progress
               OR (%(step)s > coalesce(r.step, -1)
                   AND (r.step IS NULL
                        OR coalesce(r.last_event_at, r.created_at)
                           < now() - make_interval(secs => %(step_every)s))))
        RETURNING r.id, r.model_id, r.status, r.progress
        """,
        {
            "rid": snapshot["id"],
            "run_id": uuid_or_none(run_id),
            "status": status,
            "rank": rank,
            "terminal": TERMINAL_RANK,
            "progress": progress,
            "step": trainer.step if trainer else None,
            "total_steps": trainer.total_steps if trainer else None,
            "eta": trainer.eta_seconds if trainer else None,
            "step_every": STEP_WRITE_SECONDS,
            "error": _error_text(snapshot),
            "logs_tail": logs_tail(logs),
            "started_at": snapshots.moment(snapshot.get("started_at")),
            "completed_at": snapshots.moment(snapshot.get("completed_at")),
        },
    ).fetchone()
    if row is None:
        return None
    if STATUS_RANK[row["status"]] == TERMINAL_RANK:  # this snapshot ended the run
        spend.settle_training(conn, row["id"], snapshot.get("metrics"))
    if row["status"] == "succeeded":
        output = snapshot.get("output")
        _record_trained_version(conn, row["model_id"], output if isinstance(output, dict) else {})
    if STATUS_RANK[row["status"]] == TERMINAL_RANK:
        state_changes.training_ended(conn, row["id"])
    return Applied(str(row["id"]), str(row["model_id"]), row["status"], row["progress"])


@atomically
def end_run(
    conn: psycopg.Connection,
    run_id: Any,
    *,
    status: str,
    error: str,
    below_rank: int = TERMINAL_RANK,
    older_than_minutes: int = 0,
    create_unanswered: bool = False,
) -> bool:
    """End a run here (failed or canceled): the only way we end one ourselves. Nothing happens
    once it reached `below_rank`, or while it is younger than `older_than_minutes`.
    `create_unanswered` when Replicate may yet create its training (lib/sync/orphans.py)."""
    row = conn.execute(
        "UPDATE training_runs SET status = %s, status_rank = %s, error = %s, completed_at = now(),"
        " create_unanswered = %s WHERE id = %s AND status_rank < %s"
        " AND created_at <= now() - make_interval(mins => %s) RETURNING id",
        (status, TERMINAL_RANK, error, create_unanswered, run_id, below_rank, older_than_minutes),
    ).fetchone()
    if row is not None:
        spend.settle_training(conn, run_id, None)
        state_changes.training_ended(conn, row["id"])
    return row is not None


def is_training(conn: psycopg.Connection, replicate_id: str, run_hint: str | None) -> bool | None:
    """Whether the object is one of our trainings: True when a run records it, False when only
    the run named in its URL is ours (recording no training yet), None when neither."""
    row = conn.execute(
        "SELECT replicate_training_id IS NOT NULL AS recorded FROM training_runs"
        " WHERE replicate_training_id = %s OR (id = %s AND replicate_training_id IS NULL)"
        " ORDER BY 1 DESC LIMIT 1",
        (replicate_id, uuid_or_none(run_hint)),
    ).fetchone()
    return row["recorded"] if row else None


def _record_trained_version(conn: psycopg.Connection, model_id: Any, output: dict) -> None:
    # output.version is "owner/name:version_id" of the version the training pushed.
    destination, version_id = snapshots.trained_version(output.get("version")) or (None, None)
    weights = output.get("weights")
    if not (isinstance(weights, str) and _is_web_url(weights)):
        weights = None
    conn.execute(
        "UPDATE user_models SET replicate_model_id = coalesce(%s, replicate_model_id),"
        " replicate_version_id = %s, lora_weights_url = %s WHERE id = %s",
        (destination, version_id, weights, model_id),
    )


def _progress(status: str, trainer: TrainerProgress | None) -> int:
    if status == "succeeded":
        return 100
    return trainer.percent if trainer else 0


def _error_text(snapshot: dict[str, Any]) -> str | None:
    error = snapshot.get("error")
    if error is None:
        return CANCELED_ERROR if snapshot["status"] == "canceled" else None
    return _text(str(error))[:2000]


def _text(value: Any) -> str:
    return snapshots.clean_text(value) if isinstance(value, str) else ""


def _is_web_url(value: str) -> bool:
    return len(value) <= MAX_URL_LENGTH and value.startswith(("https://", "http://"))


def uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None
