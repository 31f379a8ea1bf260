"""The user's hand on a training after start: cancel it, or retry one that failed."""

import logging
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from lib.accounts import quotas, user_models
from lib.errors import BadRequest, Conflict
from lib.settings import Settings
from lib.sync import upstream
from lib.sync.statuses import STATUS_RANK, TERMINAL_RANK
from lib.sync.training_runs import CANCELED_ERROR, apply_snapshot, end_run
from lib.training.start import (
    MIN_IMAGES,
    PendingRun,
    StartedTraining,
    launch_run,
    reserve_spend,
    run_parameters,
    same_person,
)

if TYPE_CHECKING:
    from lib.adapters.replicate import Replicate
    from lib.adapters.storage.base import Storage

logger = logging.getLogger(__name__)

RETRYABLE = ("failed", "canceled")


def model_id_from(body: dict[str, Any]) -> str:
    """The `modelId` of a cancel or retry body."""
    model_id = body.get("modelId")
    if not isinstance(model_id, str) or not model_id.strip():
        raise BadRequest("modelId is required", code="invalid_body")
    return model_id.strip()


def cancel_training(
    conn: psycopg.Connection, *, user_id: str, model_id: str, replicate: "Replicate"
) -> dict[str, Any]:
    """Cancel the model's live run; the model as it now stands (status `canceled`)."""
    row = user_models.find_model(conn, user_id=user_id, model_id=model_id)
    if row["status_rank"] == TERMINAL_RANK:
        raise _not_cancelable(row)
    # A run still pending never reached Replicate: ending it here is the whole cancel (start
    # cancels the training upstream if its create call returns after this).
    ended_here = end_run(conn, row["run_id"], status="canceled", error=CANCELED_ERROR, below_rank=1)
    if not ended_here:
        _cancel_upstream(conn, row["run_id"], replicate)
    row = user_models.find_model(conn, user_id=user_id, model_id=model_id)
    if row["run_status"] != "canceled":
        raise _not_cancelable(row)  # it finished on its own first
    logger.info("training canceled run=%s", row["run_id"])
    return user_models.model_json(row)


def retry_training(
    conn: psycopg.Connection,
    *,
    user_id: str,
    model_id: str,
    replicate: "Replicate",
    storage: "Storage",
    settings: Settings,
) -> StartedTraining:
    """Train a failed or canceled model again: same trigger word and images, a new run."""
    row = user_models.find_model(conn, user_id=user_id, model_id=model_id)
    if row["run_status"] not in RETRYABLE:
        raise Conflict(
            f"Only a failed or canceled training can be retried; this one is "
            f"{user_models.PUBLIC_STATUS[row['run_status']]}",
            code="not_retryable",
        )
    uploads = _stored_images(conn, row["run_id"])
    if len(uploads) < MIN_IMAGES:
        raise Conflict(
            "The images of this model are no longer stored; start a new training",
            code="images_missing",
        )
    # Checked against the trainer's schema before the run is written (503 config_invalid).
    parameters = run_parameters(settings, replicate)
    same = same_person(uploads, storage)
    run = _insert_pending_run(conn, row, same.kept, parameters, settings, same.left_out)
    training_id = launch_run(conn, run, replicate=replicate, storage=storage, settings=settings)
    logger.info("training retried model=%s run=%s", run.model_id, run.id)
    return StartedTraining(run.model_id, training_id, run.trigger_word, run.left_out)


def _cancel_upstream(conn: psycopg.Connection, run_id: Any, replicate: "Replicate") -> None:
    run = conn.execute(
        "SELECT replicate_training_id FROM training_runs WHERE id = %s AND status_rank < %s",
        (run_id, TERMINAL_RANK),
    ).fetchone()
    if run is None:
        return  # it ended meanwhile
    snapshot = upstream.cancel_training(replicate, run["replicate_training_id"])
    if snapshot is None:
        # Replicate has no such training any more: nothing runs, so it is canceled.
        end_run(conn, run_id, status="canceled", error=CANCELED_ERROR)
        return
    if STATUS_RANK[snapshot["status"]] < TERMINAL_RANK:
        # Replicate accepted the cancel; the object may show the final state (and the seconds
        # it will bill) a moment later, so its metrics so far are not the final ones.
        snapshot = {**snapshot, "status": "canceled", "metrics": None}
    apply_snapshot(conn, snapshot)


def _not_cancelable(row: dict[str, Any]) -> Conflict:
    status = user_models.PUBLIC_STATUS[row["run_status"]]
    return Conflict(f"The training already ended ({status})", code="not_cancelable")


def _stored_images(conn: psycopg.Connection, run_id: Any) -> list[dict[str, Any]]:
    """The previous run's uploads that still exist, in their original order."""
    return conn.execute(
        """
        SELECT u.id, u.url, u.storage_key, u.filename
        FROM training_runs r
        CROSS JOIN LATERAL unnest(r.upload_ids) WITH ORDINALITY AS used(upload_id, position)
        JOIN selfie_uploads u ON u.id = used.upload_id AND u.user_id = r.user_id
        WHERE r.id = %s
        ORDER BY used.position
        """,
        (run_id,),
    ).fetchall()


def _insert_pending_run(
    conn: psycopg.Connection,
    model: dict[str, Any],
    uploads: list[dict[str, Any]],
    parameters: dict[str, object],
    settings: Settings,
    left_out: list[dict[str, str]],
) -> PendingRun:
    try:
        with conn.transaction():
            # A retry costs a training like a start does; both count against the same limit.
            quotas.reserve_training(conn, model["user_id"], settings.training_daily_limit)
            run = conn.execute(
                "INSERT INTO training_runs (model_id, user_id, parameters, upload_ids, left_out)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (
                    model["id"],
                    model["user_id"],
                    Jsonb(parameters),
                    [u["id"] for u in uploads],
                    Jsonb(left_out),
                ),
            ).fetchone()
            reserve_spend(conn, model["user_id"], run["id"], parameters, settings)
    except psycopg.errors.UniqueViolation:
        # training_runs_one_active_per_user: another retry or start got there first.
        raise Conflict("A training is already in progress", code="training_in_progress") from None
    return PendingRun(
        str(run["id"]),
        str(model["id"]),
        model["user_id"],
        model["trigger_word"],
        model["gender"],
        uploads,
        left_out,
    )
