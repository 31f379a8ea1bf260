"""GET/POST /api/studio/packs: curated prompt sets run as generations, counted at once."""

import re

import pytest

from lib.studio.packs import MAX_IMAGES, MIN_IMAGES, all_packs
from tests.helpers import User, start_training, upload_selfies

PACK = "professional-headshots"


@pytest.fixture
def model(api, user, stack):
    """A model whose training succeeded: the start body."""
    body = start_training(api, user, upload_selfies(api, user, 5)).json()
    stack.replicate.advance(body["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()
    return body


def start_pack(api, user, model_id, pack_id=PACK):
    body = {"modelId": model_id, "packId": pack_id}
    return api.post("/api/studio/packs", json=body, headers=user.headers)


def listed(api, user, **params):
    response = api.get("/api/studio/packs", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


def pack_generations(db, run_id):
    return db.execute(
        "SELECT * FROM generations WHERE pack_run_id = %s ORDER BY created_at, id", (run_id,)
    ).fetchall()


def predictions_sent(stack, generations):
    ids = {f"generation={g['id']}" for g in generations}
    return [
        r
        for r in stack.replicate.requests
        if r.method == "POST"
        and r.path == "/v1/predictions"
        and r.json.get("webhook", "").rsplit("?", 1)[-1] in ids
    ]


def test_the_packs_are_listed_with_their_image_counts(api, user):
    packs = listed(api, user)["packs"]

    assert len(packs) >= 3 and "runs" not in listed(api, user)
    assert {p["id"] for p in packs} >= {PACK, "outdoor-lifestyle", "studio-portrait"}
    assert all(MIN_IMAGES <= p["imageCount"] <= MAX_IMAGES for p in packs)


def test_every_prompt_of_every_pack_holds_the_trigger_word_placeholder_once():
    for pack in all_packs().values():
        model = {"trigger_word": "user12345678", "gender": "woman"}
        prompts = [pack.prompt(i, model) for i in range(len(pack.prompts))]
        assert all(len(re.findall(r"\buser12345678\b", p)) == 1 for p in prompts), pack.id
        assert all("{" not in p for p in prompts), pack.id


def test_a_pack_starts_one_generation_per_image_on_the_models_own_version(
    api, user, stack, db, model
):
    response = start_pack(api, user, model["modelId"])

    assert response.status_code == 201, response.text
    run = response.json()["run"]
    generations = pack_generations(db, run["id"])
    sent = predictions_sent(stack, generations)
    version = stack.replicate.get_object(model["trainingId"])["output"]["version"]
    trigger = model["triggerWord"]
    assert (run["status"], run["total"], run["done"], run["packId"]) == ("processing", 6, 0, PACK)
    assert len(generations) == len(sent) == 6
    assert {s.json["version"] for s in sent} == {version}
    assert all(len(re.findall(rf"\b{trigger}\b", s.json["input"]["prompt"])) == 1 for s in sent)
    assert all(" woman" in s.json["input"]["prompt"] for s in sent)
    assert {s.json["input"]["aspect_ratio"] for s in sent} == {"4:5"}


def test_a_run_completes_when_every_generation_ended_and_the_app_hears_it_once(
    api, user, stack, db, model, app_receiver
):
    run = start_pack(api, user, model["modelId"]).json()["run"]
    generations = pack_generations(db, run["id"])
    *succeeding, failing = [g["replicate_prediction_id"] for g in generations]
    for prediction_id in succeeding:
        stack.replicate.advance(prediction_id, "succeeded")
    stack.replicate.advance(failing, "failed", error="NSFW content detected")
    stack.replicate.wait_for_deliveries(timeout=30)

    [shown] = listed(api, user, modelId=model["modelId"])["runs"]
    gallery = api.get(
        "/api/studio/generations", params={"modelId": model["modelId"]}, headers=user.headers
    ).json()["generations"]
    app_receiver.wait_for(
        lambda ds: len({d.webhook_id for d in ds if d.event["data"].get("userId") == user.id}) >= 7
    )
    events = [e for e in app_receiver.events() if e["data"].get("userId") == user.id]
    [completed] = [e for e in events if e["type"] == "pack.completed"]
    assert (shown["status"], shown["done"], shown["failed"]) == ("completed", 6, 1)
    assert shown["completedAt"] and completed["data"] == {**shown, "userId": user.id}
    assert {g["packRunId"] for g in gallery} == {run["id"]}
    known = [g["costUsd"] for g in gallery if g["costUsd"] is not None]
    assert known and shown["costUsd"] == pytest.approx(sum(known))
    assert sorted(e["type"] for e in events if e["type"].startswith("generation.")) == [
        "generation.failed",
        *["generation.succeeded"] * 5,
    ]


def test_a_pack_larger_than_the_remaining_quota_starts_nothing(
    api, user, stack, db, model, configure
):
    configure(GENERATION_DAILY_LIMIT="8")
    first = start_pack(api, user, model["modelId"])
    requests_before = len(stack.replicate.requests)

    second = start_pack(api, user, model["modelId"], "outdoor-lifestyle")

    assert first.status_code == 201 and second.status_code == 429
    assert second.json()["code"] == "quota_exceeded"
    assert len(stack.replicate.requests) == requests_before
    runs = db.execute("SELECT pack_id FROM pack_runs WHERE user_id = %s", (user.id,)).fetchall()
    assert [r["pack_id"] for r in runs] == [PACK]
    count = db.execute("SELECT count(*) FROM generations WHERE user_id = %s", (user.id,))
    assert count.fetchone()["count"] == 6


def test_an_unknown_pack_is_404_pack_not_found(api, user, model):
    response = start_pack(api, user, model["modelId"], "no-such-pack")

    assert response.status_code == 404
    assert response.json()["code"] == "pack_not_found"


def test_a_model_still_training_is_409_model_not_ready(api, user, db):
    body = start_training(api, user, upload_selfies(api, user, 5)).json()

    response = start_pack(api, user, body["modelId"])

    assert response.status_code == 409
    assert response.json()["code"] == "model_not_ready"
    assert db.execute("SELECT 1 FROM pack_runs WHERE user_id = %s", (user.id,)).fetchone() is None


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_users_model_is_404_like_a_missing_one(api, model, method):
    stranger = User("someone-else")
    if method == "POST":
        response = start_pack(api, stranger, model["modelId"])
    else:
        response = api.get(
            "/api/studio/packs", params={"modelId": model["modelId"]}, headers=stranger.headers
        )

    assert response.status_code == 404
    assert response.json()["code"] == "model_not_found"


def test_a_body_without_a_pack_id_is_400_and_starts_nothing(api, user, model, db):
    response = api.post(
        "/api/studio/packs", json={"modelId": model["modelId"]}, headers=user.headers
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_body"
    assert db.execute("SELECT 1 FROM pack_runs WHERE user_id = %s", (user.id,)).fetchone() is None


def test_replicate_refusing_a_prediction_fails_it_and_the_rest_and_the_run_completes(
    api, user, stack, db, model
):
    stack.replicate.fail_next("POST", r"^/v1/predictions$", 500)

    response = start_pack(api, user, model["modelId"], "studio-portrait")

    assert response.status_code == 201, response.text
    run = response.json()["run"]
    assert (run["status"], run["total"], run["done"], run["failed"]) == ("completed", 5, 5, 5)
    rows = pack_generations(db, run["id"])
    assert {r["status"] for r in rows} == {"failed"} and all("500" in r["error"] for r in rows)
    assert len(predictions_sent(stack, rows)) == 1  # the refused one; the rest were not tried
