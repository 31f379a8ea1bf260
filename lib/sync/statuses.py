"""Replicate's statuses and their order: the state of a run or a generation only moves forward.

Replicate may end a job with a status this code does not know yet (`aborted` arrived in October
2025 for a `Cancel-After` deadline that passed before the job started). Such a status ends the
job as failed with a clear error, so the user's slot is freed and the model can be retried.
"""

import logging
from typing import Any

logger = logging.getLogger(__name__)

STATUS_RANK = {
    "pending": 0,
    "starting": 1,
    "processing": 2,
    "succeeded": 3,
    "failed": 3,
    "canceled": 3,
}
TERMINAL_RANK = 3
ABORTED_ERROR = "Replicate aborted it before it started (its deadline passed); retry it"


def unknown_status_error(status: str) -> str:
    """The error a job gets when Replicate ends it with a status we do not know."""
    return f"Replicate reported an unknown status ({status[:40]}); retry it"


def ranked(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot with a status we rank: `aborted` or any unknown status becomes `failed`."""
    status = snapshot.get("status")
    if status in STATUS_RANK:
        return snapshot
    if status == "aborted":
        error = ABORTED_ERROR
    else:
        error = unknown_status_error(str(status))
        logger.warning("unknown replicate status=%r object=%s", str(status)[:40], snapshot["id"])
    return {**snapshot, "status": "failed", "error": snapshot.get("error") or error}


def is_terminal(status: str) -> bool:
    return STATUS_RANK[status] == TERMINAL_RANK
