"""GET /api/cron/reconcile: lost webhooks, stuck trainings, the weights archive, ZIP clean-up."""

import hashlib
import threading
import uuid

import httpx
import pytest

from lib.adapters.clients import get_storage
from lib.settings import get_settings
from tests.helpers import go_quiet, progress, replicate_gets, started

CRON_SECRET = "cron-secret-for-tests-0123456789"
SIX_MINUTES = 6 * 60


@pytest.fixture
def cron(api, configure):
    """Run the cron as Vercel does; the JSON summary."""
    configure(CRON_SECRET=CRON_SECRET)

    def run() -> dict:
        response = api.get(
            "/api/cron/reconcile", headers={"Authorization": f"Bearer {CRON_SECRET}"}
        )
        assert response.status_code == 200, response.text
        return response.json()

    return run


@pytest.fixture
def succeed(api, user, stack):
    """Start a training and let it succeed with its webhooks delivered: (start body, output)."""

    def run() -> tuple[dict, dict]:
        body = started(api, user)
        stack.replicate.advance(body["trainingId"], "succeeded")
        stack.replicate.wait_for_deliveries()
        return body, stack.replicate.get_object(body["trainingId"])["output"]

    return run


@pytest.fixture
def succeeded(succeed):
    """A training that succeeded with its webhooks delivered: (start body, its output)."""
    return succeed()


def run_row(db, training_id):
    return db.execute(
        "SELECT id, status, error, logs_tail, zip_key FROM training_runs"
        " WHERE replicate_training_id = %s",
        (training_id,),
    ).fetchone()


def weights_row(db, training_id):
    return db.execute(
        "SELECT w.* FROM lora_weights w JOIN training_runs r ON r.id = w.training_run_id"
        " WHERE r.replicate_training_id = %s",
        (training_id,),
    ).fetchone()


