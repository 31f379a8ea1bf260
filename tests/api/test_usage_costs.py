"""What each job cost and GET /api/account, through HTTP and the Replicate emulator."""

import json
from decimal import Decimal

import psycopg
import pytest
from psycopg.rows import dict_row

from lib.accounts import spend
from tests.helpers import go_quiet, progress, started

PRICES = json.dumps({"gpu-h100": 2.0, "gpu-l40s": 0.5})


def billed(stack, replicate_id: str, usd_per_second: float) -> float:
    """What the emulator's metrics say the job cost at a price."""
    seconds = stack.replicate.get_object(replicate_id)["metrics"]["predict_time"]
    return float((Decimal(str(seconds)) * Decimal(str(usd_per_second))).quantize(Decimal("1e-6")))


def trained(api, user, stack) -> dict:
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()
    return body


def generate(api, user, model_id, **extra):
    body = {"modelId": model_id, "prompt": "a portrait", **extra}
    return api.post("/api/studio/generate", json=body, headers=user.headers)


def finish_generation(stack, db, generation_id) -> str:
    row = db.execute(
        "SELECT replicate_prediction_id FROM generations WHERE id = %s", (generation_id,)
    ).fetchone()
    stack.replicate.advance(row["replicate_prediction_id"], "succeeded")
    stack.replicate.wait_for_deliveries(timeout=15)
    return row["replicate_prediction_id"]


def account(api, user) -> dict:
    response = api.get("/api/account", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["usage"]


def model_json(api, user, model_id) -> dict:
    return api.get(f"/api/models/{model_id}", headers=user.headers).json()


def test_a_training_ended_by_webhook_records_replicates_metrics_and_costs_the_trainers_price(
    api, user, stack, db, configure
):
    configure(REPLICATE_PRICES=PRICES)
    body = trained(api, user, stack)

    run = db.execute(
        "SELECT metrics, hardware, cost_usd FROM training_runs WHERE replicate_training_id = %s",
        (body["trainingId"],),
    ).fetchone()
    assert run["metrics"] == stack.replicate.get_object(body["trainingId"])["metrics"]
    assert set(run["metrics"]) == {"predict_time", "total_time"}
    assert run["hardware"] == "gpu-h100"
    assert float(run["cost_usd"]) == billed(stack, body["trainingId"], 2.0)
    assert model_json(api, user, body["modelId"])["costUsd"] == float(run["cost_usd"])


def test_a_training_ended_through_a_progress_poll_records_its_cost(api, user, stack, db, configure):
    configure(REPLICATE_PRICES=PRICES)
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "succeeded", send=False)
    assert model_json(api, user, body["modelId"])["costUsd"] is None  # not known yet
    go_quiet(db, body["trainingId"])

    answer = progress(api, user, body["modelId"])

    assert answer["status"] == "completed"
    assert answer["model"]["costUsd"] == billed(stack, body["trainingId"], 2.0)


def test_a_training_recovered_by_the_cron_records_its_cost(
    api, user, stack, db, configure, quiet_training
):
    configure(CRON_SECRET="cron-secret-for-tests-0123456789")
    go_quiet(db, quiet_training["trainingId"], 6 * 60)

    response = api.get(
        "/api/cron/reconcile",
        headers={"Authorization": "Bearer cron-secret-for-tests-0123456789"},
    )

    assert response.json()["recovered"] >= 1
    cost = model_json(api, user, quiet_training["modelId"])["costUsd"]
    assert cost == billed(stack, quiet_training["trainingId"], 0.001525)


def test_a_generation_recovered_by_a_gallery_poll_records_its_cost(api, user, stack, db, configure):
    configure(REPLICATE_PRICES=PRICES)
    body = trained(api, user, stack)
    generation = generate(api, user, body["modelId"]).json()["generation"]
    row = db.execute(
        "SELECT replicate_prediction_id FROM generations WHERE id = %s", (generation["id"],)
    ).fetchone()
    stack.replicate.advance(row["replicate_prediction_id"], "succeeded", send=False)
    db.execute(
        "UPDATE generations SET last_event_at = now() - interval '2 minutes' WHERE id = %s",
        (generation["id"],),
    )

    [polled] = api.get(
        "/api/studio/generations", params={"modelId": body["modelId"]}, headers=user.headers
    ).json()["generations"]

    assert polled["status"] == "succeeded"
    assert polled["costUsd"] == billed(stack, row["replicate_prediction_id"], 2.0)


