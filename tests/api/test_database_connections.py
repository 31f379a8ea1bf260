"""Pooled connections: one the database dropped while it sat idle never reaches a request."""

import time

from lib.adapters.database import CHECK_AFTER_IDLE_SECONDS


def drop_idle_connections(db) -> int:
    """Terminate every idle connection to the suite's database but `db`'s own, as a database
    restart, a pooler's idle timeout or a frozen instance's lost socket would."""
    return db.execute(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'"
    ).fetchone()["n"]


def test_a_connection_dropped_while_idle_is_replaced_before_a_request_uses_it(api, user, db):
    assert api.get("/api/models", headers=user.headers).status_code == 200  # the pool holds one
    time.sleep(CHECK_AFTER_IDLE_SECONDS + 0.2)
    assert drop_idle_connections(db) >= 1

    response = api.get("/api/models", headers=user.headers)

    assert response.status_code == 200
    assert response.json()["models"] == []
