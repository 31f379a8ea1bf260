"""Events to the app: signed, recorded with their state change, retried, one per change."""

import json
import os
import subprocess
import sys
import threading

import pytest
from standardwebhooks import Webhook

from dev.server import PROJECT_ROOT
from lib.app_events.outbox import MAX_ATTEMPTS
from tests.helpers import User, eventually, go_quiet, progress, signed_delivery, started

CRON_SECRET = "cron-secret-for-tests-0123456789"


@pytest.fixture
def receiver(app_receiver, configure):
    configure(CRON_SECRET=CRON_SECRET)
    return app_receiver


def cron(api) -> dict:
    response = api.get("/api/cron/reconcile", headers={"Authorization": f"Bearer {CRON_SECRET}"})
    assert response.status_code == 200, response.text
    return response.json()


def of_model(model_id):
    """Deliveries about one model (the outbox is shared by the whole suite)."""
    return lambda d: d.answered == 200 and d.event["data"].get("id") == model_id


def received(receiver, model_id, count=1):
    receiver.wait_for(lambda ds: sum(map(of_model(model_id), ds)) >= count)
    return [d for d in receiver.deliveries if of_model(model_id)(d)]


def event_rows(db, model_id):
    return db.execute(
        "SELECT * FROM app_events WHERE subject IN ("
        " SELECT 'training_run:' || id FROM training_runs WHERE model_id = %s)",
        (model_id,),
    ).fetchall()


def test_a_completed_training_is_posted_to_the_app_signed_as_standard_webhooks_sign(
    api, user, stack, receiver
):
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()

    [delivery] = received(receiver, body["modelId"])
    event = Webhook(receiver.secret).verify(delivery.body, delivery.headers)
    assert delivery.webhook_id.startswith("msg_")
    assert event["type"] == "training.completed" and event["timestamp"].endswith("Z")
    assert event["data"] == {**progress(api, user, body["modelId"])["model"], "userId": user.id}


def test_a_canceled_training_is_posted_as_training_canceled(api, user, receiver):
    body = started(api, user)

    response = api.post(
        "/api/training/cancel", json={"modelId": body["modelId"]}, headers=user.headers
    )

    assert response.status_code == 200, response.text
    [delivery] = received(receiver, body["modelId"])
    assert delivery.event["type"] == "training.canceled"
    assert delivery.event["data"]["status"] == "canceled"


def test_a_receiver_that_fails_the_first_attempt_gets_the_same_webhook_id_again(
    api, user, stack, db, receiver
):
    body = started(api, user)
    receiver.fail_next(1, about=body["modelId"])
    stack.replicate.advance(body["trainingId"], "failed")
    stack.replicate.wait_for_deliveries()
    row = eventually(
        lambda: next((r for r in event_rows(db, body["modelId"]) if r["last_error"]), None)
    )
    wait = db.execute("SELECT %s::timestamptz - now() AS w", (row["next_attempt_at"],)).fetchone()
    db.execute("UPDATE app_events SET next_attempt_at = now() WHERE id = %s", (row["id"],))

    cron(api)

    [first, second] = [d for d in receiver.deliveries if d.webhook_id == row["id"]]
    assert (first.answered, second.answered) == (503, 200)
    assert first.body == second.body and second.event["type"] == "training.failed"
    assert 5 < wait["w"].total_seconds() <= 10  # the first retry is due 10 s after the failure
    [row] = event_rows(db, body["modelId"])
    assert (row["status"], row["attempts"]) == ("delivered", 2)


def test_a_function_that_dies_after_its_answer_loses_no_event(api, user, stack, db, receiver):
    body = started(api, user)
    stack.replicate.drop_webhooks = True
    try:
        stack.replicate.advance(body["trainingId"], "succeeded")
    finally:
        stack.replicate.drop_webhooks = False
    raw, headers = signed_delivery(stack, stack.replicate.get_object(body["trainingId"]))

    answer = webhook_in_a_process_that_dies_after_answering(raw, headers)

    assert answer["outcome"] == "applied" and receiver.deliveries == []
    assert [row["status"] for row in event_rows(db, body["modelId"])] == ["pending"]
    assert cron(api)["eventsSent"] >= 1
    [delivery] = received(receiver, body["modelId"])
    assert delivery.event["type"] == "training.completed"


