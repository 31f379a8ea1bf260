"""Trainings and predictions Replicate creates after we stopped waiting: adopted or canceled."""

import time

import httpx
import pytest

import lib.adapters.replicate
from tests.api.test_reconcile import CRON_SECRET
from tests.helpers import progress, start_training, started, upload_selfies

# The emulator answers the create this long after our (shortened) read timeout gave up.
CREATE_DELAY = 2.5
SHORT_TIMEOUT = httpx.Timeout(5.0, connect=1.0, read=1.0, write=1.0, pool=1.0)


@pytest.fixture
def slow_create(stack, monkeypatch):
    """Replicate's next create call answers only after our client stopped waiting."""
    monkeypatch.setattr(lib.adapters.replicate, "TIMEOUT", SHORT_TIMEOUT)
    # Clients are built with the timeout: none cached.
    monkeypatch.setattr(lib.adapters.replicate, "_clients", {})

    def delay(path_pattern: str) -> None:
        stack.replicate.delay_next("POST", path_pattern, CREATE_DELAY)

    return delay


def gave_up_start(api, user, db, slow_create) -> dict:
    """A start that answered 504 while Replicate went on to create the training: its run row."""
    urls = upload_selfies(api, user)
    slow_create(r"/trainings$")
    response = start_training(api, user, urls)
    assert response.status_code == 504, response.text
    assert response.json()["code"] == "replicate_timeout"
    return latest_run(db, "user_id", user.id)


def latest_run(db, model_or_user_column: str, value) -> dict:
    return db.execute(
        f"SELECT * FROM training_runs WHERE {model_or_user_column} = %s"
        " ORDER BY created_at DESC LIMIT 1",
        (value,),
    ).fetchone()


def created_upstream(stack, marker: str, kind: str = "trainings") -> dict:
    """The object the emulator created whose input names `marker`, once it exists."""
    headers = {"Authorization": f"Bearer {stack.replicate.token}"}
    deadline = time.monotonic() + CREATE_DELAY + 5
    while time.monotonic() < deadline:
        listed = httpx.get(f"{stack.replicate.url}/v1/{kind}", headers=headers).json()
        for item in listed["results"]:
            if marker in str(item["input"]):
                return item
        time.sleep(0.1)
    raise AssertionError(f"Replicate never created the {kind[:-1]} for {marker}")


