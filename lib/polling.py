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
    """Replicate ids among `ids` that are live, silent for a while, and now claimed by us.

    Only the request whose UPDATE moves last_polled_at polls, so every instance together asks
    Replicate at most once per interval per row, without any process memory.
    """
    if not ids:
        return []
    query = sql.SQL(
        """
        UPDATE {table} SET last_polled_at = now()
        WHERE id = ANY(%(ids)s) AND status_rank < 3 AND {replicate_id} IS NOT NULL
          AND coalesce(last_event_at, created_at) < now() - make_interval(secs => %(after)s)
          AND (last_polled_at IS NULL OR last_polled_at < now() - make_interval(secs => %(after)s))
        RETURNING {replicate_id} AS replicate_id
        """
    ).format(table=sql.Identifier(table), replicate_id=sql.Identifier(POLLED_TABLES[table]))
    rows = conn.execute(query, {"ids": ids, "after": after_seconds}).fetchall()
    return [row["replicate_id"] for row in rows]
