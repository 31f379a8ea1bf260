"""Posting events to the app, signed the Standard Webhooks way (as Replicate signs to us)."""

import logging
import time

import httpx
import psycopg

from lib.adapters.signatures import sign
from lib.app_events import outbox
from lib.settings import Settings

logger = logging.getLogger(__name__)

# An app that has not answered within this long has failed the attempt.
ATTEMPT_TIMEOUT_SECONDS = 10.0
USER_AGENT = "sselfie-events/1"


def send_due(
    conn: psycopg.Connection,
    *,
    settings: Settings,
    limit: int,
) -> dict[str, int]:
    """Claim up to `limit` due events and post each once; a count of how it went."""
    counts = {"sent": 0, "failed": 0}
    events = outbox.claim_due(conn, limit)
    if not events:
        return counts
    with httpx.Client(timeout=ATTEMPT_TIMEOUT_SECONDS) as http:
        for event in events:
            error = post(http, settings, event)
            if error is None:
                outbox.delivered(conn, event)
                counts["sent"] += 1
            else:
                outbox.failed(conn, event, error)
                counts["failed"] += 1
    return counts


def post(http: httpx.Client, settings: Settings, event: outbox.Claimed) -> str | None:
    """One attempt; None when the app answered 2xx, else what went wrong."""
    assert settings.app_webhook_url and settings.app_webhook_secret
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(settings.app_webhook_secret, event.id, timestamp, event.body),
    }
    try:
        response = http.post(settings.app_webhook_url, content=event.body, headers=headers)
    except httpx.TimeoutException:
        return f"no answer within {ATTEMPT_TIMEOUT_SECONDS:.0f} s"
    except httpx.HTTPError as error:
        return f"request failed ({type(error).__name__})"
    if not response.is_success:
        return f"answered HTTP {response.status_code}"
    return None