def cron(api, configure) -> dict:
    configure(CRON_SECRET=CRON_SECRET)
    response = api.get("/api/cron/reconcile", headers={"Authorization": f"Bearer {CRON_SECRET}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_training_created_after_start_gave_up_is_adopted_by_its_webhook(
    api, user, stack, db, slow_create
):
    run = gave_up_start(api, user, db, slow_create)
    assert (run["status"], run["create_unanswered"]) == ("failed", True)
    orphan = created_upstream(stack, str(run["id"]))

    stack.replicate.advance(orphan["id"], "processing", step=300)
    stack.replicate.wait_for_deliveries()

    model_id = str(run["model_id"])
    assert progress(api, user, model_id)["status"] == "training"
    stack.replicate.advance(orphan["id"], "succeeded")
    stack.replicate.wait_for_deliveries()
    answer = progress(api, user, model_id)
    assert answer["status"] == "completed"
    assert latest_run(db, "user_id", user.id)["replicate_training_id"] == orphan["id"]
    assert stack.replicate.get_object(orphan["id"])["status"] == "succeeded"


def test_an_orphan_training_is_canceled_when_the_user_has_started_another(
    api, user, stack, db, slow_create
):
    run = gave_up_start(api, user, db, slow_create)
    orphan = created_upstream(stack, str(run["id"]))
    started(api, user)  # the user tried again with a new model before the orphan reported

    stack.replicate.advance(orphan["id"], "processing", step=10)
    stack.replicate.wait_for_deliveries()

    assert stack.replicate.get_object(orphan["id"])["status"] == "canceled"
    first = latest_run(db, "model_id", run["model_id"])
    assert (first["status"], first["replicate_training_id"]) == ("failed", None)


def test_the_progress_poll_adopts_an_orphan_training_whose_webhooks_never_came(
    api, user, stack, db, slow_create
):
    stack.replicate.drop_webhooks = True
    try:
        run = gave_up_start(api, user, db, slow_create)
        orphan = created_upstream(stack, str(run["id"]))
        stack.replicate.advance(orphan["id"], "processing", step=200)
    finally:
        stack.replicate.drop_webhooks = False

    answer = progress(api, user, str(run["model_id"]))

    assert answer["status"] == "training"
    assert latest_run(db, "user_id", user.id)["replicate_training_id"] == orphan["id"]


def test_the_cron_adopts_an_orphan_training_whose_webhooks_never_came(
    api, user, stack, configure, db, slow_create
):
    stack.replicate.drop_webhooks = True
    try:
        run = gave_up_start(api, user, db, slow_create)
        orphan = created_upstream(stack, str(run["id"]))
        stack.replicate.advance(orphan["id"], "processing", step=200)
    finally:
        stack.replicate.drop_webhooks = False

    summary = cron(api, configure)

    assert summary["orphansAdopted"] == 1
    adopted = latest_run(db, "user_id", user.id)
    assert (adopted["replicate_training_id"], adopted["status"]) == (orphan["id"], "processing")
    assert adopted["error"] is None


def test_the_cron_cancels_an_orphan_training_of_a_model_retried_since(
    api, user, stack, configure, db, slow_create
):
    stack.replicate.drop_webhooks = True
    try:
        run = gave_up_start(api, user, db, slow_create)
        orphan = created_upstream(stack, str(run["id"]))
        retried = api.post(
            "/api/training/retry", json={"modelId": str(run["model_id"])}, headers=user.headers
        )
        assert retried.status_code == 201, retried.text
    finally:
        stack.replicate.drop_webhooks = False

    summary = cron(api, configure)

    assert summary["orphansCanceled"] == 1
    assert stack.replicate.get_object(orphan["id"])["status"] == "canceled"
    assert (
        latest_run(db, "user_id", user.id)["replicate_training_id"] == retried.json()["trainingId"]
    )


def test_a_prediction_created_after_generate_gave_up_is_adopted_by_its_webhook(
    api, user, stack, db, slow_create
):
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()
    slow_create(r"^/v1/predictions$")
    prompt = "a portrait in the rain, orphan check"

    response = api.post(
        "/api/studio/generate",
        json={"modelId": body["modelId"], "prompt": prompt},
        headers=user.headers,
    )

    assert response.status_code == 504, response.text
    orphan = created_upstream(stack, "orphan check", kind="predictions")
    stack.replicate.advance(orphan["id"], "succeeded")
    stack.replicate.wait_for_deliveries()
    row = db.execute(
        "SELECT status, replicate_prediction_id, output_urls FROM generations WHERE model_id = %s",
        (body["modelId"],),
    ).fetchone()
    assert (row["status"], row["replicate_prediction_id"]) == ("succeeded", orphan["id"])
    assert row["output_urls"]


def test_the_cron_adopts_an_orphan_prediction_whose_webhooks_never_came(
    api, user, stack, db, configure, slow_create
):
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()
    slow_create(r"^/v1/predictions$")
    stack.replicate.drop_webhooks = True
    try:
        response = api.post(
            "/api/studio/generate",
            json={"modelId": body["modelId"], "prompt": "a portrait, cron orphan check"},
            headers=user.headers,
        )
        assert response.status_code == 504, response.text
        orphan = created_upstream(stack, "cron orphan check", kind="predictions")
        stack.replicate.advance(orphan["id"], "succeeded")
    finally:
        stack.replicate.drop_webhooks = False

    summary = cron(api, configure)

    assert summary["orphansAdopted"] >= 1
    row = db.execute(
        "SELECT status, replicate_prediction_id FROM generations WHERE model_id = %s",
        (body["modelId"],),
    ).fetchone()
    assert (row["status"], row["replicate_prediction_id"]) == ("succeeded", orphan["id"])