def webhook_in_a_process_that_dies_after_answering(raw: bytes, headers: dict) -> dict:
    """POST the webhook to the function in a fresh process that exits the moment its answer is
    written, before the server would close the response (where the delivery runs)."""
    script = """
import io, json, os, sys
from dev.server import PROJECT_ROOT, _load_entrypoint
app = _load_entrypoint("api.webhooks.replicate", PROJECT_ROOT / "api/webhooks/replicate.py")
raw, headers = sys.stdin.buffer.read(), json.loads(sys.argv[1])
environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/webhooks/replicate",
           "CONTENT_LENGTH": str(len(raw)), "CONTENT_TYPE": "application/json",
           "wsgi.input": io.BytesIO(raw)}
environ |= {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
body = b"".join(app(environ, lambda status, headers: None))
sys.stdout.write(body.decode()); sys.stdout.flush()
os._exit(0)
"""
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(headers)],
        input=raw,
        capture_output=True,
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout)


def test_webhook_poll_and_cron_racing_on_one_change_make_one_event(api, user, stack, db, receiver):
    body = started(api, user)
    stack.replicate.drop_webhooks = True
    try:
        stack.replicate.advance(body["trainingId"], "succeeded")
    finally:
        stack.replicate.drop_webhooks = False
    snapshot = stack.replicate.get_object(body["trainingId"])
    go_quiet(db, body["trainingId"], seconds=600)
    gate = threading.Barrier(4)

    def webhook():
        raw, headers = signed_delivery(stack, snapshot)
        gate.wait()
        api.post("/api/webhooks/replicate", content=raw, headers=headers)

    def poll():
        gate.wait()
        progress(api, user, body["modelId"])

    def run_cron():
        gate.wait()
        cron(api)

    threads = [threading.Thread(target=t) for t in (webhook, webhook, poll, run_cron)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    rows = event_rows(db, body["modelId"])
    assert [row["type"] for row in rows] == ["training.completed"]
    received(receiver, body["modelId"])
    assert {d.webhook_id for d in receiver.deliveries if of_model(body["modelId"])(d)} == {
        rows[0]["id"]
    }


def test_without_app_webhook_settings_no_event_is_recorded(api, user, stack, db, configure):
    configure(APP_WEBHOOK_URL=None, APP_WEBHOOK_SECRET=None)
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()

    assert progress(api, user, body["modelId"])["status"] == "completed"
    assert event_rows(db, body["modelId"]) == []


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"APP_WEBHOOK_URL": "http://app.example.com/hook"}, "APP_WEBHOOK_URL"),
        ({"APP_WEBHOOK_URL": "not a url"}, "APP_WEBHOOK_URL"),
        ({"APP_WEBHOOK_SECRET": "c2VjcmV0LWtleS1mb3ItdGVzdHM="}, "APP_WEBHOOK_SECRET"),
        ({"APP_WEBHOOK_SECRET": "whsec_not base64!"}, "APP_WEBHOOK_SECRET"),
        ({"APP_WEBHOOK_SECRET": None}, "APP_WEBHOOK_SECRET"),
    ],
)
def test_a_malformed_app_webhook_setting_is_refused_by_name(
    api, receiver, configure, variables, named
):
    configure(**variables)

    response = api.get("/api/models", headers=User("someone").headers)

    assert response.status_code == 503
    assert named in response.json()["error"]


def test_after_the_last_attempt_an_event_stays_recorded_undelivered_and_logged(
    api, user, stack, db, receiver, caplog
):
    body = started(api, user)
    receiver.fail_next(100, about=body["modelId"])
    stack.replicate.advance(body["trainingId"], "failed")
    stack.replicate.wait_for_deliveries()
    row = eventually(
        lambda: next((r for r in event_rows(db, body["modelId"]) if r["last_error"]), None)
    )
    db.execute(
        "UPDATE app_events SET attempts = %s, next_attempt_at = now() WHERE id = %s",
        (MAX_ATTEMPTS - 1, row["id"]),
    )

    cron(api)

    [row] = event_rows(db, body["modelId"])
    assert (row["status"], row["attempts"]) == ("undelivered", MAX_ATTEMPTS)
    assert f"app event undelivered id={row['id']}" in caplog.text
