"""The caller's models: lookups scoped by user, and the JSON shape the frontend reads."""

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg

from lib.accounts.costs import usd_json
from lib.errors import BadRequest, NotFound
from lib.sync.statuses import TERMINAL_RANK

MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE = 100, 20
MAX_CURSOR_LENGTH = 200

# Replicate's status of the latest run, as the frontend sees the model.
PUBLIC_STATUS = {
    "pending": "starting",
    "starting": "starting",
    "processing": "training",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "canceled",
}

MODEL_WITH_LATEST_RUN = """
    SELECT m.*, r.id AS run_id, r.status AS run_status, r.status_rank, r.progress, r.error,
           r.replicate_training_id, r.started_at, r.completed_at, r.last_event_at,
           r.last_polled_at, r.step, r.total_steps, r.eta_seconds, r.create_unanswered,
           r.trainer_version, r.left_out,
           (SELECT sum(cost_usd) FROM training_runs WHERE model_id = m.id) AS cost_usd
    FROM user_models m
    JOIN LATERAL (
        SELECT * FROM training_runs WHERE model_id = m.id ORDER BY created_at DESC LIMIT 1
    ) r ON true
"""


def find_model(conn: psycopg.Connection, *, user_id: str, model_id: str) -> dict[str, Any]:
    """The caller's model with its latest run; 404 for unknown ids and other users' ids alike."""
    if not is_uuid(model_id):
        raise NotFound("Model not found", code="model_not_found")
    row = conn.execute(
        MODEL_WITH_LATEST_RUN + " WHERE m.id = %s AND m.user_id = %s" + _NOT_DELETING,
        (model_id, user_id),
    ).fetchone()
    if row is None:
        raise NotFound("Model not found", code="model_not_found")
    return row


def list_models(
    conn: psycopg.Connection, *, user_id: str, limit: int, cursor: str | None
) -> dict[str, Any]:
    """One page of the caller's models, newest first, and the cursor of the next page."""
    after = _decode_cursor(cursor) if cursor else (None, None)
    rows = conn.execute(
        MODEL_WITH_LATEST_RUN
        + " WHERE m.user_id = %(user)s"
        + _NOT_DELETING
        + " AND (%(at)s::timestamptz IS NULL OR (m.created_at, m.id) < (%(at)s, %(id)s::uuid))"
        " ORDER BY m.created_at DESC, m.id DESC LIMIT %(limit)s",
        {"user": user_id, "at": after[0], "id": after[1], "limit": limit + 1},
    ).fetchall()
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "models": [model_json(row) for row in page],
        "nextCursor": _encode_cursor(page[-1]) if more else None,
    }


# A model whose deletion was asked for is gone for its owner at once, whatever is left to do.
_NOT_DELETING = " AND m.deletion_requested_at IS NULL"


def _encode_cursor(row: dict[str, Any]) -> str:
    raw = f"{row['created_at'].isoformat()}|{row['id']}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a page continues after; 400 for anything we did not hand out."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, model_id = raw.split("|")
        return datetime.fromisoformat(moment), str(uuid.UUID(model_id))
    except (ValueError, binascii.Error):
        raise BadRequest("The cursor is not valid", code="invalid_cursor") from None


def model_json(row: dict[str, Any]) -> dict[str, Any]:
    """The contract's `model` object."""
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "modelType": row["model_type"],
        "gender": row["gender"],
        "triggerWord": row["trigger_word"],
        "status": PUBLIC_STATUS[row["run_status"]],
        "progress": 100 if row["run_status"] == "succeeded" else row["progress"],
        **training_steps(row),
        "error": row["error"],
        "replicateModelId": row["replicate_model_id"],
        "replicateVersionId": row["replicate_version_id"],
        "loraWeightsUrl": row["lora_weights_url"],
        "createdAt": iso(row["created_at"]),
        "startedAt": iso(row["started_at"]),
        "completedAt": iso(row["completed_at"]),
        "trainerVersion": row["trainer_version"],  # the trainer version the latest run used
        "leftOut": row["left_out"],  # photos sent but not trained on: url, filename, reason
        "costUsd": usd_json(row["cost_usd"]),
    }


def training_steps(row: dict[str, Any]) -> dict[str, int | None]:
    """The trainer's step, its total and its estimate of the seconds left (null while the logs
    have not said; the estimate only while the run is live, 0 once it has succeeded)."""
    eta = row["eta_seconds"] if row["status_rank"] < TERMINAL_RANK else None
    return {
        "step": row["step"],
        "totalSteps": row["total_steps"],
        "etaSeconds": 0 if row["run_status"] == "succeeded" else eta,
    }


def iso(value: Any) -> str | None:
    """A timestamp as the frontend reads it: ISO-8601 in UTC with a Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
