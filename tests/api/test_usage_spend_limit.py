"""The monthly spend cap: start, retry and generate refused with 429 spend_limit, atomically."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

from lib.accounts import spend
from lib.settings import get_settings
from tests.api.test_packs import PACK
from tests.api.test_usage_costs import account, generate, model_json, trained
from tests.helpers import start_training, started, upload_selfies


def next_month_utc() -> str:
    now = datetime.now(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return f"{year:04d}-{month:02d}-01T00:00:00Z"


def assert_spend_limit(response, limit: str) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "spend_limit"
    assert f"over the limit of ${limit}" in response.json()["error"]
    assert f"the limit resets at {next_month_utc()}" in response.json()["error"]
    assert 0 < int(response.headers["Retry-After"]) <= 31 * 24 * 3600


def test_a_start_over_the_monthly_limit_is_429_and_starts_nothing(api, user, stack, db, configure):
    urls = upload_selfies(api, user, 5)
    configure(MONTHLY_SPEND_LIMIT_USD="0")
    trainings_before = len(stack.replicate.requests)

    response = start_training(api, user, urls)

    assert_spend_limit(response, "0.00")
    for table in ("user_models", "usage_events", "spend_ledger"):
        rows = db.execute(f"SELECT count(*) AS n FROM {table} WHERE user_id = %s", (user.id,))
        assert rows.fetchone()["n"] == 0, table
    assert not [r for r in stack.replicate.requests[trainings_before:] if r.method == "POST"]


def test_a_retry_over_the_monthly_limit_is_429(api, user, stack, configure):
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "failed")
    stack.replicate.wait_for_deliveries()
    configure(MONTHLY_SPEND_LIMIT_USD="0")

    response = api.post(
        "/api/training/retry", json={"modelId": body["modelId"]}, headers=user.headers
    )

    assert_spend_limit(response, "0.00")
    assert model_json(api, user, body["modelId"])["status"] == "failed"


def test_a_generation_over_the_monthly_limit_is_429_and_starts_nothing(
    api, user, stack, db, configure
):
    body = trained(api, user, stack)
    spent = Decimal(str(account(api, user)["spendMonthUsd"]))
    configure(MONTHLY_SPEND_LIMIT_USD=str(spent))

    response = generate(api, user, body["modelId"])

    assert_spend_limit(response, f"{spent:.2f}")
    assert (
        db.execute(
            "SELECT count(*) AS n FROM generations WHERE user_id = %s", (user.id,)
        ).fetchone()["n"]
        == 0
    )


def test_concurrent_generations_cannot_overspend_together(api, user, stack, db, configure):
    body = trained(api, user, stack)
    with psycopg.connect(stack.database_url, row_factory=dict_row) as conn:
        per_image = spend.image_estimate(
            conn, steps=spend.DEFAULT_IMAGE_STEPS, hardware="gpu-h100", settings=get_settings()
        )
        spent = spend.month_spend(conn, user.id)
    configure(MONTHLY_SPEND_LIMIT_USD=str(spent + per_image * Decimal("2.5")))
    barrier = threading.Barrier(8)

    def racer(_):
        barrier.wait()
        return generate(api, user, body["modelId"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(racer, range(8)))

    assert sorted(r.status_code for r in responses) == [201] * 2 + [429] * 6
    assert {r.json()["code"] for r in responses if r.status_code == 429} == {"spend_limit"}


def test_a_pack_over_the_monthly_limit_is_429_and_starts_nothing(api, user, stack, db, configure):
    body = trained(api, user, stack)
    configure(MONTHLY_SPEND_LIMIT_USD="0")

    response = api.post(
        "/api/studio/packs",
        json={"modelId": body["modelId"], "packId": PACK},
        headers=user.headers,
    )

    assert_spend_limit(response, "0.00")
    assert (
        db.execute(
            "SELECT count(*) AS n FROM generations WHERE user_id = %s", (user.id,)
        ).fetchone()["n"]
        == 0
    )
