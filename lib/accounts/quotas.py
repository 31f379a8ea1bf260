"""Daily limits that protect the bill: usage counted over a rolling 24 hours, in PostgreSQL.

Each reservation runs inside the caller's transaction, beside the row it pays for: a per-user
advisory lock makes concurrent requests count one after another, and a rollback gives the
reservation back. Usage rows are kept apart from models, so deleting a model does not reset
the count.
"""

import math
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import pq

from lib.errors import TooManyRequests

WINDOW = timedelta(hours=24)


def reserve_training(conn: psycopg.Connection, user_id: str, limit: int) -> None:
    """Count one training against the user's daily limit, or raise 429 quota_exceeded."""
    _reserve(conn, user_id, "training", limit, 1, "trainings")


def reserve_generation(conn: psycopg.Connection, user_id: str, limit: int, count: int) -> None:
    """Count `count` generated images against the user's daily limit, or raise 429."""
    _reserve(conn, user_id, "generation", limit, count, "images")


def used_today(conn: psycopg.Connection, user_id: str) -> dict[str, int]:
    """What the user used in the window, by kind (`training`, `generation`)."""
    rows = conn.execute(
        "SELECT kind, sum(amount) AS used FROM usage_events"
        " WHERE user_id = %s AND created_at >= now() - %s::interval GROUP BY kind",
        (user_id, WINDOW),
    ).fetchall()
    return {row["kind"]: int(row["used"]) for row in rows}


def prune(conn: psycopg.Connection) -> int:
    """Forget usage older than the window (the cron calls it); return how many rows went."""
    cursor = conn.execute(
        "DELETE FROM usage_events WHERE created_at < now() - %s::interval", (WINDOW,)
    )
    return cursor.rowcount


def _reserve(
    conn: psycopg.Connection, user_id: str, kind: str, limit: int, amount: int, noun: str
) -> None:
    if conn.info.transaction_status != pq.TransactionStatus.INTRANS:
        raise RuntimeError("reserve_* must run inside conn.transaction()")
    # Held until commit or rollback: a second request of this user waits here, then counts
    # what the first one committed. Never check-then-insert without it.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"quota:{kind}:{user_id}",))
    conn.execute(
        "DELETE FROM usage_events WHERE user_id = %s AND kind = %s"
        " AND created_at < now() - %s::interval",
        (user_id, kind, WINDOW),
    )
    rows = conn.execute(
        "SELECT amount, created_at, now() AS now FROM usage_events"
        " WHERE user_id = %s AND kind = %s ORDER BY created_at",
        (user_id, kind),
    ).fetchall()
    used = sum(row["amount"] for row in rows)
    if used + amount > limit:
        raise _exceeded(rows, used + amount - limit, limit, noun)
    conn.execute(
        "INSERT INTO usage_events (user_id, kind, amount) VALUES (%s, %s, %s)",
        (user_id, kind, amount),
    )


def _exceeded(rows: list[dict], excess: int, limit: int, noun: str) -> TooManyRequests:
    message = f"You can use at most {limit} {noun} per 24 hours"
    reset = _reset_time(rows, excess)
    if reset is None:  # more than the whole limit was asked for: waiting will not help
        return TooManyRequests(message, code="quota_exceeded")
    now = rows[0]["now"]
    retry_after = max(1, math.ceil((reset - now).total_seconds()))
    return TooManyRequests(
        f"{message}; the limit resets at {_iso(reset)}",
        code="quota_exceeded",
        headers={"Retry-After": str(retry_after)},
    )


def _reset_time(rows: list[dict], excess: int) -> datetime | None:
    """When enough of the oldest usage leaves the window to make room for the request."""
    freed = 0
    for row in rows:
        freed += row["amount"]
        if freed >= excess:
            return row["created_at"] + WINDOW
    return None


def _iso(moment: datetime) -> str:
    """UTC, rounded up to the second (never earlier than the real reset)."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