def test_a_canceled_training_costs_the_seconds_it_ran(api, user, stack, db, configure):
    configure(REPLICATE_PRICES=PRICES)
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "processing")

    canceled = api.post(
        "/api/training/cancel", json={"modelId": body["modelId"]}, headers=user.headers
    )

    assert canceled.json()["model"]["status"] == "canceled"
    assert canceled.json()["model"]["costUsd"] == billed(stack, body["trainingId"], 2.0)


def test_a_model_costs_the_sum_of_its_runs(api, user, stack, db, configure):
    configure(REPLICATE_PRICES=PRICES)
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "processing")
    stack.replicate.advance(body["trainingId"], "failed")  # billed for the seconds it ran
    stack.replicate.wait_for_deliveries()
    again = api.post("/api/training/retry", json={"modelId": body["modelId"]}, headers=user.headers)
    stack.replicate.advance(again.json()["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()

    both = billed(stack, body["trainingId"], 2.0) + billed(stack, again.json()["trainingId"], 2.0)
    assert model_json(api, user, body["modelId"])["costUsd"] == pytest.approx(both, abs=1e-6)


def test_a_generation_in_the_gallery_costs_its_seconds_at_the_hardware_replicate_reports(
    api, user, stack, db, configure
):
    # The emulator reports gpu-h100 for the fine-tuned model: the configured default is unused.
    configure(REPLICATE_PRICES=PRICES, REPLICATE_MODEL_HARDWARE="gpu-l40s")
    body = trained(api, user, stack)
    generation = generate(api, user, body["modelId"], numOutputs=2).json()["generation"]
    assert generation["costUsd"] is None
    prediction_id = finish_generation(stack, db, generation["id"])

    gallery = api.get(
        "/api/studio/generations", params={"modelId": body["modelId"]}, headers=user.headers
    ).json()["generations"]

    assert gallery[0]["costUsd"] == billed(stack, prediction_id, 2.0)
    row = db.execute("SELECT metrics FROM generations WHERE id = %s", (generation["id"],))
    assert row.fetchone()["metrics"] == stack.replicate.get_object(prediction_id)["metrics"]


def test_account_shows_todays_usage_and_this_months_spend(api, user, stack, db, configure):
    configure(REPLICATE_PRICES=PRICES, MONTHLY_SPEND_LIMIT_USD="25")
    body = trained(api, user, stack)
    generation = generate(api, user, body["modelId"], numOutputs=3).json()["generation"]
    prediction_id = finish_generation(stack, db, generation["id"])

    usage = account(api, user)

    spent = billed(stack, body["trainingId"], 2.0) + billed(stack, prediction_id, 2.0)
    assert usage == {
        "trainingsToday": 1,
        "imagesToday": 3,
        "trainingLimit": 3,
        "imageLimit": 50,
        "spendMonthUsd": pytest.approx(spent, abs=3e-6),
        "spendLimitUsd": 25.0,
    }


def test_a_running_training_counts_its_estimate_until_replicate_bills_it(
    api, user, stack, configure
):
    configure(REPLICATE_PRICES=PRICES)
    started(api, user)

    usage = account(api, user)

    with psycopg.connect(stack.database_url, row_factory=dict_row) as conn:
        per_step = spend.training_seconds_per_step(conn)
    assert usage["spendMonthUsd"] == pytest.approx(1000 * per_step * 2.0, abs=1e-6)
    assert usage["spendLimitUsd"] is None


def test_a_malformed_price_table_is_refused_by_name(api, user, configure):
    configure(REPLICATE_PRICES='{"gpu-h100": "cheap"}')

    response = api.get("/api/account", headers=user.headers)

    assert response.status_code == 503
    assert "REPLICATE_PRICES" in response.json()["error"]
