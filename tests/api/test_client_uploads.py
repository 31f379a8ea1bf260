"""The browser path: token from us, PUT straight to Blob, Blob's signed callback to us."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest

from lib.intake import client_uploads
from lib.intake.uploads import selfies_prefix
from lib.settings import get_settings
from tests import photos
from tests.helpers import UPLOAD, User, ask_token, browser_put, client_upload, start_training

CRON_SECRET = "cron-secret-for-tests-0123456789"
NOWHERE = "http://127.0.0.1:9"  # a callback URL nothing answers: Blob's report never comes


def rows(db, user):
    return db.execute(
        "SELECT url, filename, content_type, width, height FROM selfie_uploads WHERE user_id = %s",
        (user.id,),
    ).fetchall()


def pending(db, user):
    """(pathname, minutes the token lives) of the user's pending uploads."""
    rows = db.execute(
        "SELECT pathname, round(extract(epoch FROM expires_at - created_at) / 60) AS minutes"
        " FROM pending_uploads WHERE user_id = %s",
        (user.id,),
    ).fetchall()
    return [(row["pathname"], row["minutes"]) for row in rows]


def token_payload(stack, token):
    encoded = token.removeprefix(f"vercel_blob_client_{stack.blob.store_id}_")
    return json.loads(base64.b64decode(base64.b64decode(encoded).decode().partition(".")[2]))


def unreported_upload(api, stack, user, configure, name, data):
    """A client upload whose completion callback never reaches us; the PUT's result."""
    configure(PUBLIC_BASE_URL=NOWHERE)
    token = ask_token(api, user, name).json()["clientToken"]
    configure(PUBLIC_BASE_URL=stack.url)
    put = browser_put(stack, token, name, data)
    assert put.status_code == 200, put.text
    stack.blob.wait_for_callbacks()
    return put.json()