def generate(api, user, model_id):
    body = {"modelId": model_id, "prompt": "a portrait"}
    response = api.post("/api/studio/generate", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["generation"]["id"]


def weights_downloads(stack, training_id):
    return [r for r in stack.replicate.requests if r.path.startswith(f"/delivery/{training_id}/")]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": CRON_SECRET}],
    ids=["none", "wrong", "not-bearer"],
)
def test_the_cron_refuses_callers_without_the_secret(api, configure, headers):
    configure(CRON_SECRET=CRON_SECRET)

    response = api.get("/api/cron/reconcile", headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_cron_secret"


def test_without_cron_secret_every_caller_is_refused(api):
    response = api.get("/api/cron/reconcile", headers={"Authorization": "Bearer anything"})

    assert response.status_code == 503
    assert response.json() == {
        "error": "CRON_SECRET environment variable is not set",
        "code": "config_missing",
    }


def test_the_cron_answers_a_count_of_what_it_did(cron):
    summary = cron()

    assert set(summary) >= {"checked", "recovered", "failedNotFound", "weightsArchived"}
    assert all(isinstance(count, int) for count in summary.values())


def test_a_lost_webhook_is_recovered_by_the_cron(api, user, stack, db, cron, quiet_training):
    body = quiet_training
    go_quiet(db, body["trainingId"], SIX_MINUTES)

    summary = cron()

    assert summary["recovered"] >= 1
    answer = progress(api, user, body["modelId"])
    assert answer["status"] == "completed"
    assert answer["model"]["replicateVersionId"]
    assert len(replicate_gets(stack, body["trainingId"])) == 1


def test_a_run_quiet_for_less_than_five_minutes_is_left_alone(stack, db, cron, quiet_training):
    go_quiet(db, quiet_training["trainingId"], 4 * 60)

    cron()

    assert replicate_gets(stack, quiet_training["trainingId"]) == []


def test_the_cron_and_progress_do_not_both_ask_about_one_quiet_run(
    api, user, stack, db, cron, quiet_training
):
    body = quiet_training
    stack.replicate.fail_next("GET", body["trainingId"], 500)  # the cron learns nothing
    go_quiet(db, body["trainingId"], SIX_MINUTES)

    cron()
    progress(api, user, body["modelId"])

    assert len(replicate_gets(stack, body["trainingId"])) == 1


def test_a_training_replicate_forgot_is_failed_with_a_clear_error(api, user, stack, db, cron):
    body = started(api, user)
    go_quiet(db, body["trainingId"], 31 * 60)
    stack.replicate.forget(body["trainingId"])

    cron()

    model = progress(api, user, body["modelId"])["model"]
    assert model["status"] == "failed"
    assert model["error"] == "Replicate no longer knows this training (it answered 404); retry it"


def test_a_training_starting_past_the_limit_is_failed_and_canceled(api, user, stack, db, cron):
    body = started(api, user)
    go_quiet(db, body["trainingId"], 31 * 60)

    summary = cron()

    assert summary["failedStartTimeout"] >= 1
    model = progress(api, user, body["modelId"])["model"]
    assert model["status"] == "failed"
    assert model["error"] == "Replicate did not start the training within 30 minutes; retry it"
    assert stack.replicate.get_object(body["trainingId"])["status"] == "canceled"


def test_the_start_limit_is_a_setting(api, user, db, cron, configure):
    configure(TRAINING_START_TIMEOUT_MINUTES="60")
    body = started(api, user)
    go_quiet(db, body["trainingId"], 31 * 60)

    cron()

    assert progress(api, user, body["modelId"])["status"] == "starting"


def test_a_pending_run_that_never_reached_replicate_is_failed(api, user, stack, db, cron):
    body = started(api, user)
    run = run_row(db, body["trainingId"])
    stack.replicate.forget(body["trainingId"])  # else the cron finds it and records it
    db.execute(
        "UPDATE training_runs SET status = 'pending', status_rank = 0,"
        " replicate_training_id = NULL, created_at = now() - interval '11 minutes' WHERE id = %s",
        (run["id"],),
    )

    cron()

    model = progress(api, user, body["modelId"])["model"]
    assert model["status"] == "failed"
    assert "never reached Replicate" in model["error"]


def test_a_pending_run_younger_than_a_start_request_is_left_alone(api, user, db, cron):
    body = started(api, user)
    db.execute(
        "UPDATE training_runs SET status = 'pending', status_rank = 0,"
        " replicate_training_id = NULL, created_at = now() - interval '4 minutes'"
        " WHERE model_id = %s",
        (body["modelId"],),
    )

    cron()

    assert progress(api, user, body["modelId"])["status"] == "starting"


@pytest.mark.parametrize("backend", ["blob", "s3", "local"])
def test_the_weights_of_a_succeeded_training_are_archived_right_after_its_webhook(
    db, configure, succeed, backend, request, tmp_path
):
    if backend == "s3":
        configure(**request.getfixturevalue("s3_env"))
    if backend == "local":
        configure(STORAGE_BACKEND="local", LOCAL_STORAGE_DIR=str(tmp_path))

    body, output = succeed()

    tar = httpx.get(output["weights"]).content
    row = weights_row(db, body["trainingId"])
    assert row["storage_backend"] == backend
    assert row["source_url"] == output["weights"]
    assert row["size"] == len(tar)
    assert row["sha256"] == hashlib.sha256(tar).hexdigest()
    assert row["storage_key"].endswith(f"/weights/{row['training_run_id']}.tar")
    assert get_storage(get_settings()).read(row["storage_key"]) == tar


def test_two_overlapping_cron_runs_copy_the_weights_once(api, stack, db, configure, succeeded):
    body, _ = succeeded
    configure(CRON_SECRET=CRON_SECRET)
    zip_key = run_row(db, body["trainingId"])["zip_key"]
    gate = threading.Barrier(2)
    answers = []

    def one_run():
        gate.wait()
        answers.append(
            api.get("/api/cron/reconcile", headers={"Authorization": f"Bearer {CRON_SECRET}"})
        )

    stack.replicate.latency = 0.3  # each run's Replicate calls overlap the other's
    try:
        runs = [threading.Thread(target=one_run) for _ in range(2)]
        for thread in runs:
            thread.start()
        for thread in runs:
            thread.join()
    finally:
        stack.replicate.latency = 0.0

    assert [a.status_code for a in answers] == [200, 200]
    assert len(weights_downloads(stack, body["trainingId"])) == 1
    assert weights_row(db, body["trainingId"])["archived_at"] is not None
    zip_deletes = [
        r
        for r in stack.blob.requests
        if r.path.endswith("/delete") and r.body and zip_key.encode() in r.body
    ]
    assert len(zip_deletes) == 1


def test_weights_replicate_no_longer_serves_are_given_up(stack, db, cron, succeed):
    stack.replicate.fail_next("GET", r"^/delivery/.*/trained_model.tar", 404)
    body, _ = succeed()

    db.execute("UPDATE lora_weights SET claimed_at = now() - interval '1 hour'")
    cron()

    row = weights_row(db, body["trainingId"])
    assert row["archived_at"] is None
    assert row["error"] == "Replicate no longer serves the file"
    assert len(weights_downloads(stack, body["trainingId"])) == 1


def test_a_failed_weights_copy_is_tried_again_later(stack, db, cron, succeed):
    stack.replicate.fail_next("GET", r"^/delivery/.*/trained_model.tar", 500)
    body, _ = succeed()
    db.execute(
        "UPDATE lora_weights SET claimed_at = now() - interval '16 minutes'"
        " WHERE training_run_id = %s",
        (weights_row(db, body["trainingId"])["training_run_id"],),
    )

    cron()

    row = weights_row(db, body["trainingId"])
    assert row["archived_at"] is not None
    assert row["attempts"] == 2
    assert row["error"] is None


def test_the_zip_of_an_ended_training_is_deleted(stack, db, cron, succeeded):
    body, _ = succeeded
    zip_key = run_row(db, body["trainingId"])["zip_key"]
    assert zip_key in stack.blob.objects()

    cron()

    assert run_row(db, body["trainingId"])["zip_key"] is None
    assert zip_key not in stack.blob.objects()


def test_the_zip_of_a_live_training_is_kept(api, user, stack, db, cron):
    body = started(api, user)

    cron()

    zip_key = run_row(db, body["trainingId"])["zip_key"]
    assert zip_key in stack.blob.objects()


@pytest.mark.parametrize("route", ["webhook", "cron"])
def test_a_failed_training_keeps_replicates_error_and_a_logs_tail(
    api, user, stack, db, cron, route
):
    body = started(api, user)
    stack.replicate.drop_webhooks = route == "cron"
    try:
        stack.replicate.advance(body["trainingId"], "processing", step=250)
        stack.replicate.advance(body["trainingId"], "failed", error="CUDA out of memory")
        stack.replicate.wait_for_deliveries()
    finally:
        stack.replicate.drop_webhooks = False
    if route == "cron":
        go_quiet(db, body["trainingId"], SIX_MINUTES)
        cron()

    model = progress(api, user, body["modelId"])["model"]
    assert model["status"] == "failed"
    assert model["error"] == "CUDA out of memory"
    logs = run_row(db, body["trainingId"])["logs_tail"]
    assert "flux_train_replicate:" in logs and "250/1000" in logs


def test_a_second_cron_run_repeats_nothing(stack, db, cron, succeeded):
    body, _ = succeeded
    cron()
    archived = weights_row(db, body["trainingId"])

    cron()

    assert weights_row(db, body["trainingId"]) == archived
    assert len(weights_downloads(stack, body["trainingId"])) == 1


def test_a_generation_whose_webhooks_were_lost_is_finished_by_the_cron(
    api, user, stack, db, cron, succeeded
):
    body, _ = succeeded
    generation_id = generate(api, user, body["modelId"])
    prediction_id = db.execute(
        "SELECT replicate_prediction_id FROM generations WHERE id = %s", (generation_id,)
    ).fetchone()["replicate_prediction_id"]
    stack.replicate.drop_webhooks = True
    try:
        stack.replicate.advance(prediction_id, "succeeded")
    finally:
        stack.replicate.drop_webhooks = False
    db.execute(
        "UPDATE generations SET created_at = now() - interval '6 minutes',"
        " last_event_at = now() - interval '6 minutes' WHERE id = %s",
        (generation_id,),
    )

    summary = cron()

    row = db.execute(
        "SELECT status, output_keys FROM generations WHERE id = %s", (generation_id,)
    ).fetchone()
    assert summary["generationsChecked"] >= 1
    assert row["status"] == "succeeded" and len(row["output_keys"]) == 1


def test_a_generation_that_never_reached_replicate_is_failed(api, user, stack, db, cron, succeeded):
    body, _ = succeeded
    generation_id = generate(api, user, body["modelId"])
    prediction = db.execute(
        "UPDATE generations SET status = 'pending', status_rank = 0,"
        " replicate_prediction_id = NULL, created_at = now() - interval '11 minutes'"
        " WHERE id = %s RETURNING (SELECT replicate_prediction_id FROM generations"
        " WHERE id = %s) AS id",
        (generation_id, generation_id),
    ).fetchone()
    stack.replicate.forget(prediction["id"])  # else the cron finds it and records it

    cron()

    row = db.execute("SELECT status, error FROM generations WHERE id = %s", (generation_id,))
    assert row.fetchone() == {
        "status": "failed",
        "error": "The generation never reached Replicate: its request was interrupted",
    }


def test_the_cron_finishes_a_deletion_that_failed_halfway(api, user, stack, db, cron, succeeded):
    body, _ = succeeded
    stack.replicate.fail_next("DELETE", r"/versions/", 500)
    assert api.delete(f"/api/models/{body['modelId']}", headers=user.headers).status_code == 202
    db.execute(
        "UPDATE user_models SET deletion_attempted_at = now() - interval '1 hour' WHERE id = %s",
        (body["modelId"],),
    )

    summary = cron()

    assert summary["deletionsFinished"] >= 1
    assert (
        db.execute("SELECT 1 FROM user_models WHERE id = %s", (body["modelId"],)).fetchall() == []
    )


def test_webhook_ids_older_than_a_day_are_pruned_and_recent_ones_kept(db, cron):
    old, recent = (f"msg_{uuid.uuid4().hex}" for _ in range(2))
    db.execute(
        "INSERT INTO webhook_events (webhook_id, object_id, status, received_at)"
        " VALUES (%s, 'x', 'processing', now() - interval '25 hours'),"
        " (%s, 'x', 'processing', now() - interval '23 hours')",
        (old, recent),
    )

    summary = cron()

    kept = db.execute(
        "SELECT webhook_id FROM webhook_events WHERE webhook_id = ANY(%s)", ([old, recent],)
    ).fetchall()
    assert [row["webhook_id"] for row in kept] == [recent]
    assert summary["webhookEventsPruned"] >= 1
