"""Real phone photos through upload and start: what is refused, and what the trainer gets."""

import io
import zipfile

from PIL import Image

from lib.intake.uploads import selfies_prefix
from tests import photos
from tests.helpers import UPLOAD, client_upload, start_training

GOOD = {
    "IMG_0001.HEIC": (photos.heic, "image/heic"),
    "rotated-gps.jpg": (photos.rotated_jpeg_with_gps, "image/jpeg"),
    "alpha.png": (photos.png_with_alpha, "image/png"),
    "still.webp": (photos.webp, "image/webp"),
    "12mp.jpg": (photos.phone_size_jpeg, "image/jpeg"),
}


def post_files(api, user, files):
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return api.post(UPLOAD, files=parts, headers=user.headers)


def stored_keys(stack, user):
    return [key for key in stack.blob.objects() if key.startswith(selfies_prefix(user.id))]


def training_zip(stack, db, training_id):
    key = db.execute(
        "SELECT zip_key FROM training_runs WHERE replicate_training_id = %s", (training_id,)
    ).fetchone()["zip_key"]
    return zipfile.ZipFile(io.BytesIO(stack.blob.objects()[key]))


def test_every_kind_of_phone_photo_is_accepted(api, user):
    response = post_files(api, user, [(name, make()) for name, (make, _) in GOOD.items()])

    assert response.status_code == 200, response.text
    uploads = response.json()["uploads"]
    assert [u["contentType"] for u in uploads] == [ct for _, ct in GOOD.values()]
    assert (uploads[1]["width"], uploads[1]["height"]) == (900, 1200)  # as seen, not as stored
    assert (uploads[4]["width"], uploads[4]["height"]) == (4000, 3000)


def test_the_trainer_gets_upright_clean_small_jpegs_with_flat_names(api, stack, user, db):
    urls = post_files(api, user, [(name, make()) for name, (make, _) in GOOD.items()]).json()[
        "urls"
    ]

    started = start_training(api, user, urls)

    assert started.status_code == 201, started.text
    archive = training_zip(stack, db, started.json()["trainingId"])
    assert archive.namelist() == ["00.jpg", "01.jpg", "02.jpg", "03.jpg", "04.jpg"]
    for entry in archive.infolist():
        data = archive.read(entry)
        image = Image.open(io.BytesIO(data))
        assert entry.compress_type == zipfile.ZIP_STORED
        assert image.format == "JPEG" and min(image.size) <= 1024
        assert dict(image.getexif()) == {} and photos.jpeg_markers(data) == ["APP0", "SOS"]
        assert photos.is_upright(data), entry.filename


def test_unusable_files_are_all_named_and_nothing_is_stored(api, stack, user, db):
    files = [
        ("good.jpg", photos.rotated_jpeg_with_gps()),
        ("cut.jpg", photos.truncated_jpeg()),
        ("notes.jpg", photos.TEXT_NAMED_JPG),
        ("thumb.jpg", photos.tiny_jpeg()),
        ("loop.gif", photos.animated("GIF")),
        ("loop.webp", photos.animated("WEBP")),
    ]

    response = post_files(api, user, files)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_image"
    for name, reason in [
        ("cut.jpg", "damaged or incomplete"),
        ("notes.jpg", "not an image we can read"),
        ("thumb.jpg", "100×100 px; the short side must be at least 512 px"),
        ("loop.gif", "an animated image"),
        ("loop.webp", "an animated image"),
    ]:
        assert f"{name} ({reason}" in body["error"]
    assert "good.jpg" not in body["error"]
    assert stored_keys(stack, user) == []
    assert (
        db.execute("SELECT 1 FROM selfie_uploads WHERE user_id = %s", (user.id,)).fetchall() == []
    )


def test_uploading_the_same_photo_again_answers_the_existing_upload(api, stack, user, db):
    data = photos.webp()

    first = post_files(api, user, [("a.webp", data)]).json()["uploads"][0]
    again = post_files(api, user, [("copy.webp", data), ("b.webp", photos.webp(seed=9))])

    assert again.json()["uploads"][0] == first
    assert len(stored_keys(stack, user)) == 2
    count = db.execute("SELECT count(*) FROM selfie_uploads WHERE user_id = %s", (user.id,))
    assert count.fetchone()["count"] == 2


def test_identical_pictures_count_once_at_start_and_are_named(api, stack, user):
    same = photos.rotated_jpeg_with_gps(seed=1)
    urls = [client_upload(api, stack, user, "first.jpg", same)[0]["url"]]
    urls.append(client_upload(api, stack, user, "again.jpg", same)[0]["url"])
    for seed in (2, 3, 4):
        urls.append(client_upload(api, stack, user, f"s{seed}.jpg", photos.webp(seed))[0]["url"])

    response = start_training(api, user, urls)

    assert response.status_code == 400
    assert response.json() == {
        "error": "At least 5 training images are required "
        "(again.jpg is the same picture as first.jpg)",
        "code": "not_enough_images",
    }


def test_a_duplicate_among_enough_photos_is_left_out_of_the_zip(api, stack, user, db):
    same = photos.webp(seed=20)
    urls = [client_upload(api, stack, user, f"d{i}.webp", same)[0]["url"] for i in range(2)]
    urls += post_files(api, user, [(f"{s}.jpg", photos.webp(s)) for s in range(21, 26)]).json()[
        "urls"
    ]

    started = start_training(api, user, urls)

    assert started.status_code == 201, started.text
    assert len(training_zip(stack, db, started.json()["trainingId"]).namelist()) == 6


def test_a_photo_damaged_in_storage_fails_the_start_naming_it(api, stack, user, db):
    urls = post_files(api, user, [(f"{s}.jpg", photos.webp(s)) for s in range(30, 35)]).json()[
        "urls"
    ]
    key = db.execute(
        "SELECT storage_key FROM selfie_uploads WHERE url = %s", (urls[2],)
    ).fetchone()["storage_key"]
    stack.blob.add_object(key, b"overwritten with junk")

    response = start_training(api, user, urls)

    assert response.status_code == 502
    assert response.json()["code"] == "zip_failed"
    assert response.json()["error"].startswith(
        "Failed to create training ZIP: 32.jpg (not an image"
    )
