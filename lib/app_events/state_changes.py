"""What follows a terminal state change, inside its transaction: the app's event, and a pack
run's count.

The sync core calls these right after the conditional UPDATE that ended a run or a generation
(only when that UPDATE changed the row), so whichever path applied the change, it is followed
once. The event's subject is unique in the outbox too.
"""

from typing import Any

import psycopg

from lib.accounts import user_models
from lib.app_events import outbox
from lib.settings import get_settings
from lib.studio import pack_runs
from lib.studio.gallery import generation_json

TRAINING_EVENTS = {
    "completed": "training.completed",
    "failed": "training.failed",
    "canceled": "training.canceled",
}


def training_ended(conn: psycopg.Connection, run_id: Any) -> None:
    """Record `training.*` with the model as progress shows it, when events are configured."""
    if not events_enabled():
        return
    row = conn.execute(user_models.MODEL_WITH_LATEST_RUN + " WHERE r.id = %s", (run_id,)).fetchone()
    if row is None:
        return  # an older run of the model: its latest run is what the app knows
    model = user_models.model_json(row)
    outbox.add(
        conn,
        type=TRAINING_EVENTS[model["status"]],
        subject=f"training_run:{run_id}",
        data={**model, "userId": row["user_id"]},
    )


def generation_ended(conn: psycopg.Connection, generation_id: Any) -> None:
    """Count the generation in its pack run, and record `generation.*` (and `pack.completed`
    when it was the run's last) when events are configured."""
    row = conn.execute("SELECT * FROM generations WHERE id = %s", (generation_id,)).fetchone()
    succeeded = row["status"] == "succeeded"
    completed = row["pack_run_id"] and pack_runs.count_ended(
        conn, row["pack_run_id"], failed=not succeeded
    )
    if not events_enabled():
        return
    outbox.add(
        conn,
        type="generation.succeeded" if succeeded else "generation.failed",
        subject=f"generation:{generation_id}",
        data={**generation_json(row), "userId": row["user_id"]},
    )
    if completed:
        outbox.add(
            conn,
            type="pack.completed",
            subject=f"pack_run:{completed['id']}",
            data={**pack_runs.pack_run_json(completed), "userId": completed["user_id"]},
        )


def events_enabled() -> bool:
    """Whether the app receives events (APP_WEBHOOK_URL set); unset, nothing is recorded."""
    # The process-wide settings: terminal transitions are reached from many callers that carry
    # no settings, and the answer is the same for the whole process.
    return get_settings().app_webhook_url is not None
