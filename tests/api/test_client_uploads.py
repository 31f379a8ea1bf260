"""The browser path: token from us, PUT straight to Blob, Blob's signed callback to us."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from lib.intake import client_uploads
from lib.intake.uploads import selfies_prefix
from lib.settings import get_settings
from tests import photos
from tests.helpers import UPLOAD, User, ask_token, browser_put, client_upload, start_training


def rows(db, user):
    return db.execute(
        "SELECT url, filename, content_type, width, height FROM selfie_uploads WHERE user_id = %s",
        (user.id,),
    ).fetchall()


def test_a_client_upload_is_recorded_once_even_when_the_callback_comes_twice(api, stack, user, db):
    blob, delivery = client_upload(api, stack, user, "IMG_0001.jpg", photos.rotated_jpeg_with_gps())
    again = stack.blob.resend_callback(stack.blob.callbacks.index(delivery))

    assert delivery.status == again.status == 200
    assert delivery.json["payload"]["blob"]["pathname"].startswith(selfies_prefix(user.id))
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


def test_client_uploads_can_start_a_training(api, stack, user):
    urls = [
        client_upload(api, stack, user, f"s{i}.jpg", photos.rotated_jpeg_with_gps(seed=i))[0]["url"]
        for i in range(5)
    ]

    assert start_training(api, user, urls).status_code == 201


def test_a_token_names_only_photo_types_the_size_cap_and_the_callback(api, stack, user):
    pathname = selfies_prefix(user.id) + "me.heic"

    token = ask_token(api, user, pathname).json()["clientToken"]

    encoded = token.removeprefix(f"vercel_blob_client_{stack.blob.store_id}_")
    payload = json.loads(base64.b64decode(base64.b64decode(encoded).decode().partition(".")[2]))
    assert payload["pathname"] == pathname
    assert payload["allowedContentTypes"] == client_uploads.ALLOWED_CONTENT_TYPES
    assert payload["maximumSizeInBytes"] == 25 * 1024 * 1024
    assert payload["onUploadCompleted"]["callbackUrl"] == f"{stack.url}{UPLOAD}"
    assert json.loads(payload["tokenPayload"])["userId"] == user.id
    assert 3590_000 < payload["validUntil"] - time.time() * 1000 <= 3600_000


@pytest.mark.parametrize(
    "pathname",
    [
        "selfie.jpg",
        "users/someone-else/selfies/selfie.jpg",
        "{prefix}",
        "{prefix}nested/selfie.jpg",
        "{prefix}..",
    ],
)
def test_a_pathname_outside_the_callers_selfies_folder_gets_no_token(api, user, pathname):
    response = ask_token(api, user, pathname.format(prefix=selfies_prefix(user.id)))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_pathname"
    assert selfies_prefix(user.id) in response.json()["error"]


def test_another_users_folder_gets_no_token(api, user):
    other = User("other-" + user.id)

    response = ask_token(api, user, selfies_prefix(other.id) + "x.jpg")

    assert response.status_code == 400


def test_a_token_request_needs_the_users_jwt(api, user):
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
    pathname = selfies_prefix(user.id) + "a.jpg"
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


def test_an_expired_token_is_refused_by_blob(stack, user):
    pathname = selfies_prefix(user.id) + "old.jpg"
    event = client_uploads.BlobEvent("blob.generate-client-token", {"pathname": pathname}, b"")
    two_hours_ago = int(time.time() * 1000) - 2 * 3600 * 1000
    token = client_uploads.issue_token(
        event, user_id=user.id, settings=get_settings(), now_ms=two_hours_ago
    )["clientToken"]

    response = browser_put(stack, token, pathname, photos.webp(), "image/webp")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "client_token_expired"


def test_a_token_refuses_a_file_that_is_not_a_photo_type(api, stack, user):
    pathname = selfies_prefix(user.id) + "notes.txt"
    token = ask_token(api, user, pathname).json()["clientToken"]

    response = browser_put(stack, token, pathname, b"hello", "text/plain")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_type_not_allowed"


def callback_body(user, pathname, url):
    owner = json.dumps({"userId": user.id, "filename": "x.jpg"})
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
