"""The selfie quality gate over HTTP: each upload's face verdict, and start refusing a set with
fewer than 5 usable photos while naming each unusable one and why."""

import io
import zipfile

import pytest

from tests import photos
from tests.helpers import UPLOAD, client_upload, jpeg, start_training

CASES = {
    "me.jpg": (photos.one_face, 1, None),
    "two.jpg": (photos.two_faces, 2, "2 faces"),
    "far.jpg": (photos.small_face, 1, "face too small"),
    "sideways.jpg": (photos.sideways_face, 1, None),
    "cat.jpg": (photos.cat, 0, "no face found"),
    "coffee.jpg": (photos.landscape, 0, "no face found"),
}


def post_files(api, user, files):
    parts = [("files", (name, data, "image/jpeg")) for name, data in files]
    return api.post(UPLOAD, files=parts, headers=user.headers)


def selfie_urls(api, user, count=5, first=0):
    response = post_files(api, user, [(f"s{i}.jpg", jpeg(i)) for i in range(first, first + count)])
    assert response.status_code == 200, response.text
    return response.json()["urls"]


def test_each_upload_answers_its_verdict(api, user):
    response = post_files(api, user, [(name, make()) for name, (make, _, _) in CASES.items()])

    assert response.status_code == 200, response.text
    uploads = response.json()["uploads"]
    verdicts = [(u["faces"], u["usable"], u["reason"]) for u in uploads]
    assert verdicts == [(faces, reason is None, reason) for _, faces, reason in CASES.values()]
    assert uploads[0]["faceShare"] == pytest.approx(0.208, abs=0.005)
    assert uploads[2]["faceShare"] < 0.15 and uploads[4]["faceShare"] is None
    assert (uploads[3]["width"], uploads[3]["height"]) == (664, 830)  # as seen, upright


def test_unusable_photos_are_stored_and_recorded_with_why(api, stack, user, db):
    post_files(api, user, [("cat.jpg", photos.cat()), ("two.jpg", photos.two_faces())])

    rows = db.execute(
        "SELECT filename, faces, face_share, usable, unusable_reason, storage_key"
        " FROM selfie_uploads WHERE user_id = %s ORDER BY filename",
        (user.id,),
    ).fetchall()
    assert [(r["filename"], r["faces"], r["usable"], r["unusable_reason"]) for r in rows] == [
        ("cat.jpg", 0, False, "no face found"),
        ("two.jpg", 2, False, "2 faces"),
    ]
    assert all(r["storage_key"] in stack.blob.objects() for r in rows)


def test_start_names_every_unusable_photo_and_why(api, user, db):
    urls = selfie_urls(api, user, count=2)
    urls += post_files(
        api, user, [(name, CASES[name][0]()) for name in ("two.jpg", "far.jpg", "cat.jpg")]
    ).json()["urls"]

    response = start_training(api, user, urls)

    assert response.status_code == 400
    assert response.json() == {
        "error": "At least 5 training images are required (two.jpg: 2 faces; "
        "far.jpg: face too small; cat.jpg: no face found)",
        "code": "not_enough_images",
    }
    runs = db.execute("SELECT count(*) FROM training_runs WHERE user_id = %s", (user.id,))
    assert runs.fetchone()["count"] == 0


def test_unusable_photos_among_five_usable_ones_are_left_out_of_the_training(api, stack, user, db):
    urls = (
        selfie_urls(api, user) + post_files(api, user, [("cat.jpg", photos.cat())]).json()["urls"]
    )

    started = start_training(api, user, urls)

    assert started.status_code == 201, started.text
    run = db.execute(
        "SELECT zip_key, cardinality(upload_ids) AS photos FROM training_runs"
        " WHERE replicate_training_id = %s",
        (started.json()["trainingId"],),
    ).fetchone()
    assert run["photos"] == 5
    assert len(zipfile.ZipFile(io.BytesIO(stack.blob.objects()[run["zip_key"]])).namelist()) == 5


def test_a_client_upload_without_a_face_is_recorded_and_named_at_start(api, stack, user):
    _, delivery = client_upload(api, stack, user, "cat.jpg", photos.cat())
    urls = [*selfie_urls(api, user, count=4), delivery.json["payload"]["blob"]["url"]]

    response = start_training(api, user, urls)

    assert delivery.status == 200
    assert response.status_code == 400
    assert response.json()["error"].endswith("(cat.jpg: no face found)")


def test_the_zip_checks_photos_recorded_before_the_face_check_existed(api, user, db):
    urls = selfie_urls(api, user, count=4)
    urls += post_files(api, user, [("cat.jpg", photos.cat())]).json()["urls"]
    # As migration 007 leaves uploads made before it: no verdict.
    db.execute(
        "UPDATE selfie_uploads SET faces = NULL, face_share = NULL, usable = NULL,"
        " unusable_reason = NULL WHERE user_id = %s",
        (user.id,),
    )

    response = start_training(api, user, urls)

    assert response.status_code == 502
    assert response.json() == {
        "error": "Failed to create training ZIP: cat.jpg (no face found)",
        "code": "zip_failed",
    }
