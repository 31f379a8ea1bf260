"""Single-flight polls of Replicate for rows whose webhooks have gone missing."""

from typing import Any

import psycopg
from psycopg import sql

# The rows that live state on Replicate: table -> the column holding Replicate's id.
POLLED_TABLES = {
    "training_runs": "replicate_training_id",
    "generations": "replicate_prediction_id",
}


def claim_quiet(
    conn: psycopg.Connection, table: str, *, ids: list[Any], after_seconds: int
) -> list[str]:
    """Replicate ids among `ids` that are live, silent for a while, and now claimed by us."""
    if not ids:
        return []
    rows = claim_quiet_rows(conn, table, ids=ids, after_seconds=after_seconds, limit=len(ids))
    return [row["replicate_id"] for row in rows]


def claim_quiet_rows(
    conn: psycopg.Connection,
    table: str,
    *,
    after_seconds: int,
    limit: int,
    ids: list[Any] | None = None,
) -> list[dict[str, Any]]:
    """Live rows (among `ids`, or any) silent for `after_seconds`, now claimed: id, replicate_id.

    Only the request whose UPDATE moves last_polled_at polls, so every instance together (and
    every overlapping cron run) asks Replicate at most once per interval per row, without any
    process memory; rows another transaction holds are skipped, not waited for.
    """
    query = sql.SQL(
        """
        UPDATE {table} t SET last_polled_at = now()
        FROM (
            SELECT id FROM {table}
            WHERE (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s::uuid[]))
              AND status_rank < 3 AND {replicate_id} IS NOT NULL
              AND coalesce(last_event_at, created_at) < now() - make_interval(secs => %(after)s)
              AND (last_polled_at IS NULL
                   OR last_polled_at < now() - make_interval(secs => %(after)s))
            ORDER BY created_at
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        ) quiet
        WHERE t.id = quiet.id
        RETURNING t.id, t.{replicate_id} AS replicate_id
        """
    ).format(table=sql.Identifier(table), replicate_id=sql.Identifier(POLLED_TABLES[table]))
    params = {"ids": ids, "after": after_seconds, "limit": limit}
    return conn.execute(query, params).fetchall()
