"""POST /api/studio/generate and GET /api/studio/generations, against the emulators."""

import io
import re

import httpx
import pytest
from PIL import Image

from lib.adapters.clients import get_storage
from lib.settings import get_settings
from tests.helpers import User, deliver, start_training, upload_selfies


@pytest.fixture
def model(api, user, stack):
    """A model whose training succeeded: the start body."""
    body = start_training(api, user, upload_selfies(api, user, 5)).json()
    stack.replicate.advance(body["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()
    return body


def generate(api, user, model_id, **extra):
    body = {"modelId": model_id, "prompt": "a portrait in the mountains", **extra}
    return api.post("/api/studio/generate", json=body, headers=user.headers)


def generated(api, user, model_id, **extra):
    response = generate(api, user, model_id, **extra)
    assert response.status_code == 201, response.text
    return response.json()["generation"]


def gallery(api, user, model_id):
    response = api.get(
        "/api/studio/generations", params={"modelId": model_id}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["generations"]


def generation_row(db, generation_id):
    return db.execute("SELECT * FROM generations WHERE id = %s", (generation_id,)).fetchone()


def prediction_requests(stack, generation_id):
    return [
        r
        for r in stack.replicate.requests
        if r.method == "POST"
        and r.path == "/v1/predictions"
        and f"generation={generation_id}" in r.json.get("webhook", "")
    ]


def finish(stack, db, generation_id):
    """Let Replicate finish the prediction and send its webhooks."""
    prediction_id = generation_row(db, generation_id)["replicate_prediction_id"]
    stack.replicate.advance(prediction_id, "succeeded")
    stack.replicate.wait_for_deliveries(timeout=15)
    return prediction_id


def stored_image(key):
    return Image.open(io.BytesIO(get_storage(get_settings()).read(key)))


def test_a_generation_completes_through_the_webhook_with_its_images_in_our_storage(
    api, user, stack, db, model
):
    generation = generated(api, user, model["modelId"], numOutputs=2)
    finish(stack, db, generation["id"])

    [shown] = gallery(api, user, model["modelId"])
    row = generation_row(db, generation["id"])
    assert generation["status"] == "starting"
    assert shown["status"] == "succeeded" and shown["completedAt"]
    assert shown["images"] == row["output_urls"] and len(row["output_keys"]) == 2
    assert [stored_image(key).format for key in row["output_keys"]] == ["WEBP", "WEBP"]


def test_the_gallery_shows_our_storage_urls_not_replicates(api, user, stack, db, model):
    generation = generated(api, user, model["modelId"], outputFormat="png")
    prediction_id = finish(stack, db, generation["id"])

    [shown] = gallery(api, user, model["modelId"])
    [replicate_url] = stack.replicate.get_object(prediction_id)["output"]
    [key] = generation_row(db, generation["id"])["output_keys"]
    assert (
        shown["images"][0].startswith("https://")
        and ".blob.vercel-storage.com/" in (shown["images"][0])
    )
    assert key.endswith(f"/generations/{generation['id']}/0.png")
    assert get_storage(get_settings()).read(key) == httpx.get(replicate_url).content
    assert stored_image(key).format == "PNG"


def test_replicate_receives_the_models_version_the_defaults_and_the_webhook(
    api, user, stack, db, model
):
    generation = generated(api, user, model["modelId"])

    [sent] = prediction_requests(stack, generation["id"])
    trained = stack.replicate.get_object(model["trainingId"])["output"]["version"]
    assert sent.json["version"] == trained
    assert sent.json["input"] == {
        "prompt": f"{model['triggerWord']} a portrait in the mountains",
        "num_outputs": 1,
        "aspect_ratio": "1:1",
        "output_format": "webp",
        "lora_scale": 1,
    }
    assert sent.json["webhook"] == (
        f"{stack.url}/api/webhooks/replicate?generation={generation['id']}"
    )
    assert sent.json["webhook_events_filter"] == ["start", "completed"]
    assert generation["input"] == {
        "numOutputs": 1,
        "aspectRatio": "1:1",
        "outputFormat": "webp",
        "loraScale": 1,
        "seed": None,
    }


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a portrait in the mountains", "{tw} a portrait in the mountains"),
        ("a photo of {tw} on a beach", "a photo of {tw} on a beach"),
        ("{tw}, smiling", "{tw}, smiling"),
        ("{tw}'s portrait", "{tw}'s portrait"),
        ("{tw}9 is another word", "{tw} {tw}9 is another word"),
        ("{upper} is not it", "{tw} {upper} is not it"),
    ],
    ids=["absent", "inside", "first", "possessive", "longer-token", "other-case"],
)
def test_the_prompt_sent_carries_the_trigger_word_exactly_once(
    api, user, stack, model, prompt, expected
):
    tw = model["triggerWord"]
    fill = {"tw": tw, "upper": tw.upper()}

    generation = generated(api, user, model["modelId"], prompt=prompt.format(**fill))

    [sent] = prediction_requests(stack, generation["id"])
    assert sent.json["input"]["prompt"] == expected.format(**fill)
    assert generation["prompt"] == expected.format(**fill)
    assert len(re.findall(rf"\b{tw}\b", sent.json["input"]["prompt"])) == 1


def test_a_model_still_training_is_409_model_not_ready(api, user, stack, db):
    body = start_training(api, user, upload_selfies(api, user, 5)).json()

    response = generate(api, user, body["modelId"])

    assert response.status_code == 409
    assert response.json()["code"] == "model_not_ready"
    assert (
        db.execute("SELECT count(*) FROM generations WHERE user_id = %s", (user.id,)).fetchone()[
            "count"
        ]
        == 0
    )


@pytest.mark.parametrize("endpoint", ["generate", "generations"])
def test_another_users_model_is_404_like_a_missing_one(api, model, endpoint):
    stranger = User("someone-else")
    if endpoint == "generate":
        response = generate(api, stranger, model["modelId"])
    else:
        response = api.get(
            "/api/studio/generations",
            params={"modelId": model["modelId"]},
            headers=stranger.headers,
        )

    assert response.status_code == 404
    assert response.json()["code"] == "model_not_found"


def test_a_lost_webhook_is_recovered_through_the_generations_endpoint(api, user, stack, db, model):
    generation = generated(api, user, model["modelId"])
    prediction_id = generation_row(db, generation["id"])["replicate_prediction_id"]
    stack.replicate.drop_webhooks = True
    try:
        stack.replicate.advance(prediction_id, "succeeded")
    finally:
        stack.replicate.drop_webhooks = False
    recent = gallery(api, user, model["modelId"])
    db.execute(
        "UPDATE generations SET created_at = now() - interval '2 minutes',"
        " last_event_at = now() - interval '2 minutes' WHERE id = %s",
        (generation["id"],),
    )

    [recovered] = gallery(api, user, model["modelId"])
    [again] = gallery(api, user, model["modelId"])

    polls = [r for r in stack.replicate.requests if r.path == f"/v1/predictions/{prediction_id}"]
    assert recent[0]["status"] == "starting"
    assert recovered["status"] == "succeeded" and len(recovered["images"]) == 1
    assert again == recovered
    assert len(polls) == 1


def test_a_failed_copy_leaves_the_generation_unfinished_until_a_poll_copies_it(
    api, user, stack, db, model
):
    generation = generated(api, user, model["modelId"])
    stack.replicate.fail_next("GET", r"^/delivery/", 500)

    finish(stack, db, generation["id"])
    unfinished = generation_row(db, generation["id"])
    db.execute(
        "UPDATE generations SET last_event_at = now() - interval '2 minutes' WHERE id = %s",
        (generation["id"],),
    )
    [recovered] = gallery(api, user, model["modelId"])

    completed = [d for d in stack.replicate.deliveries if f"generation={generation['id']}" in d.url]
    assert [d.status for d in completed if d.event == "completed"] == [200]
    assert unfinished["status"] == "processing" and unfinished["output_keys"] == []
    assert recovered["status"] == "succeeded" and len(recovered["images"]) == 1


def test_an_output_outside_replicates_delivery_host_is_never_fetched(api, user, stack, db, model):
    generation = generated(api, user, model["modelId"])
    prediction_id = generation_row(db, generation["id"])["replicate_prediction_id"]
    payload = {"id": prediction_id, "status": "succeeded", "output": ["http://10.0.0.1/x.webp"]}

    response = deliver(api, stack, payload)

    assert response.status_code == 200
    assert generation_row(db, generation["id"])["output_keys"] == []
    assert not [r for r in stack.replicate.requests if "10.0.0.1" in r.path]


def test_replicate_failing_on_create_is_502_and_the_generation_is_failed(
    api, user, stack, db, model
):
    stack.replicate.fail_next("POST", r"^/v1/predictions$", 500)

    response = generate(api, user, model["modelId"])

    [row] = db.execute(
        "SELECT status, error FROM generations WHERE model_id = %s", (model["modelId"],)
    ).fetchall()
    assert response.status_code == 502
    assert response.json()["code"] == "replicate_error"
    assert row["status"] == "failed" and "500" in row["error"]
    assert gallery(api, user, model["modelId"])[0]["status"] == "failed"


def test_a_failed_prediction_shows_replicates_error(api, user, stack, db, model):
    generation = generated(api, user, model["modelId"])
    prediction_id = generation_row(db, generation["id"])["replicate_prediction_id"]

    stack.replicate.advance(prediction_id, "failed", error="NSFW content detected")
    stack.replicate.wait_for_deliveries()

    [shown] = gallery(api, user, model["modelId"])
    assert shown["status"] == "failed"
    assert shown["error"] == "NSFW content detected"
    assert shown["images"] == []


def test_the_gallery_lists_the_models_generations_newest_first(api, user, model):
    first = generated(api, user, model["modelId"], prompt="first")
    second = generated(api, user, model["modelId"], prompt="second")

    shown = gallery(api, user, model["modelId"])

    assert [g["id"] for g in shown] == [second["id"], first["id"]]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"prompt": ""}, 400, "invalid_body"),
        ({"modelId": None}, 400, "invalid_body"),
        ({"numOutputs": 5}, 422, "invalid_values"),
        ({"numOutputs": 1.5}, 422, "invalid_values"),
        ({"aspectRatio": "7:3"}, 422, "invalid_values"),
        ({"outputFormat": "gif"}, 422, "invalid_values"),
        ({"loraScale": 3.5}, 422, "invalid_values"),
        ({"seed": -1}, 422, "invalid_values"),
        ({"prompt": "x" * 2001}, 422, "invalid_values"),
    ],
)
def test_invalid_generate_bodies_are_refused_before_anything_is_written(
    api, user, db, model, change, status, code
):
    body = {"modelId": model["modelId"], "prompt": "a portrait", **change}

    response = api.post("/api/studio/generate", json=body, headers=user.headers)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert (
        db.execute("SELECT count(*) FROM generations WHERE user_id = %s", (user.id,)).fetchone()[
            "count"
        ]
        == 0
    )


def test_generate_without_a_replicate_token_is_503(api, user, model, configure):
    configure(REPLICATE_API_TOKEN=None)

    response = generate(api, user, model["modelId"])

    assert response.status_code == 503
    assert response.json()["error"] == "REPLICATE_API_TOKEN environment variable is not set"


def test_images_past_the_daily_generation_limit_are_429(api, user, model, configure, db):
    configure(GENERATION_DAILY_LIMIT="3")
    generated(api, user, model["modelId"], numOutputs=2)

    over = generate(api, user, model["modelId"], numOutputs=2)

    assert over.status_code == 429
    assert over.json()["code"] == "quota_exceeded"
    assert "Retry-After" in over.headers
    rows = db.execute("SELECT count(*) AS n FROM generations WHERE user_id = %s", (user.id,))
    assert rows.fetchone()["n"] == 1
