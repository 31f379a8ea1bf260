"""Upload → start → webhooks → progress, through HTTP against the emulators and PostgreSQL."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers import User, progress, start_training, started, upload_selfies


def test_a_training_reaches_completed_through_signed_webhooks(api, user, stack, db):
    body = started(api, user)
    emulator = stack.replicate
    seen = [progress(api, user, body["modelId"])]
    for step in (0, 120, 370, 370, 999):
        emulator.advance(body["trainingId"], "processing", step=step)
        emulator.wait_for_deliveries()
        seen.append(progress(api, user, body["modelId"]))
    emulator.advance(body["trainingId"], "succeeded")
    emulator.wait_for_deliveries()
    final = progress(api, user, body["modelId"])

    assert [p["status"] for p in seen] == ["starting"] + ["training"] * 5
    assert [p["progress"] for p in seen] == [0, 0, 12, 37, 37, 99]
    assert final["status"] == "completed" and final["progress"] == 100
    output = emulator.get_object(body["trainingId"])["output"]
    destination, version = output["version"].split(":")
    model = final["model"]
    assert model["replicateModelId"] == destination
    assert model["replicateVersionId"] == version
    assert model["loraWeightsUrl"] == output["weights"]
    assert model["triggerWord"] == body["triggerWord"]
    assert model["completedAt"] is not None
    row = db.execute(
        "SELECT status, progress FROM training_runs WHERE replicate_training_id = %s",
        (body["trainingId"],),
    ).fetchone()
    assert row == {"status": "succeeded", "progress": 100}


def test_start_answers_the_contracts_body_with_a_user_trigger_word(api, user):
    body = started(api, user)

    assert body["status"] == "starting"
    assert body["triggerWord"].startswith("user") and len(body["triggerWord"]) == 12
    assert body["triggerWord"][4:].isdigit()


def test_the_trainer_receives_exactly_the_contracts_input(api, user, stack):
    body = started(api, user)

    create = [
        r
        for r in stack.replicate.requests
        if r.method == "POST"
        and r.path.endswith("/trainings")
        and r.json["input"].get("trigger_word") == body["triggerWord"]
    ]
    assert len(create) == 1
    sent = create[0].json
    zip_url = sent["input"].pop("input_images")
    assert sent["input"] == {
        "steps": 1000,
        "lora_rank": 16,
        "optimizer": "adamw8bit",
        "batch_size": 1,
        "resolution": "512,768,1024",
        "autocaption": True,
        "learning_rate": 0.0004,
        "trigger_word": body["triggerWord"],
        "autocaption_prefix": f"a photo of {body['triggerWord']}, a woman, ",
    }
    assert zip_url.endswith(".zip")
    assert sent["destination"].endswith(f"/sselfie-{body['triggerWord']}")
    assert sent["webhook"].startswith(f"{stack.url}/api/webhooks/replicate?run=")
    assert sent["webhook_events_filter"] == ["start", "logs", "completed"]
    assert create[0].path.startswith("/v1/models/ostris/flux-dev-lora-trainer/versions/")


def test_num_repeats_is_recorded_with_the_run_but_not_sent(api, user, db):
    body = started(api, user)

    row = db.execute(
        "SELECT parameters FROM training_runs WHERE replicate_training_id = %s",
        (body["trainingId"],),
    ).fetchone()
    assert row["parameters"]["num_repeats"] == 10
    assert row["parameters"]["steps"] == 1000


def test_four_images_are_refused_with_the_setup_guides_message(api, user, db):
    response = start_training(api, user, upload_selfies(api, user, 4))

    assert response.status_code == 400
    assert response.json() == {
        "error": "At least 5 training images are required",
        "code": "not_enough_images",
    }
    assert db.execute("SELECT 1 FROM user_models WHERE user_id = %s", (user.id,)).fetchall() == []


@pytest.fixture
def canary():
    """A server that records any request, to prove a URL is never fetched."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/selfie.jpg", hits
    server.shutdown()


