"""Validly signed but hostile webhook bodies: always 2xx or 4xx, and text PostgreSQL accepts."""

import time
import uuid

import pytest

from lib.adapters.signatures import sign
from lib.sync.snapshots import NO_VERSION_ERROR
from tests.helpers import deliver, go_quiet, progress, started

DEPTH = 10_000


def deliver_raw(api, stack, raw: bytes, query: str = ""):
    """POST bytes signed as Replicate signs a delivery."""
    webhook_id, now = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(now),
        "webhook-signature": sign(stack.replicate.webhook_secret, webhook_id, now, raw),
        "content-type": "application/json",
    }
    return api.post(f"/api/webhooks/replicate{query}", content=raw, headers=headers)


def run_row(db, training_id):
    return db.execute(
        "SELECT status, error, logs_tail, progress FROM training_runs"
        " WHERE replicate_training_id = %s",
        (training_id,),
    ).fetchone()


def test_a_deeply_nested_array_is_refused_with_400(api, stack):
    response = deliver_raw(api, stack, b"[" * DEPTH + b"]" * DEPTH)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


def test_deep_nesting_inside_a_field_is_refused_with_400(api, user, stack, db):
    body = started(api, user)
    nested = b"[" * DEPTH + b"]" * DEPTH
    raw = b'{"id": "%s", "status": "succeeded", "output": %s}' % (
        body["trainingId"].encode(),
        nested,
    )

    response = deliver_raw(api, stack, raw)

    assert response.status_code == 400
    assert run_row(db, body["trainingId"])["status"] == "starting"


def test_logs_with_a_lone_surrogate_and_nul_are_applied_without_them(api, user, stack, db):
    body = started(api, user)
    training = stack.replicate.get_object(body["trainingId"])
    logs = "flux_train_replicate:  40%|####| 400/1000 [01:00<01:30, 6.6it/s] \ud800 \x00 end"

    response = deliver(api, stack, {**training, "status": "processing", "logs": logs})

    assert response.status_code == 200
    row = run_row(db, body["trainingId"])
    assert row["status"] == "processing"
    assert "\ud800" not in row["logs_tail"] and "\x00" not in row["logs_tail"]
    assert row["logs_tail"].endswith(" end")


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "processing", "logs": 12, "error": {"a": 1}, "started_at": [1]},
        {"status": "processing", "started_at": "not a time", "completed_at": {"x": 1}},
        {"status": "failed", "error": ["bad", "\ud800", {"nested": "\x00"}]},
        {"status": "failed", "error": "disk \x00 full \udfff", "completed_at": 17},
        {"status": "canceled", "error": 5, "output": {"\ud800": "\x00"}},
        {"status": "processing", "output": [[[[[[[[[[[["deep"]]]]]]]]]]]]},
        {"status": "aborted"},
        {"status": "queued-by-a-future-replicate"},
    ],
)
def test_fields_of_the_wrong_type_or_with_invalid_text_never_answer_500(
    api, user, stack, db, fields
):
    body = started(api, user)
    training = stack.replicate.get_object(body["trainingId"])

    response = deliver(api, stack, {**training, **fields})

    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "applied"
    row = run_row(db, body["trainingId"])
    assert "\x00" not in (row["error"] or "")


@pytest.mark.parametrize(
    "payload",
    [{"id": "x\x00y", "status": "failed"}, {"id": 7, "status": "failed"}, {"status": ["x"]}],
)
def test_a_body_without_a_usable_id_or_status_is_refused_with_400(api, stack, payload):
    response = deliver(api, stack, payload)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_payload"


@pytest.mark.parametrize("output", ["x", None, {"version": "no-colon"}, {"version": ["a"]}])
def test_succeeded_without_a_usable_version_fails_the_run_so_it_can_be_retried(
    api, user, stack, db, output
):
    body = started(api, user)
    training = stack.replicate.get_object(body["trainingId"])

    response = deliver(api, stack, {**training, "status": "succeeded", "output": output})

    assert response.status_code == 200
    row = run_row(db, body["trainingId"])
    assert (row["status"], row["error"]) == ("failed", NO_VERSION_ERROR)
    retried = api.post(
        "/api/training/retry", json={"modelId": body["modelId"]}, headers=user.headers
    )
    assert retried.status_code == 201, retried.text


def test_a_prediction_with_a_garbage_completion_time_is_applied(api, user, stack, db):
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()
    generated = api.post(
        "/api/studio/generate",
        json={"modelId": body["modelId"], "prompt": "a portrait"},
        headers=user.headers,
    )
    assert generated.status_code == 201, generated.text
    generation = generated.json()["generation"]
    prediction_id = db.execute(
        "SELECT replicate_prediction_id FROM generations WHERE id = %s", (generation["id"],)
    ).fetchone()["replicate_prediction_id"]
    prediction = stack.replicate.get_object(prediction_id)

    response = deliver(
        api,
        stack,
        {**prediction, "status": "failed", "error": "\ud800boom", "completed_at": "yesterday"},
        query=f"?generation={generation['id']}",
    )

    assert response.status_code == 200, response.text
    row = db.execute("SELECT status, error FROM generations WHERE id = %s", (generation["id"],))
    assert row.fetchone() == {"status": "failed", "error": "boom"}


def test_a_polled_training_whose_logs_hold_a_lone_surrogate_is_updated(api, user, stack, db):
    body = started(api, user)
    stack.replicate.drop_webhooks = True
    try:
        stack.replicate.advance(body["trainingId"], "processing", step=300)
    finally:
        stack.replicate.drop_webhooks = False
    stack.replicate.set_fields(body["trainingId"], logs="broken \ud800 bytes\x00 here")
    go_quiet(db, body["trainingId"])

    answer = progress(api, user, body["modelId"])

    assert answer["status"] == "training"
    assert run_row(db, body["trainingId"])["logs_tail"] == "broken  bytes here"
