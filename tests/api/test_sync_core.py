"""Replicate's state reaching our rows through the one sync core, through the real doors."""

import threading
import time

import pytest

from tests.helpers import (
    deliver,
    go_quiet,
    progress,
    start_training,
    started,
    upload_selfies,
)


def retry(api, user, model_id):
    return api.post("/api/training/retry", json={"modelId": model_id}, headers=user.headers)


def generation_of(api, user, stack):
    """A succeeded model and one generation started with it: (model id, generation id)."""
    body = start_training(api, user, upload_selfies(api, user, 5)).json()
    stack.replicate.advance(body["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()
    response = api.post(
        "/api/studio/generate",
        json={"modelId": body["modelId"], "prompt": "a portrait"},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    return body["modelId"], response.json()["generation"]["id"]


@pytest.mark.parametrize("route", ["webhook", "poll"])
def test_an_aborted_training_ends_failed_frees_the_slot_and_can_be_retried(
    api, user, stack, db, route
):
    body = started(api, user)
    stack.replicate.drop_webhooks = route == "poll"
    try:
        stack.replicate.advance(body["trainingId"], "aborted")
        stack.replicate.wait_for_deliveries()
    finally:
        stack.replicate.drop_webhooks = False
    if route == "poll":
        go_quiet(db, body["trainingId"])

    model = progress(api, user, body["modelId"])["model"]
    again = retry(api, user, body["modelId"])

    assert model["status"] == "failed"
    assert "aborted" in model["error"]
    assert again.status_code == 201, again.text


def test_a_status_we_do_not_know_ends_the_training_failed_and_is_logged(api, user, stack, caplog):
    body = started(api, user)

    with caplog.at_level("WARNING", logger="lib.sync.statuses"):
        response = deliver(api, stack, {"id": body["trainingId"], "status": "evaporated"})
    model = progress(api, user, body["modelId"])["model"]

    assert response.status_code == 200
    assert model["status"] == "failed" and "unknown status" in model["error"]
    assert any("evaporated" in record.getMessage() for record in caplog.records)


def test_an_aborted_prediction_ends_the_generation_failed(api, user, stack, db):
    model_id, generation_id = generation_of(api, user, stack)
    prediction = db.execute(
        "SELECT replicate_prediction_id FROM generations WHERE id = %s", (generation_id,)
    ).fetchone()["replicate_prediction_id"]

    response = deliver(api, stack, {"id": prediction, "status": "aborted"})
    gallery = api.get(
        "/api/studio/generations", params={"modelId": model_id}, headers=user.headers
    ).json()["generations"]

    assert response.status_code == 200
    assert gallery[0]["status"] == "failed" and "aborted" in gallery[0]["error"]


def test_replicates_error_text_stays_in_our_logs_not_in_the_answer(api, user, stack, caplog):
    urls = upload_selfies(api, user, 5)
    stack.replicate.fail_next(
        "POST", r"/trainings$", 500, detail="internal shard db-7 of account acme failed"
    )

    with caplog.at_level("WARNING", logger="lib.adapters.replicate"):
        response = start_training(api, user, urls)

    assert response.status_code == 502
    assert response.json()["code"] == "replicate_error"
    assert "acme" not in response.text
    assert any("acme" in record.getMessage() for record in caplog.records)


def test_no_transaction_stays_open_while_a_predictions_images_are_copied(api, user, stack, db):
    _, generation_id = generation_of(api, user, stack)
    prediction = db.execute(
        "SELECT replicate_prediction_id FROM generations WHERE id = %s", (generation_id,)
    ).fetchone()["replicate_prediction_id"]
    stack.replicate.latency = 1.0  # every call, the image download included, takes a second
    finishing = threading.Thread(
        target=lambda: stack.replicate.advance(prediction, "succeeded"), daemon=True
    )
    seen = []
    try:
        finishing.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not seen:
            copying = db.execute(
                "SELECT copy_claimed_at FROM generations WHERE id = %s", (generation_id,)
            ).fetchone()["copy_claimed_at"]
            if copying:
                seen = db.execute(
                    "SELECT state FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND state LIKE 'idle in transaction%%'"
                ).fetchall() or ["none"]
            time.sleep(0.05)
        finishing.join(timeout=15)
        stack.replicate.wait_for_deliveries(timeout=15)
    finally:
        stack.replicate.latency = 0.0

    row = db.execute("SELECT status FROM generations WHERE id = %s", (generation_id,)).fetchone()
    assert seen == ["none"]
    assert row["status"] == "succeeded"