def test_a_url_that_is_not_the_callers_upload_is_refused_and_never_fetched(api, user, canary):
    url, hits = canary
    urls = upload_selfies(api, user, 5)

    response = start_training(api, user, [*urls[:4], url])

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_image"
    assert url in response.json()["error"]
    assert hits == []


def test_another_users_upload_counts_as_unknown(api, user):
    other = User("someone-else-" + user.id)
    urls = upload_selfies(api, other, 5)

    response = start_training(api, user, urls)

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_image"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/training/upload"),
        ("POST", "/api/training/start"),
        ("GET", "/api/training/progress?modelId=x"),
        ("POST", "/api/training/cancel"),
        ("POST", "/api/training/retry"),
    ],
)
def test_user_endpoints_answer_401_json_without_a_token(api, method, path):
    response = api.request(method, path)

    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"


def test_a_token_signed_with_another_secret_is_refused(api):
    from dev.tokens import issue_token

    headers = {"Authorization": f"Bearer {issue_token('not-our-secret', 'mallory')}"}
    response = api.get("/api/training/progress?modelId=x", headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_another_users_model_is_404_exactly_like_a_missing_one(api, user):
    body = started(api, user)
    stranger = User("stranger-" + user.id)

    foreign = api.get(
        "/api/training/progress", params={"modelId": body["modelId"]}, headers=stranger.headers
    )
    missing = api.get(
        "/api/training/progress",
        params={"modelId": "00000000-0000-0000-0000-000000000000"},
        headers=stranger.headers,
    )

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()


def test_a_second_start_while_training_is_409(api, user):
    started(api, user)

    again = start_training(api, user, upload_selfies(api, user, 5))

    assert again.status_code == 409
    assert again.json()["code"] == "training_in_progress"


def test_the_same_idempotency_key_answers_the_same_201(api, user, stack):
    urls = upload_selfies(api, user, 5)
    key = {"Idempotency-Key": "start-" + user.id}
    body = {"modelName": "Me", "modelType": "flux", "imageUrls": urls}

    first = api.post("/api/training/start", json=body, headers={**user.headers, **key})
    creates = len([r for r in stack.replicate.requests if r.path.endswith("/trainings")])
    second = api.post("/api/training/start", json=body, headers={**user.headers, **key})

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len([r for r in stack.replicate.requests if r.path.endswith("/trainings")]) == creates


@pytest.mark.parametrize(
    ("upstream", "status", "code"),
    [(500, 502, "replicate_error"), (429, 503, "replicate_throttled")],
)
def test_replicate_failing_on_create_leaves_no_active_model(
    api, user, stack, db, upstream, status, code
):
    urls = upload_selfies(api, user, 5)
    stack.replicate.fail_next("POST", r"/trainings$", upstream)

    response = start_training(api, user, urls)

    assert response.status_code == status
    assert response.json()["code"] == code
    runs = db.execute("SELECT status FROM training_runs WHERE user_id = %s", (user.id,)).fetchall()
    assert runs == [{"status": "failed"}]
    assert start_training(api, user, urls).status_code == 201  # nothing left blocking the user


def test_a_missing_replicate_token_is_named_and_changes_nothing(api, user, db, configure):
    urls = upload_selfies(api, user, 5)
    configure(REPLICATE_API_TOKEN=None)

    response = start_training(api, user, urls)

    assert response.status_code == 503
    assert response.json() == {
        "error": "REPLICATE_API_TOKEN environment variable is not set",
        "code": "config_missing",
    }
    assert db.execute("SELECT 1 FROM user_models WHERE user_id = %s", (user.id,)).fetchall() == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"modelName": "Me"}, "invalid_body"),
        ({"modelName": "Me", "imageUrls": "https://x"}, "invalid_body"),
        ({"imageUrls": [f"https://x/{i}" for i in range(5)]}, "invalid_body"),
    ],
)
def test_malformed_start_bodies_are_400(api, user, body, code):
    response = api.post("/api/training/start", json=body, headers=user.headers)

    assert response.status_code == 400
    assert response.json()["code"] == code


def test_start_refuses_a_body_that_is_not_json(api, user):
    response = api.post("/api/training/start", content=b"modelName=x", headers=user.headers)

    assert response.status_code == 415
