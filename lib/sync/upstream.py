"""Stopping work on Replicate: the one way a training is canceled upstream."""

import logging
from typing import TYPE_CHECKING, Any

from lib.errors import ApiError, NotFoundUpstream
from lib.sync.statuses import ranked

if TYPE_CHECKING:
    from lib.adapters.replicate import Replicate

logger = logging.getLogger(__name__)


def cancel_training(replicate: "Replicate", training_id: str) -> dict[str, Any] | None:
    """Ask Replicate to cancel; its snapshot, or None when Replicate no longer knows it (then
    nothing runs). Any other failure raises."""
    try:
        return ranked(replicate.cancel_training(training_id))
    except NotFoundUpstream:
        logger.info("cancel: training unknown upstream training=%s", training_id)
        return None


def cancel_quietly(replicate: "Replicate", training_id: str) -> None:
    """Cancel a training we gave up on, so it never bills; a failure is only logged."""
    try:
        cancel_training(replicate, training_id)
    except ApiError as error:
        logger.warning("cancel failed training=%s code=%s", training_id, error.code)
