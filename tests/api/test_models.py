"""GET /api/models and GET /api/models/{id}: the caller's models, as progress shows them."""

import pytest

from tests.helpers import User, start_training, upload_selfies


@pytest.fixture
def three_models(api, user, db, configure):
    """Three of the user's models, oldest first."""
    urls = upload_selfies(api, user, 5)
    ids = []
    for name in ("First", "Second", "Third"):
        response = start_training(api, user, urls, modelName=name)
        assert response.status_code == 201, response.text
        ids.append(response.json()["modelId"])
        db.execute(
            "UPDATE training_runs SET status = 'failed', status_rank = 3 WHERE user_id = %s",
            (user.id,),
        )
    return ids


def progress_model(api, user, model_id):
    response = api.get("/api/training/progress", params={"modelId": model_id}, headers=user.headers)
    return response.json()["model"]


def test_the_list_is_newest_first_and_each_is_progress_model_object(api, user, three_models):
    response = api.get("/api/models", headers=user.headers)

    assert response.status_code == 200
    body = response.json()
    assert [m["id"] for m in body["models"]] == three_models[::-1]
    assert body["models"] == [progress_model(api, user, i) for i in three_models[::-1]]
    assert body["nextCursor"] is None


def test_pages_follow_the_cursor_without_gaps_or_repeats(api, user, three_models):
    first = api.get("/api/models", params={"limit": 2}, headers=user.headers).json()
    second = api.get(
        "/api/models", params={"limit": 2, "cursor": first["nextCursor"]}, headers=user.headers
    ).json()

    assert [m["id"] for m in first["models"] + second["models"]] == three_models[::-1]
    assert first["nextCursor"] and second["nextCursor"] is None


def test_the_list_shows_only_the_callers_models(api, user, three_models):
    stranger = User("stranger-" + user.id)

    response = api.get("/api/models", headers=stranger.headers)

    assert response.json() == {"models": [], "nextCursor": None}


def test_one_model_is_the_same_object_progress_shows(api, user, three_models):
    response = api.get(f"/api/models/{three_models[0]}", headers=user.headers)

    assert response.status_code == 200
    assert response.json() == progress_model(api, user, three_models[0])
    assert response.json()["name"] == "First"


@pytest.mark.parametrize("model_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_an_unknown_model_is_404(api, user, model_id):
    response = api.get(f"/api/models/{model_id}", headers=user.headers)

    assert response.status_code == 404
    assert response.json() == {"error": "Model not found", "code": "model_not_found"}


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5", "²", "", " 5"])
def test_a_limit_outside_1_to_100_is_400(api, user, limit):
    response = api.get("/api/models", params={"limit": limit}, headers=user.headers)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_parameter"


@pytest.mark.parametrize("cursor", ["garbage", "bm90fGEtY3Vyc29y", "x" * 300, "é"])
def test_a_cursor_we_did_not_hand_out_is_400(api, user, cursor):
    response = api.get("/api/models", params={"cursor": cursor}, headers=user.headers)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"
