"""The outbox: each event is written in the transaction of its state change, then sent.

A sender claims due events in SQL (one sender per attempt, across every instance), posts them,
and records how it went: delivered, or due again later, or after the last attempt undelivered.
"""

import json
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

logger = logging.getLogger(__name__)

# The waits after each failed attempt: 8 attempts, the last about 23.6 hours after the first.
RETRY_DELAYS_SECONDS = (10, 60, 5 * 60, 30 * 60, 2 * 3600, 6 * 3600, 15 * 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
# A claimed attempt whose sender has not reported after this long died with its function: the
# event is due again (an attempt itself gives up after 10 s).
CLAIM_SECONDS = 60
KEEP_FINISHED_DAYS = 30

_thread = threading.local()


@dataclass(frozen=True)
class Claimed:
    id: str
    type: str
    body: bytes
    attempt: int


def add(conn: psycopg.Connection, *, type: str, subject: str, data: dict[str, Any]) -> bool:
    """Record an event in the caller's transaction; False when `subject` already made one."""
    body = {"type": type, "timestamp": _now_iso(), "data": data}
    row = conn.execute(
        "INSERT INTO app_events (id, type, subject, body) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (subject) DO NOTHING RETURNING id",
        (f"msg_{uuid.uuid4().hex}", type, subject, json.dumps(body, separators=(",", ":"))),
    ).fetchone()
    if row:
        _thread.recorded = True
        logger.info("app event recorded id=%s type=%s subject=%s", row["id"], type, subject)
    return row is not None


def take_recorded_hint() -> bool:
    """Whether this thread recorded an event since it last asked (its request's answer will
    send it at once instead of waiting for the next check)."""
    recorded = getattr(_thread, "recorded", False)
    _thread.recorded = False
    return recorded


def claim_due(conn: psycopg.Connection, limit: int) -> list[Claimed]:
    """Due events, each now claimed by this sender for one attempt."""
    _give_up_abandoned(conn)
    rows = conn.execute(
        """
        UPDATE app_events e SET attempts = e.attempts + 1,
                                next_attempt_at = now() + make_interval(secs => %(claim)s)
        FROM (
            SELECT id FROM app_events
            WHERE status = 'pending' AND attempts < %(max)s AND next_attempt_at <= now()
            ORDER BY next_attempt_at
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        ) due
        WHERE e.id = due.id
        RETURNING e.id, e.type, e.body, e.attempts
        """,
        {"claim": CLAIM_SECONDS, "max": MAX_ATTEMPTS, "limit": limit},
    ).fetchall()
    return [Claimed(r["id"], r["type"], r["body"].encode(), r["attempts"]) for r in rows]


def delivered(conn: psycopg.Connection, event: Claimed) -> None:
    """The app answered 2xx."""
    conn.execute(
        "UPDATE app_events SET status = 'delivered', delivered_at = now(), last_error = NULL"
        " WHERE id = %s AND status = 'pending'",
        (event.id,),
    )
    logger.info("app event delivered id=%s type=%s attempt=%d", event.id, event.type, event.attempt)


def failed(conn: psycopg.Connection, event: Claimed, error: str) -> None:
    """The attempt failed: due again after the next wait, or undelivered after the last one."""
    if event.attempt >= MAX_ATTEMPTS:
        conn.execute(
            "UPDATE app_events SET status = 'undelivered', last_error = %s"
            " WHERE id = %s AND status = 'pending'",
            (error, event.id),
        )
        _log_undelivered(event.id, event.type, error)
        return
    delay = RETRY_DELAYS_SECONDS[event.attempt - 1]
    conn.execute(
        "UPDATE app_events SET last_error = %s, next_attempt_at = now() + make_interval(secs => %s)"
        " WHERE id = %s AND status = 'pending'",
        (error, delay, event.id),
    )
    logger.warning(
        "app event attempt failed id=%s type=%s attempt=%d error=%s retry_in=%ds",
        event.id,
        event.type,
        event.attempt,
        error,
        delay,
    )


def prune(conn: psycopg.Connection) -> int:
    """Forget delivered and undelivered events after a while (the cron calls it)."""
    cursor = conn.execute(
        "DELETE FROM app_events WHERE status <> 'pending'"
        " AND created_at < now() - make_interval(days => %s)",
        (KEEP_FINISHED_DAYS,),
    )
    return cursor.rowcount


def _give_up_abandoned(conn: psycopg.Connection) -> None:
    # The last attempt was claimed and its sender died before saying how it went.
    rows = conn.execute(
        "UPDATE app_events SET status = 'undelivered'"
        " WHERE status = 'pending' AND attempts >= %s AND next_attempt_at <= now()"
        " RETURNING id, type, last_error",
        (MAX_ATTEMPTS,),
    ).fetchall()
    for row in rows:
        _log_undelivered(row["id"], row["type"], row["last_error"] or "the last attempt died")


def _log_undelivered(event_id: str, type: str, error: str) -> None:
    logger.error(
        "app event undelivered id=%s type=%s attempts=%d error=%s",
        event_id,
        type,
        MAX_ATTEMPTS,
        error,
    )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
