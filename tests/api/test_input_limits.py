"""Every endpoint refuses what it cannot take — with a 4xx naming why, never a 500."""

import http.client
import json
from urllib.parse import urlsplit

import pytest

from dev.server import discover_routes
from tests.api.test_replicate_webhook import deliver
from tests.helpers import jpeg, start_training, upload_selfies

URLS = [f"https://example.test/{i}.jpg" for i in range(5)]


def raw_request(stack, method, path, headers, body=b""):
    """A request with headers httpx would correct (a Content-Length that lies, say)."""
    address = urlsplit(stack.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    answer = response.status, json.loads(response.read() or b"null")
    connection.close()
    return answer


def post_start(api, user, content, content_type="application/json", **headers):
    return api.post(
        "/api/training/start",
        content=content,
        headers={**user.headers, "Content-Type": content_type, **headers},
    )


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b"[" * 30_000 + b"]" * 30_000, "invalid_json"),  # deeper than the parser recurses
        (b'{"modelName": ' + b"9" * 5000 + b"}", "invalid_json"),  # past int()'s digit limit
        (b"\xff\xfe{}", "invalid_json"),
    ],
    ids=["broken", "array", "deep", "huge-number", "not-utf8"],
)
def test_a_start_body_that_is_not_a_json_object_is_400(api, user, content, code):
    response = post_start(api, user, content)

    assert response.status_code == 400
    assert response.json()["code"] == code


def test_a_start_body_over_64_kb_is_413(api, user):
    body = json.dumps({"modelName": "x", "imageUrls": ["https://x/" + "a" * 70_000]})

    assert post_start(api, user, body.encode()).status_code == 413


def test_a_start_body_in_another_content_type_is_415(api, user):
    response = post_start(api, user, b"modelName=x", "application/x-www-form-urlencoded")

    assert response.status_code == 415


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"modelName": "x" * 101, "imageUrls": URLS}, "invalid_values"),
        ({"modelName": "Me\x00", "imageUrls": URLS}, "invalid_values"),
        ({"modelName": "Me", "gender": "w\nx", "imageUrls": URLS}, "invalid_values"),
        ({"modelName": "Me", "modelType": 7, "imageUrls": URLS}, "invalid_values"),
        (
            {"modelName": "Me", "imageUrls": [f"https://x/{i}" for i in range(51)]},
            "too_many_images",
        ),
        (
            {"modelName": "Me", "imageUrls": [*URLS[:4], "https://x/" + "a" * 2048]},
            "invalid_image_url",
        ),
        ({"modelName": "Me", "imageUrls": [*URLS[:4], "https://x/\x00.jpg"]}, "invalid_image_url"),
    ],
    ids=[
        "long-name",
        "nul-name",
        "newline-gender",
        "number-type",
        "51-urls",
        "long-url",
        "nul-url",
    ],
)
def test_start_values_out_of_range_are_422_and_write_nothing(api, user, db, body, code):
    response = api.post("/api/training/start", json=body, headers=user.headers)

    assert response.status_code == 422
    assert response.json()["code"] == code
    assert db.execute("SELECT 1 FROM user_models WHERE user_id = %s", (user.id,)).fetchall() == []


@pytest.mark.parametrize("key", ["k" * 201, "has space", "ключ"])
def test_an_idempotency_key_that_is_not_short_printable_ascii_is_400(api, user, key):
    urls = upload_selfies(api, user, 5)
    response = start_training(api, user, urls)  # the same body, now with a bad key
    assert response.status_code == 201

    body = json.dumps({"modelName": "Me", "imageUrls": urls}).encode()
    refused = post_start(api, user, body, **{"Idempotency-Key": key.encode()})

    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_idempotency_key"


def test_an_upload_that_is_neither_multipart_nor_a_blob_event_is_415(api, user):
    headers = {**user.headers, "Content-Type": "text/plain"}
    response = api.post("/api/training/upload", content=b"files", headers=headers)

    assert response.status_code == 415


