"""A start that breaks after writing its run ends it, deletes its ZIP and frees the user."""

import threading
import time
from contextlib import contextmanager

import psycopg
import pytest

from lib.adapters.clients import get_storage
from lib.errors import NotFound
from lib.settings import get_settings
from tests.api.test_orphans import created_upstream
from tests.helpers import server_connection_url, upload_selfies

CRON_SECRET = "cron-secret-for-tests-0123456789"
# ensure_model (POST /v1/models) is held this long; the database connection dies meanwhile.
HOLD = 1.0


def kill_connections(db) -> None:
    """Terminate every connection to the suite's database but `db`'s own."""
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )


@contextmanager
def admin(db):
    """A connection to another database of the server, to lock the suite's one out."""
    url = server_connection_url(get_settings().database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn, db.info.dbname


def start(api, user, urls, key):
    body = {"modelName": "Me", "modelType": "flux", "imageUrls": urls}
    headers = {**user.headers, "Idempotency-Key": key}
    return api.post("/api/training/start", json=body, headers=headers)


def only_run(db, user):
    return db.execute("SELECT * FROM training_runs WHERE user_id = %s", (user.id,)).fetchone()


def is_stored(key: str) -> bool:
    try:
        get_storage(get_settings()).read(key)
    except NotFound:
        return False
    return True


def kill_connections_once_held(stack, db) -> threading.Thread:
    """Hold start's next ensure_model call; once it is held, terminate the connections."""
    stack.replicate.delay_next("POST", r"^/v1/models$", HOLD)
    seen = len(model_creates(stack))

    def kill() -> None:
        deadline = time.monotonic() + 30
        while len(model_creates(stack)) == seen and time.monotonic() < deadline:
            time.sleep(0.02)
        kill_connections(db)

    killer = threading.Thread(target=kill)
    killer.start()
    return killer


def model_creates(stack) -> list:
    return [r for r in stack.replicate.requests if (r.method, r.path) == ("POST", "/v1/models")]


@pytest.fixture
def connection_lost_during_start(stack, db):
    """Start's next ensure_model call is held; every database connection dies meanwhile."""

    def arm() -> None:
        killers.append(kill_connections_once_held(stack, db))

    killers: list[threading.Thread] = []
    yield arm
    for killer in killers:
        killer.join()


def test_a_connection_lost_mid_start_ends_the_run_and_deletes_its_zip(
    api, user, stack, db, connection_lost_during_start
):
    urls = upload_selfies(api, user)
    connection_lost_during_start()

    response = start(api, user, urls, "key-lost-1")

    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    run = only_run(db, user)
    assert run["status"] == "failed"
    assert "database" in run["error"]
    assert not is_stored(run["zip_key"])


def test_a_training_created_before_the_connection_died_is_canceled(
    api, user, stack, db, connection_lost_during_start
):
    urls = upload_selfies(api, user)
    connection_lost_during_start()

    start(api, user, urls, "key-lost-2")

    training = created_upstream(stack, str(only_run(db, user)["id"]))
    assert training["status"] == "canceled"


def test_after_a_failed_start_a_replay_says_so_and_a_new_start_is_accepted(
    api, user, stack, db, connection_lost_during_start
):
    urls = upload_selfies(api, user)
    connection_lost_during_start()
    assert start(api, user, urls, "key-lost-3").status_code == 503

    replay = start(api, user, urls, "key-lost-3")
    again = start(api, user, urls, "key-lost-4")

    assert replay.status_code == 409
    assert replay.json()["code"] == "request_failed"
    assert again.status_code == 201, again.text


def test_a_failed_start_nothing_could_record_is_settled_by_the_cron(
    api, user, stack, db, configure
):
    urls = upload_selfies(api, user)
    stack.replicate.drop_webhooks = True  # nothing reaches us but the cron's own questions
    try:
        with admin(db) as (server, name):
            killer = kill_connections_once_held(stack, db)
            # The database refuses every new connection, the one to record the failure too.
            server.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            try:
                response = start(api, user, urls, "key-lost-5")
            finally:
                server.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                killer.join()
    finally:
        stack.replicate.drop_webhooks = False
    assert response.status_code == 503
    run = only_run(db, user)
    assert run["status"] == "pending"  # what the failed start could not change
    db.execute(
        "UPDATE training_runs SET created_at = now() - interval '11 minutes' WHERE id = %s",
        (run["id"],),
    )
    configure(CRON_SECRET=CRON_SECRET)

    cron = api.get("/api/cron/reconcile", headers={"Authorization": f"Bearer {CRON_SECRET}"})

    assert cron.status_code == 200
    settled = only_run(db, user)
    assert settled["status_rank"] == 3
    assert settled["zip_key"] is None
    assert not is_stored(run["zip_key"])
    assert created_upstream(stack, str(run["id"]))["status"] == "canceled"
    assert start(api, user, urls, "key-lost-6").status_code == 201
