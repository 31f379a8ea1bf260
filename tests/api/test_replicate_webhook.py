"""POST /api/webhooks/replicate: signatures, duplicates, ordering, unknown objects."""

import json
import time
import uuid

import httpx
import pytest

from lib.adapters.signatures import sign
from tests.helpers import deliver, start_training, upload_selfies


@pytest.fixture
def training(api, user, stack):
    """A started training: (start body, its webhook URL as sent to Replicate)."""
    response = start_training(api, user, upload_selfies(api, user, 5))
    assert response.status_code == 201, response.text
    body = response.json()
    return body, stack.replicate.get_object(body["trainingId"])


def run_row(db, training_id):
    return db.execute(
        "SELECT status, progress, error FROM training_runs WHERE replicate_training_id = %s",
        (training_id,),
    ).fetchone()


def succeeded(stack, training_id):
    stack.replicate.advance(training_id, "succeeded", send=False)
    return stack.replicate.get_object(training_id)


def test_a_forged_signature_is_401_and_changes_nothing(api, stack, db, training):
    body, _ = training
    payload = succeeded(stack, body["trainingId"])

    response = deliver(api, stack, payload, secret="whsec_" + "QUJD" * 8)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert run_row(db, body["trainingId"])["status"] == "starting"


def test_a_stale_delivery_is_401(api, stack, db, training):
    body, _ = training
    payload = succeeded(stack, body["trainingId"])

    response = deliver(api, stack, payload, timestamp=int(time.time()) - 6 * 60)

    assert response.status_code == 401
    assert "tolerance" in response.json()["error"]
    assert run_row(db, body["trainingId"])["status"] == "starting"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_delivery_missing_a_header_is_401(api, stack, training, missing):
    body, _ = training
    raw = json.dumps(stack.replicate.get_object(body["trainingId"])).encode()
    now = int(time.time())
    headers = {
        "webhook-id": "msg_x",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(stack.replicate.webhook_secret, "msg_x", now, raw),
    }
    del headers[missing]

    response = api.post("/api/webhooks/replicate", content=raw, headers=headers)

    assert response.status_code == 401
    assert missing in response.json()["error"]


def test_a_body_changed_after_signing_is_401(api, stack, training):
    body, _ = training
    raw = json.dumps(succeeded(stack, body["trainingId"])).encode()
    now = int(time.time())
    headers = {
        "webhook-id": "msg_tampered",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(stack.replicate.webhook_secret, "msg_tampered", now, raw),
    }

    response = api.post(
        "/api/webhooks/replicate", content=raw.replace(b"succeeded", b"failed"), headers=headers
    )

    assert response.status_code == 401


def test_the_same_webhook_id_twice_is_applied_once(api, stack, db, training):
    body, _ = training
    emulator = stack.replicate
    emulator.advance(body["trainingId"], "processing", step=100)
    emulator.wait_for_deliveries()

    replay = emulator.resend(body["trainingId"], "logs")
    emulator.wait_for_deliveries()

    assert replay.status == 200
    assert (
        json.loads(httpx.post(replay.url, content=replay.body, headers=replay.headers).content)[
            "outcome"
        ]
        == "duplicate"
    )
    assert run_row(db, body["trainingId"])["progress"] == 10


def test_completed_before_start_ends_completed(api, user, stack, db, training):
    body, _ = training
    emulator = stack.replicate
    emulator.drop_webhooks = True
    try:
        emulator.advance(body["trainingId"], "processing", step=500)
        emulator.advance(body["trainingId"], "succeeded")
    finally:
        emulator.drop_webhooks = False
    final = emulator.get_object(body["trainingId"])
    early = {**final, "status": "processing", "completed_at": None, "output": None}

    assert deliver(api, stack, final).status_code == 200
    assert deliver(api, stack, {**early, "status": "starting"}).status_code == 200
    assert deliver(api, stack, early).status_code == 200

    assert run_row(db, body["trainingId"]) == {
        "status": "succeeded",
        "progress": 100,
        "error": None,
    }
    model = api.get(
        "/api/training/progress", params={"modelId": body["modelId"]}, headers=user.headers
    ).json()["model"]
    assert model["status"] == "completed"
    assert model["replicateVersionId"] == final["output"]["version"].split(":")[1]


def test_a_terminal_state_is_never_overwritten(api, stack, db, training):
    body, _ = training
    failed = {
        **stack.replicate.get_object(body["trainingId"]),
        "status": "failed",
        "error": "CUDA out of memory",
    }

    deliver(api, stack, failed)
    deliver(api, stack, {**failed, "status": "succeeded", "error": None})

    assert run_row(db, body["trainingId"]) == {
        "status": "failed",
        "progress": 0,
        "error": "CUDA out of memory",
    }


def test_an_unknown_training_is_acknowledged(api, stack):
    payload = {"id": "unknowntrainingid000000000", "status": "succeeded", "logs": "", "output": {}}

    response = deliver(api, stack, payload)

    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown"


def test_a_webhook_that_arrives_before_start_returns_finds_its_run_by_the_url(api, stack, db, user):
    # Replicate can call back before our create request has returned and stored its id.
    urls = upload_selfies(api, user, 5)
    start_training(api, user, urls)  # only to learn the run id that start puts in the URL
    run = db.execute("SELECT id FROM training_runs WHERE user_id = %s", (user.id,)).fetchone()
    db.execute("UPDATE training_runs SET replicate_training_id = NULL WHERE id = %s", (run["id"],))
    early_id = f"early{uuid.uuid4().hex[:21]}"

    response = deliver(
        api,
        stack,
        {"id": early_id, "status": "processing", "logs": ""},
        query=f"?run={run['id']}",
    )

    assert response.json()["outcome"] == "applied"
    row = db.execute(
        "SELECT status, replicate_training_id FROM training_runs WHERE id = %s", (run["id"],)
    ).fetchone()
    assert row == {"status": "processing", "replicate_training_id": early_id}


def test_malformed_json_with_a_valid_signature_is_400(api, stack):
    raw = b"not json"
    now = int(time.time())
    headers = {
        "webhook-id": "msg_bad",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(stack.replicate.webhook_secret, "msg_bad", now, raw),
    }

    response = api.post("/api/webhooks/replicate", content=raw, headers=headers)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


def test_the_webhook_secret_is_fetched_from_replicate_when_not_configured(api, stack, training):
    # The suite configures no REPLICATE_WEBHOOK_SECRET: a valid delivery proves the fetch.
    body, _ = training
    fetched = [r for r in stack.replicate.requests if r.path == "/v1/webhooks/default/secret"]

    response = deliver(api, stack, stack.replicate.get_object(body["trainingId"]))

    assert response.status_code == 200
    assert fetched
