"""DELETE /api/models/{id} and /api/account: nothing of the model is left anywhere."""

import uuid

import httpx
import pytest

from lib.accounts import deletion
from lib.adapters import database
from lib.adapters.clients import get_storage
from lib.adapters.replicate import Replicate
from lib.adapters.storage.keys import user_prefix
from lib.settings import get_settings
from tests.helpers import start_training, upload_selfies

# Every table that holds a model's data, and how to find the model's rows in it.
MODEL_ROWS = {
    "user_models": "id = %(model)s",
    "training_runs": "model_id = %(model)s",
    "lora_weights": "model_id = %(model)s",
    "generations": "model_id = %(model)s",
    "selfie_uploads": "id = ANY(%(uploads)s)",
    "webhook_events": "object_id = ANY(%(objects)s)",
}


def trained(api, user, stack, urls):
    """A completed model: trained on Replicate (a version pushed), with weights and pictures."""
    response = start_training(api, user, urls)
    assert response.status_code == 201, response.text
    body = response.json()
    stack.replicate.advance(body["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()
    return body


def add_weights_and_generation(db, user, model_id):
    """What the weights copy and the studio write: rows pointing at stored objects."""
    storage = get_storage(get_settings())
    run = db.execute("SELECT id FROM training_runs WHERE model_id = %s", (model_id,)).fetchone()
    weights = storage.put(f"{user_prefix(user.id)}/weights/{run['id']}.tar", b"tar", "x/tar")
    outputs = [
        storage.put(f"{user_prefix(user.id)}/generations/{model_id}-{i}.webp", b"img", "image/webp")
        for i in range(2)
    ]
    db.execute(
        "INSERT INTO lora_weights (model_id, training_run_id, source_url, storage_key)"
        " VALUES (%s, %s, 'https://replicate.delivery/x.tar', %s)"
        " ON CONFLICT (training_run_id) DO UPDATE SET storage_key = EXCLUDED.storage_key",
        (model_id, run["id"], weights.key),
    )
    db.execute(
        "INSERT INTO generations (model_id, user_id, replicate_prediction_id, status, prompt,"
        " input, output_keys) VALUES (%s, %s, %s, 'succeeded', 'a photo', '{}', %s)",
        (model_id, user.id, f"pred{model_id[:8]}", [o.key for o in outputs]),
    )


def footprint(db, model_id, upload_urls, training_id):
    """How many rows of each table still belong to the model."""
    uploads = [
        r["id"]
        for r in db.execute("SELECT id FROM selfie_uploads WHERE url = ANY(%s)", (upload_urls,))
    ]
    params = {
        "model": model_id,
        "uploads": uploads,
        "objects": [training_id, f"pred{model_id[:8]}"],
    }
    return {
        table: db.execute(f"SELECT count(*) AS n FROM {table} WHERE {where}", params).fetchone()[
            "n"
        ]
        for table, where in MODEL_ROWS.items()
    }


def stored_keys(stack, user):
    return {key for key in stack.blob.objects() if key.startswith(user_prefix(user.id))}


def finish_pending_deletions() -> int:
    """What the cron does."""
    settings = get_settings()
    with database.connect(settings) as conn:
        return deletion.finish_pending_deletions(
            conn, storage=get_storage(settings), replicate=Replicate(settings)
        )


def on_replicate(stack, path):
    headers = {"Authorization": f"Bearer {stack.replicate.token}"}
    return httpx.get(f"{stack.replicate.url}/v1/models/{path}", headers=headers)


def test_deleting_a_model_leaves_no_row_no_object_and_no_replicate_version(api, user, stack, db):
    urls = upload_selfies(api, user, 5)
    body = trained(api, user, stack, urls)
    add_weights_and_generation(db, user, body["modelId"])
    model = api.get(f"/api/models/{body['modelId']}", headers=user.headers).json()
    destination, version = model["replicateModelId"], model["replicateVersionId"]
    assert on_replicate(stack, f"{destination}/versions/{version}").status_code == 200
    assert len(stored_keys(stack, user)) == 5 + 1 + 1 + 2  # selfies, ZIP, weights, pictures

    response = api.delete(f"/api/models/{body['modelId']}", headers=user.headers)

    assert response.status_code == 200
    assert response.json() == {"status": "deleted"}
    assert set(footprint(db, body["modelId"], urls, body["trainingId"]).values()) == {0}
    assert stored_keys(stack, user) == set()
    assert on_replicate(stack, f"{destination}/versions/{version}").status_code == 404
    assert on_replicate(stack, destination).status_code == 404


def test_selfies_another_model_trained_on_stay(api, user, stack, db):
    urls = upload_selfies(api, user, 7)
    first = trained(api, user, stack, urls[:5])
    trained(api, user, stack, urls[2:])
    keys = {
        row["url"]: row["storage_key"]
        for row in db.execute(
            "SELECT url, storage_key FROM selfie_uploads WHERE url = ANY(%s)", (urls,)
        )
    }

    api.delete(f"/api/models/{first['modelId']}", headers=user.headers)

    left = [
        r["url"] for r in db.execute("SELECT url FROM selfie_uploads WHERE url = ANY(%s)", (urls,))
    ]
    assert sorted(left) == sorted(urls[2:])
    assert {keys[url] for url in urls[2:]} <= stored_keys(stack, user)
    assert not {keys[url] for url in urls[:2]} & stored_keys(stack, user)


def test_deleting_a_model_in_training_cancels_the_training_first(api, user, stack, db):
    urls = upload_selfies(api, user, 5)
    body = start_training(api, user, urls).json()

    response = api.delete(f"/api/models/{body['modelId']}", headers=user.headers)

    assert response.status_code == 200
    assert stack.replicate.get_object(body["trainingId"])["status"] == "canceled"
    assert set(footprint(db, body["modelId"], urls, body["trainingId"]).values()) == {0}
    assert start_training(api, user, upload_selfies(api, user, 5)).status_code == 201


def test_a_failure_halfway_hides_the_model_and_the_cron_finishes_it(api, user, stack, db):
    urls = upload_selfies(api, user, 5)
    body = trained(api, user, stack, urls)
    model_id = body["modelId"]
    stack.replicate.fail_next("DELETE", r"/versions/", 500)

    response = api.delete(f"/api/models/{model_id}", headers=user.headers)

    assert response.status_code == 202
    assert response.json() == {"status": "deleting"}
    assert api.get(f"/api/models/{model_id}", headers=user.headers).status_code == 404
    assert api.get("/api/models", headers=user.headers).json()["models"] == []
    assert api.delete(f"/api/models/{model_id}", headers=user.headers).status_code == 404
    assert footprint(db, model_id, urls, body["trainingId"])["user_models"] == 1
    db.execute(
        "UPDATE user_models SET deletion_attempted_at = now() - interval '1 hour' WHERE id = %s",
        (model_id,),
    )

    finished = finish_pending_deletions()

    assert finished >= 1
    assert set(footprint(db, model_id, urls, body["trainingId"]).values()) == {0}
    assert stored_keys(stack, user) == set()


def test_the_cron_leaves_a_deletion_alone_while_an_attempt_may_be_running(api, user, stack, db):
    body = trained(api, user, stack, upload_selfies(api, user, 5))
    stack.replicate.fail_next("DELETE", r"/versions/", 500)
    api.delete(f"/api/models/{body['modelId']}", headers=user.headers)

    finish_pending_deletions()

    row = db.execute("SELECT 1 FROM user_models WHERE id = %s", (body["modelId"],)).fetchone()
    assert row is not None  # attempted a moment ago: retried only after RETRY_AFTER_SECONDS


def test_deleting_the_account_removes_every_model_and_upload(api, user, stack, db):
    urls = upload_selfies(api, user, 5)
    first = trained(api, user, stack, urls)
    add_weights_and_generation(db, user, first["modelId"])
    second = start_training(api, user, urls).json()  # still training
    loose = upload_selfies(api, user, 2)  # never trained on

    response = api.delete("/api/account", headers=user.headers)

    assert response.status_code == 200
    assert response.json() == {"status": "deleted"}
    for body in (first, second):
        assert set(footprint(db, body["modelId"], urls + loose, body["trainingId"]).values()) == {0}
    assert (
        db.execute("SELECT 1 FROM selfie_uploads WHERE user_id = %s", (user.id,)).fetchall() == []
    )
    assert stored_keys(stack, user) == set()


@pytest.mark.parametrize(
    "path", ["/api/models/00000000-0000-0000-0000-000000000000", "/api/models/x"]
)
def test_deleting_an_unknown_model_is_404(api, user, path):
    response = api.delete(path, headers=user.headers)

    assert response.status_code == 404
    assert response.json()["code"] == "model_not_found"


def test_a_run_a_start_may_still_be_sending_is_waited_for_then_abandoned(api, user, db):
    # What a start request leaves while it calls Replicate: the model and a pending run.
    model = db.execute(
        "INSERT INTO user_models (user_id, name, model_type, trigger_word)"
        " VALUES (%s, 'Me', 'flux', %s) RETURNING id",
        (user.id, f"user{uuid.uuid4().int % 10**8:08d}"),
    ).fetchone()
    db.execute(
        "INSERT INTO training_runs (model_id, user_id, parameters, upload_ids)"
        " VALUES (%s, %s, '{}', '{}')",
        (model["id"], user.id),
    )

    response = api.delete(f"/api/models/{model['id']}", headers=user.headers)

    assert response.status_code == 202
    db.execute(
        "UPDATE training_runs SET created_at = now() - interval '20 minutes' WHERE model_id = %s",
        (model["id"],),
    )
    db.execute(
        "UPDATE user_models SET deletion_attempted_at = now() - interval '1 hour' WHERE id = %s",
        (model["id"],),
    )
    finish_pending_deletions()
    assert db.execute("SELECT 1 FROM user_models WHERE id = %s", (model["id"],)).fetchone() is None
