"""Likeness over HTTP: a photo of somebody else is left out of the training (or refused when too
few of the person remain, or when no one is a clear majority); blurred, dark and overexposed
faces are unusable at upload. Real photos: the dev console's samples (one woman) and photos of
two men from a package on PyPI."""

import io
import zipfile

import pytest

from dev.samples import COUNT, selfie
from tests import photos
from tests.helpers import UPLOAD, progress, start_training

STRANGER = "not the same person as the other photos"


def uploaded(api, user, files: list[tuple[str, bytes]]) -> list[dict]:
    parts = [("files", (name, data, "image/jpeg")) for name, data in files]
    response = api.post(UPLOAD, files=parts, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["uploads"]


def samples(count: int, first: int = 0) -> list[tuple[str, bytes]]:
    return [(f"me{i}.jpg", selfie(i)) for i in range(first, first + count)]


def men(*names: str) -> list[tuple[str, bytes]]:
    return [(name, photos.package_photo(name)) for name in names]


def zip_names(stack, db, training_id: str) -> list[str]:
    run = db.execute(
        "SELECT zip_key FROM training_runs WHERE replicate_training_id = %s", (training_id,)
    ).fetchone()
    return zipfile.ZipFile(io.BytesIO(stack.blob.objects()[run["zip_key"]])).namelist()


def test_a_photo_of_somebody_else_is_left_out_and_named(api, stack, user, db):
    sent = uploaded(api, user, samples(5) + men("biden.jpg"))
    biden = sent[-1]

    response = start_training(api, user, [u["url"] for u in sent])

    assert response.status_code == 201, response.text
    body = response.json()
    left_out = [{"url": biden["url"], "filename": "biden.jpg", "reason": STRANGER}]
    assert body["leftOut"] == left_out
    assert len(zip_names(stack, db, body["trainingId"])) == 5
    assert progress(api, user, body["modelId"])["model"]["leftOut"] == left_out


def test_no_clear_majority_is_refused_naming_each_group(api, user, db):
    sent = uploaded(api, user, samples(3) + men("obama.jpg", "obama3.jpg"))

    response = start_training(api, user, [u["url"] for u in sent])

    assert response.status_code == 400
    assert response.json() == {
        "error": "These photos show different people (person 1: me0.jpg, me1.jpg, me2.jpg;"
        " person 2: obama.jpg, obama3.jpg); keep only photos of yourself",
        "code": "mixed_identities",
    }
    runs = db.execute("SELECT count(*) FROM user_models WHERE user_id = %s", (user.id,))
    assert runs.fetchone()["count"] == 0


def test_fewer_than_five_photos_of_the_person_are_refused_naming_the_stranger(api, user, db):
    sent = uploaded(api, user, [*samples(4), *men("obama2.jpg"), ("cat.jpg", photos.cat())])

    response = start_training(api, user, [u["url"] for u in sent])

    assert response.status_code == 400
    assert response.json() == {
        "error": "At least 5 training images are required"
        f" (cat.jpg: no face found; obama2.jpg: {STRANGER})",
        "code": "not_enough_images",
    }
    runs = db.execute("SELECT count(*) FROM training_runs WHERE user_id = %s", (user.id,))
    assert runs.fetchone()["count"] == 0


def test_unusable_photos_are_listed_as_left_out_too(api, user):
    sent = uploaded(api, user, [*samples(5), ("cat.jpg", photos.cat())])

    response = start_training(api, user, [u["url"] for u in sent])

    assert response.status_code == 201, response.text
    assert response.json()["leftOut"] == [
        {"url": sent[-1]["url"], "filename": "cat.jpg", "reason": "no face found"}
    ]


def test_a_retry_leaves_out_a_stranger_recorded_before_the_check(api, stack, user, db):
    sent = uploaded(api, user, samples(5) + men("biden.jpg"))
    body = start_training(api, user, [u["url"] for u in sent[:5]]).json()
    # A run recorded before the same-person check existed: the stranger is among its photos.
    db.execute(
        "UPDATE training_runs SET upload_ids = upload_ids || %s::uuid WHERE model_id = %s",
        (sent[-1]["id"], body["modelId"]),
    )
    stack.replicate.advance(body["trainingId"], "failed", error="CUDA out of memory")
    stack.replicate.wait_for_deliveries()

    response = api.post(
        "/api/training/retry", json={"modelId": body["modelId"]}, headers=user.headers
    )

    assert response.status_code == 201, response.text
    assert [item["filename"] for item in response.json()["leftOut"]] == ["biden.jpg"]
    assert len(zip_names(stack, db, response.json()["trainingId"])) == 5


def test_every_model_shows_the_trainer_version_its_run_used(api, stack, user):
    sent = uploaded(api, user, samples(5))

    body = start_training(api, user, [u["url"] for u in sent]).json()

    version = stack.replicate.get_object(body["trainingId"])["version"]
    assert progress(api, user, body["modelId"])["model"]["trainerVersion"] == version


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("blurred", "blurry: the face is not sharp enough to learn from"),
        ("dark", "too dark: the face is too dark to learn from"),
        ("overexposed", "blown out: the face is too bright to learn from"),
    ],
)
def test_a_spoiled_face_is_unusable_at_upload_saying_why(api, user, change, reason):
    spoiled = [
        (f"{change}.jpg", photos.variant(selfie(7), change)),
        (f"{change}-man.jpg", photos.variant(photos.package_photo("obama.jpg"), change)),
    ]

    verdicts = [(u["faces"], u["usable"], u["reason"]) for u in uploaded(api, user, spoiled)]

    assert verdicts == [(1, False, reason)] * 2


def test_every_sample_and_real_photo_is_usable(api, user):
    files = samples(COUNT - 5) + men("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")
    files.append(("phone.jpg", photos.rotated_jpeg_with_gps()))

    verdicts = {u["reason"] for u in uploaded(api, user, files)}

    assert verdicts == {None}