def test_a_multipart_upload_without_a_boundary_is_refused_cleanly(api, user):
    headers = {**user.headers, "Content-Type": "multipart/form-data"}
    response = api.post("/api/training/upload", content=b"--x\r\n\r\n", headers=headers)

    assert 400 <= response.status_code < 500


def test_more_than_50_files_at_once_is_400(api, user):
    files = [("files", (f"s{i}.jpg", b"x", "image/jpeg")) for i in range(51)]

    response = api.post("/api/training/upload", files=files, headers=user.headers)

    assert response.status_code == 400
    assert response.json()["code"] == "too_many_files"


def test_a_file_over_the_configured_size_is_413(api, user, configure):
    configure(UPLOAD_MAX_BYTES="10000")
    files = [("files", ("big.jpg", jpeg(1), "image/jpeg"))]  # a real photo, well over 10 kB

    response = api.post("/api/training/upload", files=files, headers=user.headers)

    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/api/training/upload", 64 * 1024 * 1024),
        ("/api/training/start", 64 * 1024),
        ("/api/webhooks/replicate", 16 * 1024 * 1024),
    ],
)
def test_a_body_announced_over_the_limit_is_413_before_it_is_read(stack, user, path, limit):
    content_type = (
        "multipart/form-data; boundary=x" if path.endswith("upload") else "application/json"
    )
    headers = {**user.headers, "Content-Type": content_type, "Content-Length": str(limit + 1)}

    status, _ = raw_request(stack, "POST", path, headers)

    assert status == 413


def test_a_content_length_that_is_not_a_number_is_400(stack, user):
    headers = {**user.headers, "Content-Type": "application/json", "Content-Length": "lots"}

    status, _ = raw_request(stack, "POST", "/api/training/start", headers)

    assert status == 400


def test_a_token_over_8_kb_is_401_without_being_parsed(api):
    headers = {"Authorization": "Bearer " + "a" * 9000}

    response = api.get("/api/models", headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_progress_without_a_model_id_is_400(api, user):
    response = api.get("/api/training/progress", headers=user.headers)

    assert response.status_code == 400
    assert response.json()["code"] == "missing_parameter"


@pytest.mark.parametrize("timestamp", ["²", "1" * 13, "-5", "12.5"])
def test_a_webhook_timestamp_that_is_not_unix_seconds_is_401(api, timestamp):
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": timestamp.encode(),
        "webhook-signature": "v1,xxx",
    }

    response = api.post("/api/webhooks/replicate", content=b"{}", headers=headers)

    assert response.status_code == 401


def test_a_signed_webhook_with_an_id_that_is_not_replicates_is_400(api, stack):
    response = deliver(api, stack, {"id": "../../etc", "status": "processing"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_payload"


def test_a_signed_webhook_with_nul_characters_and_bad_times_is_applied(api, user, stack, db):
    started = start_training(api, user, upload_selfies(api, user, 5)).json()
    payload = {
        **stack.replicate.get_object(started["trainingId"]),
        "status": "failed",
        "error": "boom\x00",
        "logs": "flux_train_replicate:  10%|#| 100/1000 \x00",
        "started_at": "yesterday",
        "completed_at": "not a time",
        "output": ["not", "a", "dict"],
    }

    response = deliver(api, stack, payload)

    assert response.status_code == 200
    row = db.execute(
        "SELECT status, error, started_at FROM training_runs WHERE replicate_training_id = %s",
        (started["trainingId"],),
    ).fetchone()
    assert row["status"] == "failed" and row["error"] == "boom"


@pytest.mark.parametrize("route", discover_routes(), ids=lambda r: r.module_name)
def test_every_function_answers_an_unknown_method_with_405_and_allow(stack, route):
    from dev.openapi import route_paths

    path = next(p for p, (name, _) in route_paths().items() if name == route.module_name)
    status, body = raw_request(stack, "PATCH", path.replace("{id}", "x"), {})

    assert status == 405
    assert body["code"] == "method_not_allowed"
