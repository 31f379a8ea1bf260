"""Limits that protect the bill, through HTTP: one training at a time, three a day."""

import threading
from concurrent.futures import ThreadPoolExecutor

from tests.helpers import start_training, upload_selfies


def finish_all_runs(db, user):
    """Make every run of the user terminal, as if Replicate had finished them."""
    db.execute(
        "UPDATE training_runs SET status = 'succeeded', status_rank = 3, completed_at = now()"
        " WHERE user_id = %s",
        (user.id,),
    )


def test_ten_concurrent_starts_by_one_user_accept_exactly_one(api, user):
    urls = upload_selfies(api, user, 5)
    barrier = threading.Barrier(10)

    def racer(index):
        barrier.wait()
        return start_training(api, user, urls, modelName=f"Me {index}")

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(racer, range(10)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 9
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"training_in_progress"}


def test_the_fourth_training_in_a_day_is_429_saying_when_it_resets(api, user, db):
    urls = upload_selfies(api, user, 5)
    for _ in range(3):
        assert start_training(api, user, urls).status_code == 201
        finish_all_runs(db, user)

    fourth = start_training(api, user, urls)

    assert fourth.status_code == 429
    assert fourth.json()["code"] == "quota_exceeded"
    assert "at most 3 trainings per 24 hours; the limit resets at " in fourth.json()["error"]
    assert 0 < int(fourth.headers["Retry-After"]) <= 24 * 3600
    models = db.execute("SELECT count(*) AS n FROM user_models WHERE user_id = %s", (user.id,))
    assert models.fetchone()["n"] == 3  # the refused start wrote nothing


def test_deleting_a_model_does_not_give_its_training_back(api, user, db):
    urls = upload_selfies(api, user, 5)
    model_ids = []
    for _ in range(3):
        model_ids.append(start_training(api, user, urls).json()["modelId"])
        finish_all_runs(db, user)
    assert api.delete(f"/api/models/{model_ids[0]}", headers=user.headers).status_code == 200

    again = start_training(api, user, upload_selfies(api, user, 5))

    assert again.status_code == 429


def test_the_daily_limit_is_configurable(api, user, db, configure):
    configure(TRAINING_DAILY_LIMIT="1")
    urls = upload_selfies(api, user, 5)
    assert start_training(api, user, urls).status_code == 201
    finish_all_runs(db, user)

    assert start_training(api, user, urls).status_code == 429


def test_a_retry_counts_against_the_same_daily_limit(api, user, db, configure):
    configure(TRAINING_DAILY_LIMIT="1")
    model_id = start_training(api, user, upload_selfies(api, user, 5)).json()["modelId"]
    db.execute(
        "UPDATE training_runs SET status = 'failed', status_rank = 3, completed_at = now()"
        " WHERE user_id = %s",
        (user.id,),
    )

    retry = api.post("/api/training/retry", json={"modelId": model_id}, headers=user.headers)

    assert retry.status_code == 429
    assert retry.json()["code"] == "quota_exceeded"
    runs = db.execute("SELECT count(*) AS n FROM training_runs WHERE user_id = %s", (user.id,))
    assert runs.fetchone()["n"] == 1