def run_cron(api, configure):
    configure(CRON_SECRET=CRON_SECRET)
    response = api.get("/api/cron/reconcile", headers={"Authorization": f"Bearer {CRON_SECRET}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_client_upload_is_recorded_once_even_when_the_callback_comes_twice(api, stack, user, db):
    blob, delivery = client_upload(api, stack, user, "IMG_0001.jpg", photos.rotated_jpeg_with_gps())
    again = stack.blob.resend_callback(stack.blob.callbacks.index(delivery))

    assert delivery.status == again.status == 200
    assert json.loads(again.response_body) == {"type": "blob.upload-completed", "response": "ok"}
    assert rows(db, user) == [
        {
            "url": blob["url"],
            "filename": "IMG_0001.jpg",
            "content_type": "image/jpeg",
            "width": 900,
            "height": 1200,
        }
    ]


def test_a_bare_file_name_gets_a_token_for_exactly_that_name_recorded_as_pending(
    api, stack, user, db
):
    token = ask_token(api, user, "selfie.jpg").json()["clientToken"]

    payload = token_payload(stack, token)
    assert payload["pathname"] == "selfie.jpg"
    assert payload["addRandomSuffix"] is True
    assert payload["allowOverwrite"] is False
    assert payload["allowedContentTypes"] == client_uploads.ALLOWED_CONTENT_TYPES
    assert payload["maximumSizeInBytes"] == 25 * 1024 * 1024
    assert payload["onUploadCompleted"]["callbackUrl"] == f"{stack.url}{UPLOAD}"
    assert 890_000 < payload["validUntil"] - time.time() * 1000 <= 900_000
    assert pending(db, user) == [("selfie.jpg", 15)]


def test_two_users_uploading_the_same_file_name_each_get_their_own_photo(api, stack, user, db):
    other = User("other-" + user.id)

    mine, _ = client_upload(api, stack, user, "selfie.jpg", photos.rotated_jpeg_with_gps(seed=1))
    theirs, _ = client_upload(api, stack, other, "selfie.jpg", photos.rotated_jpeg_with_gps(seed=2))

    assert mine["pathname"] != theirs["pathname"]
    assert {mine["pathname"], theirs["pathname"]} <= {
        p for p in stack.blob.objects() if p.startswith("selfie-") and p.endswith(".jpg")
    }
    assert [row["url"] for row in rows(db, user)] == [mine["url"]]
    assert [row["url"] for row in rows(db, other)] == [theirs["url"]]


def test_a_prefixed_pathname_still_works(api, stack, user, db):
    blob, delivery = client_upload(
        api, stack, user, selfies_prefix(user.id) + "me.jpg", photos.rotated_jpeg_with_gps()
    )

    assert delivery.status == 200
    assert blob["pathname"].startswith(selfies_prefix(user.id) + "me-")
    assert [row["url"] for row in rows(db, user)] == [blob["url"]]


def test_client_uploads_can_start_a_training(api, stack, user):
    urls = [
        client_upload(api, stack, user, f"s{i}.jpg", photos.rotated_jpeg_with_gps(seed=i))[0]["url"]
        for i in range(5)
    ]

    assert start_training(api, user, urls).status_code == 201


def test_a_start_records_the_callers_uploads_whose_callback_has_not_come(
    api, stack, user, db, configure
):
    urls = [
        unreported_upload(
            api, stack, user, configure, f"{user.id}.jpg", photos.rotated_jpeg_with_gps(seed=i)
        )["url"]
        for i in range(5)
    ]
    assert rows(db, user) == []

    started = start_training(api, user, urls)

    assert started.status_code == 201, started.text
    assert sorted(row["url"] for row in rows(db, user)) == sorted(urls)


def test_another_user_cannot_start_with_an_upload_whose_callback_has_not_come(
    api, stack, user, db, configure
):
    other = User("other-" + user.id)
    urls = [
        unreported_upload(
            api, stack, user, configure, f"s{i}.jpg", photos.rotated_jpeg_with_gps(seed=i)
        )["url"]
        for i in range(5)
    ]

    response = start_training(api, other, urls)

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_image"
    assert rows(db, other) == []


def test_deleting_the_account_deletes_uploads_blob_never_reported(api, stack, user, db, configure):
    blob = unreported_upload(api, stack, user, configure, f"{user.id}.jpg", photos.webp())

    response = api.delete("/api/account", headers=user.headers)

    assert response.status_code == 202  # its token may still be used: the cron finishes
    assert stack.blob.metadata(blob["pathname"]) is None


def test_a_callback_coming_after_the_account_was_deleted_deletes_its_file(
    api, stack, user, db, configure
):
    configure(PUBLIC_BASE_URL=NOWHERE)
    token = ask_token(api, user, "late.jpg").json()["clientToken"]
    configure(PUBLIC_BASE_URL=stack.url)
    api.delete("/api/account", headers=user.headers)
    blob = browser_put(stack, token, "late.jpg", photos.rotated_jpeg_with_gps()).json()
    stack.blob.wait_for_callbacks()
    late = stack.blob.callbacks[-1]

    response = api.post(UPLOAD, content=late.body, headers=late.headers)

    assert response.status_code == 200
    assert stack.blob.metadata(blob["pathname"]) is None
    assert rows(db, user) == []


def test_the_cron_deletes_uploads_never_reported_once_their_token_expired(
    api, stack, user, db, configure
):
    other = User("other-" + user.id)
    name = f"{user.id}.jpg"  # a name no other test's live token holds
    lost = unreported_upload(api, stack, user, configure, name, photos.webp())
    kept, _ = client_upload(api, stack, other, name, photos.rotated_jpeg_with_gps())
    waiting = unreported_upload(api, stack, other, configure, name, photos.webp())
    db.execute(
        "UPDATE pending_uploads SET expires_at = now() - interval '2 hours' WHERE user_id = %s",
        (user.id,),
    )

    untouched = run_cron(api, configure)["unreportedUploadsDeleted"]
    db.execute(
        "UPDATE pending_uploads SET expires_at = now() - interval '2 hours' WHERE user_id = %s",
        (other.id,),
    )
    summary = run_cron(api, configure)

    assert untouched == 0  # the other user's live token could still claim either file
    assert summary["unreportedUploadsDeleted"] == 2
    assert stack.blob.metadata(lost["pathname"]) is None
    assert stack.blob.metadata(waiting["pathname"]) is None
    assert stack.blob.metadata(kept["pathname"]) is not None
    assert pending(db, user) == pending(db, other) == []


@pytest.mark.parametrize(
    "pathname",
    [
        "users/someone-else/selfies/selfie.jpg",
        "/selfie.jpg",
        "{prefix}",
        "{prefix}nested/selfie.jpg",
        "{prefix}..",
        "..",
        "a\x01b.jpg",
    ],
)
def test_a_pathname_in_another_folder_gets_no_token(api, user, db, pathname):
    response = ask_token(api, user, pathname.format(prefix=selfies_prefix(user.id)))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_pathname"
    assert selfies_prefix(user.id) in response.json()["error"]
    assert pending(db, user) == []


def test_another_users_folder_gets_no_token(api, user):
    other = User("other-" + user.id)

    response = ask_token(api, user, selfies_prefix(other.id) + "x.jpg")

    assert response.status_code == 400


def test_a_token_request_needs_the_users_jwt(api):
    response = api.post(
        UPLOAD,
        json={"type": "blob.generate-client-token", "payload": {"pathname": "x.jpg"}},
    )

    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"


def test_the_browser_can_learn_its_pathname_prefix(api, user):
    response = api.get(UPLOAD, headers=user.headers)

    assert response.json()["pathnamePrefix"] == selfies_prefix(user.id)


def test_a_forged_token_is_refused_by_blob(api, stack, user):
    pathname = "a.jpg"
    token = ask_token(api, user, pathname).json()["clientToken"]
    encoded = token.removeprefix(f"vercel_blob_client_{stack.blob.store_id}_")
    signature, _, payload_b64 = base64.b64decode(encoded).decode().partition(".")
    payload = json.loads(base64.b64decode(payload_b64))
    payload["maximumSizeInBytes"] = 10**12
    bigger = base64.b64encode(json.dumps(payload).encode()).decode()
    forged_token = token.replace(
        encoded, base64.b64encode(f"{signature}.{bigger}".encode()).decode()
    )

    response = browser_put(stack, forged_token, pathname, photos.webp(), "image/webp")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_an_expired_token_is_refused_by_blob(stack, user, db):
    pathname = "old.jpg"
    event = client_uploads.BlobEvent("blob.generate-client-token", {"pathname": pathname}, b"")
    an_hour_ago = int(time.time() * 1000) - 3600 * 1000
    token = client_uploads.issue_token(
        db, event, user_id=user.id, settings=get_settings(), now_ms=an_hour_ago
    )["clientToken"]

    response = browser_put(stack, token, pathname, photos.webp(), "image/webp")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "client_token_expired"


def test_a_token_refuses_a_file_that_is_not_a_photo_type(api, stack, user):
    pathname = "notes.txt"
    token = ask_token(api, user, pathname).json()["clientToken"]

    response = browser_put(stack, token, pathname, b"hello", "text/plain")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_type_not_allowed"


def callback_body(user, pathname, url):
    owner = json.dumps({"pendingId": str(uuid.uuid4()), "filename": "x.jpg"})
    event = {
        "type": "blob.upload-completed",
        "payload": {"blob": {"url": url, "pathname": pathname}, "tokenPayload": owner},
    }
    return json.dumps(event).encode()


def test_a_forged_callback_is_refused_and_records_nothing(api, stack, user, db):
    pathname = selfies_prefix(user.id) + "planted.jpg"
    put = stack.blob.add_object(pathname, photos.rotated_jpeg_with_gps())
    body = callback_body(user, pathname, put["url"])
    forged = hmac.new(b"vercel_blob_rw_devstore_guess", body, hashlib.sha256).hexdigest()

    for headers in ({"x-vercel-signature": forged}, {}):
        response = api.post(
            UPLOAD, content=body, headers={"content-type": "application/json", **headers}
        )

        assert response.status_code == 401
        assert response.json()["code"] == "invalid_signature"
    assert rows(db, user) == []


def test_a_client_upload_that_is_not_a_photo_is_deleted_and_not_recorded(api, stack, user, db):
    blob, delivery = client_upload(api, stack, user, "notes.jpg", photos.TEXT_NAMED_JPG)

    assert delivery.status == 400
    assert json.loads(delivery.response_body)["code"] == "invalid_image"
    assert b"notes.jpg (not an image" in delivery.response_body
    assert stack.blob.metadata(blob["pathname"]) is None
    assert rows(db, user) == []


def test_a_callback_body_that_is_not_an_event_is_400(api, user):
    response = api.post(UPLOAD, json={"type": "something.else", "payload": {}})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_event"
