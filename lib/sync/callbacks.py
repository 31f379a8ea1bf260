"""The URL Replicate calls back: the one builder for trainings and generations alike."""

import logging
from functools import cache

from lib.settings import Settings, is_loopback_url

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/webhooks/replicate"


def replicate_webhook_url(settings: Settings, **params: str) -> str | None:
    """Where Replicate should report on a job, or None when it could never reach us.

    `params` name our row (`run=` or `generation=`) so a delivery that beats the create call's
    answer still finds it.
    """
    url = settings.callback_url(WEBHOOK_PATH, **params)
    if url and is_loopback_url(url) and not is_loopback_url(settings.replicate_base_url):
        url = None  # the real Replicate cannot call this machine
    if url is None:
        _warn_no_webhooks()
    return url


@cache
def _warn_no_webhooks() -> None:
    logger.warning(
        "no public URL reaches this deployment (set PUBLIC_BASE_URL): jobs start without a"
        " webhook; progress polls, the gallery and GET /api/cron/reconcile pick up their state"
    )
