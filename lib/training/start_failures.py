"""A start (or retry) that broke after writing its pending run: end it, clean up, say why.

Whatever broke — the database, storage, Replicate, a bug — the run ends as failed on a
connection of its own (the request's may be the thing that died), the ZIP it stored is deleted,
a training Replicate created that we could not record is canceled, and the user's one training
slot is free again. When even that connection fails, the cron records or cancels the training
and fails the run after PENDING_ABANDONED_MINUTES, then deletes its ZIP (its key is recorded
before the upload).
"""

import logging
from typing import TYPE_CHECKING, Any

import psycopg

from lib.adapters import database
from lib.errors import ApiError, BadGateway, ServiceUnavailable
from lib.settings import Settings
from lib.sync import upstream
from lib.sync.training_runs import end_run

if TYPE_CHECKING:
    from lib.adapters.replicate import Replicate
    from lib.adapters.storage.base import Storage

logger = logging.getLogger(__name__)

# Replicate may have created the training though its answer never reached us.
UNANSWERED_CODES = frozenset({"replicate_timeout", "replicate_unreachable"})


def end_failed_start(
    run_id: str,
    error: Exception,
    *,
    zip_key: str,
    created: dict[str, Any] | None,
    replicate: "Replicate",
    storage: "Storage",
    settings: Settings,
) -> ApiError:
    """End the run after `error`; the contract's 502/503/504 error to answer with."""
    answer = answer_for(error, doing="starting the training")
    logger.warning("start failed run=%s code=%s", run_id, answer.code)
    try:
        storage.delete([zip_key])
    except Exception as delete_error:  # the cron deletes it with the run's other leftovers
        logger.warning("zip not deleted run=%s error=%s", run_id, type(delete_error).__name__)
    unanswered = created is None and answer.code in UNANSWERED_CODES
    try:
        with database.connect_fresh(settings) as conn:
            end_run(
                conn, run_id, status="failed", error=answer.message, create_unanswered=unanswered
            )
    except (ApiError, psycopg.Error):
        logger.error("failed start not recorded run=%s (the cron fails it)", run_id)
    if created is not None:  # after the run ended: its `canceled` webhook must not end it first
        upstream.cancel_quietly(replicate, created["id"])
    return answer


def answer_for(error: Exception, *, doing: str) -> ApiError:
    """The contract's error for whatever broke while `doing` something (a request that wrote
    its row first): itself when it is one, else 503 for the database, 502 for a bug."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, psycopg.Error):
        return ServiceUnavailable(
            f"The database connection was lost while {doing}; try again",
            code="database_unavailable",
        )
    logger.error("failed while %s error=%s", doing, type(error).__name__, exc_info=error)
    return BadGateway(f"Something failed while {doing}; try again", code="start_failed")
