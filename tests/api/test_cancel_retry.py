"""POST /api/training/cancel and /api/training/retry, through HTTP against the emulators."""

import threading
import time

import pytest

from tests.helpers import User, deliver, progress, start_training, started, upload_selfies


def cancel(api, user, model_id):
    return api.post("/api/training/cancel", json={"modelId": model_id}, headers=user.headers)


def retry(api, user, model_id):
    return api.post("/api/training/retry", json={"modelId": model_id}, headers=user.headers)


def run_rows(db, model_id):
    return db.execute(
        "SELECT status, error, upload_ids, replicate_training_id FROM training_runs"
        " WHERE model_id = %s ORDER BY created_at",
        (model_id,),
    ).fetchall()


def failed(api, user, stack, error="CUDA out of memory"):
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "failed", error=error)
    stack.replicate.wait_for_deliveries()
    return body


def test_cancel_stops_the_training_at_replicate_and_answers_the_canceled_model(
    api, user, stack, db
):
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "processing", step=200)
    stack.replicate.wait_for_deliveries()

    response = cancel(api, user, body["modelId"])

    assert response.status_code == 200
    model = response.json()["model"]
    assert model["id"] == body["modelId"]
    assert model["status"] == "canceled"
    assert model["error"] == "Training was canceled"
    assert model["progress"] == 20
    assert stack.replicate.get_object(body["trainingId"])["status"] == "canceled"
    assert run_rows(db, body["modelId"])[0]["status"] == "canceled"


def test_a_late_processing_webhook_does_not_revive_a_canceled_training(api, user, stack):
    body = started(api, user)
    stack.replicate.drop_webhooks = True
    try:
        stack.replicate.advance(body["trainingId"], "processing", step=300)
    finally:
        stack.replicate.drop_webhooks = False
    late = stack.replicate.get_object(body["trainingId"])
    cancel(api, user, body["modelId"])

    deliver(api, stack, late)

    assert progress(api, user, body["modelId"])["status"] == "canceled"


def test_a_pending_run_is_canceled_without_asking_replicate(api, user, stack, db):
    body = started(api, user)
    db.execute(
        "UPDATE training_runs SET status = 'pending', status_rank = 0,"
        " replicate_training_id = NULL WHERE model_id = %s",
        (body["modelId"],),
    )
    cancels_before = [r for r in stack.replicate.requests if r.path.endswith("/cancel")]

    response = cancel(api, user, body["modelId"])

    assert response.status_code == 200
    assert response.json()["model"]["status"] == "canceled"
    assert [r for r in stack.replicate.requests if r.path.endswith("/cancel")] == cancels_before


def test_a_cancel_while_start_is_creating_the_training_cancels_it_at_replicate(
    api, user, stack, db
):
    urls = upload_selfies(api, user, 5)
    stack.replicate.latency = 0.3  # start's calls to Replicate now leave time to cancel
    try:
        answers = []
        starting = threading.Thread(target=lambda: answers.append(start_training(api, user, urls)))
        starting.start()
        model_id = wait_for_pending_model(db, user)
        canceled = cancel(api, user, model_id)
        starting.join()
    finally:
        stack.replicate.latency = 0.0

    assert canceled.status_code == 200
    training_id = answers[0].json()["trainingId"]
    assert stack.replicate.get_object(training_id)["status"] == "canceled"
    assert run_rows(db, model_id)[0]["replicate_training_id"] == training_id


def wait_for_pending_model(db, user, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT model_id FROM training_runs WHERE user_id = %s AND status = 'pending'",
            (user.id,),
        ).fetchone()
        if row:
            return str(row["model_id"])
        time.sleep(0.01)
    raise AssertionError("start never wrote its pending run")


def test_a_finished_training_cannot_be_canceled(api, user, stack):
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()

    response = cancel(api, user, body["modelId"])

    assert response.status_code == 409
    assert response.json() == {
        "error": "The training already ended (completed)",
        "code": "not_cancelable",
    }


def test_a_training_replicate_forgot_is_canceled_here(api, user, stack):
    body = started(api, user)
    stack.replicate.forget(body["trainingId"])

    response = cancel(api, user, body["modelId"])

    assert response.status_code == 200
    assert response.json()["model"]["status"] == "canceled"


def test_retry_trains_a_failed_model_again_with_its_images_and_trigger_word(api, user, stack, db):
    body = failed(api, user, stack)

    response = retry(api, user, body["modelId"])

    assert response.status_code == 201
    again = response.json()
    assert again["modelId"] == body["modelId"]
    assert again["triggerWord"] == body["triggerWord"]
    assert again["status"] == "starting"
    assert again["trainingId"] != body["trainingId"]
    first, second = run_rows(db, body["modelId"])
    assert (first["status"], second["status"]) == ("failed", "starting")
    assert second["upload_ids"] == first["upload_ids"]
    sent = stack.replicate.get_object(again["trainingId"])["input"]
    assert sent["trigger_word"] == body["triggerWord"]
    assert sent["input_images"].endswith(".zip")


def test_a_retried_model_shows_its_new_run_through_to_completed(api, user, stack):
    body = failed(api, user, stack)
    again = retry(api, user, body["modelId"]).json()

    stack.replicate.advance(again["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()

    answer = progress(api, user, body["modelId"])
    assert answer["status"] == "completed"
    assert answer["model"]["error"] is None


def test_a_canceled_model_can_be_retried(api, user, stack):
    body = started(api, user)
    cancel(api, user, body["modelId"])

    assert retry(api, user, body["modelId"]).status_code == 201


def test_a_live_training_cannot_be_retried(api, user):
    body = started(api, user)

    response = retry(api, user, body["modelId"])

    assert response.status_code == 409
    assert response.json()["code"] == "not_retryable"


def test_retry_while_another_training_runs_is_409(api, user, stack):
    body = failed(api, user, stack)
    started(api, user)  # another model of the same user, still training

    response = retry(api, user, body["modelId"])

    assert response.status_code == 409
    assert response.json()["code"] == "training_in_progress"


def test_retry_without_the_stored_images_is_409(api, user, stack, db):
    body = failed(api, user, stack)
    db.execute("DELETE FROM selfie_uploads WHERE user_id = %s", (user.id,))

    response = retry(api, user, body["modelId"])

    assert response.status_code == 409
    assert response.json()["code"] == "images_missing"


@pytest.mark.parametrize("path", ["/api/training/cancel", "/api/training/retry"])
def test_another_users_model_is_404_for_cancel_and_retry(api, user, stack, path):
    body = failed(api, user, stack)
    stranger = User("stranger-" + user.id)

    response = api.post(path, json={"modelId": body["modelId"]}, headers=stranger.headers)

    assert response.status_code == 404
    assert response.json()["code"] == "model_not_found"


@pytest.mark.parametrize("path", ["/api/training/cancel", "/api/training/retry"])
@pytest.mark.parametrize("body", [{}, {"modelId": 7}, {"modelId": " "}])
def test_cancel_and_retry_need_a_model_id(api, user, path, body):
    response = api.post(path, json=body, headers=user.headers)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_body"
