"""Daily limits counted in PostgreSQL: race-free, rolling 24 hours, given back on rollback."""

import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from lib.accounts import quotas
from lib.adapters import database
from lib.errors import TooManyRequests
from lib.settings import get_settings


@pytest.fixture
def conn(stack):
    with database.connect(get_settings()) as connection:
        yield connection


@pytest.fixture
def user_id():
    return f"quota-{uuid.uuid4().hex[:12]}"


def reserve(user_id: str, limit: int, count: int) -> bool:
    """One request's reservation on its own connection; False when refused."""
    with database.connect(get_settings()) as conn:
        try:
            with conn.transaction():
                quotas.reserve_generation(conn, user_id, limit, count)
        except TooManyRequests:
            return False
    return True


def test_concurrent_reservations_never_exceed_the_limit(stack, user_id):
    barrier = threading.Barrier(10)

    def racer(_):
        barrier.wait()
        return reserve(user_id, 50, 10)

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(racer, range(10)))

    assert results.count(True) == 5


def test_over_the_limit_is_429_saying_when_it_resets(conn, user_id):
    with conn.transaction():
        quotas.reserve_training(conn, user_id, 1)
    first = conn.execute(
        "SELECT created_at + interval '24 hours' AS reset FROM usage_events WHERE user_id = %s",
        (user_id,),
    ).fetchone()["reset"]

    limit = "at most 1 trainings per 24 hours"
    with pytest.raises(TooManyRequests, match=limit) as refused, conn.transaction():
        quotas.reserve_training(conn, user_id, 1)

    assert refused.value.code == "quota_exceeded"
    said = re.search(r"resets at (\S+Z)$", refused.value.message).group(1)
    assert timedelta(0) <= datetime.fromisoformat(said) - first < timedelta(seconds=1)
    assert 86_300 < int(refused.value.headers["Retry-After"]) <= 86_400


def test_usage_older_than_a_day_no_longer_counts(conn, user_id):
    conn.execute(
        "INSERT INTO usage_events (user_id, kind, amount, created_at)"
        " VALUES (%s, 'generation', 50, now() - interval '25 hours')",
        (user_id,),
    )

    with conn.transaction():
        quotas.reserve_generation(conn, user_id, 50, 50)


def test_the_reset_is_when_enough_old_usage_leaves_the_window(conn, user_id):
    for hours_ago in (20, 10, 1):
        conn.execute(
            "INSERT INTO usage_events (user_id, kind, amount, created_at)"
            " VALUES (%s, 'generation', 10, now() - make_interval(hours => %s))",
            (user_id, hours_ago),
        )

    with pytest.raises(TooManyRequests) as refused, conn.transaction():
        quotas.reserve_generation(conn, user_id, 30, 15)  # needs the two oldest to expire

    retry_after = int(refused.value.headers["Retry-After"])
    assert 14 * 3600 - 60 < retry_after <= 14 * 3600


def test_asking_for_more_than_the_whole_limit_has_no_retry_after(conn, user_id):
    with pytest.raises(TooManyRequests, match="at most 4 images") as refused, conn.transaction():
        quotas.reserve_generation(conn, user_id, 4, 5)

    assert "Retry-After" not in refused.value.headers


def test_a_rolled_back_transaction_gives_the_reservation_back(conn, user_id):
    with pytest.raises(RuntimeError, match="the insert failed"), conn.transaction():
        quotas.reserve_training(conn, user_id, 1)
        raise RuntimeError("the insert failed")

    with conn.transaction():
        quotas.reserve_training(conn, user_id, 1)


def test_a_reservation_outside_a_transaction_is_a_programming_error(conn, user_id):
    with pytest.raises(RuntimeError, match=r"inside conn\.transaction"):
        quotas.reserve_training(conn, user_id, 3)


def test_prune_forgets_usage_older_than_the_window(conn, user_id):
    conn.execute(
        "INSERT INTO usage_events (user_id, kind, amount, created_at)"
        " VALUES (%s, 'training', 1, now() - interval '2 days'), (%s, 'training', 1, now())",
        (user_id, user_id),
    )

    quotas.prune(conn)

    left = conn.execute("SELECT count(*) AS n FROM usage_events WHERE user_id = %s", (user_id,))
    assert left.fetchone()["n"] == 1
