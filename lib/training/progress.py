"""A model's training status and progress, as the frontend polls it every 5 s."""

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from lib.accounts import user_models
from lib.adapters.clients import Clients
from lib.errors import ApiError
from lib.settings import Settings
from lib.sync import orphans, polling, upstream
from lib.sync.statuses import TERMINAL_RANK

logger = logging.getLogger(__name__)

# How far this machine's clock may run behind the database's before a poll waits longer.
CLOCK_MARGIN = timedelta(seconds=5)


def get_progress(
    conn: psycopg.Connection,
    *,
    user_id: str,
    model_id: str,
    settings: Settings,
    clients: Clients,
) -> dict[str, Any]:
    """Progress from the database; Replicate is asked only when a live run has gone quiet."""
    row = user_models.find_model(conn, user_id=user_id, model_id=model_id)
    quiet = _may_be_quiet(row, settings.progress_poll_seconds) and polling.claim_quiet_rows(
        conn,
        "training_runs",
        ids=[row["run_id"]],
        after_seconds=settings.progress_poll_seconds,
        limit=1,
    )
    if quiet:
        _check_quiet_run(conn, quiet[0], settings, clients)
        row = user_models.find_model(conn, user_id=user_id, model_id=model_id)
    elif _may_have_orphan(row) and orphans.claim_search(
        conn, row["run_id"], after_seconds=settings.progress_poll_seconds
    ):
        _look_for_orphan(conn, str(row["run_id"]), clients)
        row = user_models.find_model(conn, user_id=user_id, model_id=model_id)
    model = user_models.model_json(row)
    steps = user_models.training_steps(row)
    return {"status": model["status"], "progress": model["progress"], **steps, "model": model}


def _may_be_quiet(row: dict[str, Any], seconds: int) -> bool:
    # The claim's UPDATE, on the database's clock, decides; this only spares its round trip on
    # the many polls of a run that is over or was plainly heard from just now.
    if row["status_rank"] >= TERMINAL_RANK or row["replicate_training_id"] is None:
        return False
    heard = row["last_event_at"] or row["created_at"]
    return datetime.now(UTC) - heard > timedelta(seconds=seconds) - CLOCK_MARGIN


def _check_quiet_run(
    conn: psycopg.Connection, run: dict[str, Any], settings: Settings, clients: Clients
) -> None:
    try:
        replicate = clients.replicate
    except ApiError as error:
        # No token here: the stored state is still the best answer; the cron keeps trying.
        logger.warning("quiet run not checked run=%s code=%s", run["id"], error.code)
        return
    polling.check_training(conn, run, replicate=replicate, settings=settings)


def _may_have_orphan(row: dict[str, Any]) -> bool:
    # The claim decides (its time window, once per interval); this spares its round trip on
    # the polls of every other model.
    return row["create_unanswered"] and row["replicate_training_id"] is None


def _look_for_orphan(conn: psycopg.Connection, run_id: str, clients: Clients) -> None:
    """Start gave up on Replicate's create lately: adopt the training if it exists after all."""
    try:
        replicate = clients.replicate
        training = orphans.training_of_run(replicate, run_id)
    except ApiError as error:  # the webhook or the cron finds it later
        logger.warning("orphan search failed run=%s code=%s", run_id, error.code)
        return
    if training and orphans.apply_training(conn, training, run_id=run_id)[0] == "cancel":
        upstream.cancel_quietly(replicate, training["id"])
