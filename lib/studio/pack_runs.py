"""Pack runs: how many of a pack's generations have ended, and the JSON the app reads."""

from typing import Any

import psycopg

from lib.accounts import user_models
from lib.accounts.costs import usd_json

# A pack run's cost: what its generations cost so far (null until one is known).
WITH_COST = (
    "pack_runs.*, (SELECT sum(g.cost_usd) FROM generations g"
    " WHERE g.pack_run_id = pack_runs.id) AS cost_usd"
)


def count_ended(
    conn: psycopg.Connection, pack_run_id: Any, *, failed: bool
) -> dict[str, Any] | None:
    """Count one of the run's generations as ended; the run when this made it complete."""
    # One UPDATE under the row's lock: generations ending at once count one after another, and
    # exactly one of them sees the run complete.
    row = conn.execute(
        """
        UPDATE pack_runs SET done = done + 1, failed = failed + %(failed)s,
            status = CASE WHEN done + 1 = total THEN 'completed' ELSE status END,
            completed_at = CASE WHEN done + 1 = total THEN now() END
        WHERE id = %(id)s AND status = 'processing'
        RETURNING """
        + WITH_COST,
        {"id": pack_run_id, "failed": int(failed)},
    ).fetchone()
    return row if row and row["status"] == "completed" else None


def pack_run_json(row: dict[str, Any]) -> dict[str, Any]:
    """A pack run as the frontend and the app read it."""
    return {
        "id": str(row["id"]),
        "packId": row["pack_id"],
        "modelId": str(row["model_id"]),
        "status": row["status"],
        "total": row["total"],
        "done": row["done"],
        "failed": row["failed"],
        "createdAt": user_models.iso(row["created_at"]),
        "completedAt": user_models.iso(row["completed_at"]),
        "costUsd": usd_json(row["cost_usd"]),
    }
