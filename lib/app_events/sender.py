"""Sending due events once an answer has gone out: any function of any instance may do it.

`endpoint(view, ..., after=send_due_events)` runs it after the answer, so a delivery never
delays or fails the request that caused it. A request that recorded an event sends it at once;
otherwise an instance looks for due retries at most every CHECK_EVERY_SECONDS (the cron too).
"""

import logging
import threading
import time

from lib.adapters import database
from lib.app_events import outbox
from lib.errors import ApiError, ConfigError
from lib.settings import get_settings

logger = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 10.0
# Bounded, so one answer's function is not kept alive for long: 5 attempts of at most 10 s.
EVENTS_PER_ANSWER = 5

_last_check = float("-inf")
_check_lock = threading.Lock()


def send_due_events() -> None:
    """Post what is due, when events are configured and it is this instance's turn to look."""
    try:
        settings = get_settings()
    except ConfigError:
        return  # the answer already named the broken variable
    if settings.app_webhook_url is None or not _time_to_look():
        return
    from lib.app_events import delivery  # httpx: loaded only once something may be due

    try:
        with database.connect(settings) as conn:
            delivery.send_due(conn, settings=settings, limit=EVENTS_PER_ANSWER)
    except ApiError as error:
        # Nothing is lost: the events wait in the outbox for the next look or the cron.
        logger.warning("app events not sent code=%s", error.code)


def _time_to_look() -> bool:
    global _last_check
    recorded_here = outbox.take_recorded_hint()
    with _check_lock:
        now = time.monotonic()
        if not recorded_here and now - _last_check < CHECK_EVERY_SECONDS:
            return False
        _last_check = now
        return True
