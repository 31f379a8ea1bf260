"""Stopping work on Replicate: the one way a training or a prediction is canceled upstream."""

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


def cancel_quietly(replicate: "Replicate", object_id: str, *, kind: str = "training") -> None:
    """Cancel a training or prediction we gave up on, so it stops billing; a failure is only
    logged (the cron lists recent ones and tries again)."""
    try:
        if kind == "training":
            cancel_training(replicate, object_id)
        else:
            replicate.cancel_prediction(object_id)
    except ApiError as error:
        logger.warning("cancel failed %s=%s code=%s", kind, object_id, error.code)
