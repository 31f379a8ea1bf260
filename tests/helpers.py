"""What many tests do: sign in, make images, upload them, start a training, deliver webhooks."""

import json
import os
import time
import uuid
from functools import cache
from pathlib import Path

import httpx
import psycopg

from dev.samples import selfie
from dev.server import OPENAPI_DOCUMENT
from dev.stack import DEV_JWT_SECRET
from dev.tokens import issue_token
from lib.adapters.signatures import sign

UPLOAD = "/api/training/upload"


class User:
    def __init__(self, user_id: str) -> None:
        self.id = user_id
        self.headers = {"Authorization": f"Bearer {issue_token(DEV_JWT_SECRET, user_id)}"}


def jpeg(seed: int) -> bytes:
    """A distinct real selfie (one clear face) per seed."""
    return selfie(seed)


def upload_selfies(api: httpx.Client, user: User, count: int = 5) -> list[str]:
    """Upload `count` distinct selfies for the user; return their URLs."""
    files = [("files", (f"selfie{i}.jpg", jpeg(i), "image/jpeg")) for i in range(count)]
    response = api.post("/api/training/upload", files=files, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["urls"]


def start_training(api: httpx.Client, user: User, urls: list[str], **extra) -> httpx.Response:
    """POST /api/training/start with a valid body."""
    body = {"modelName": "Me", "modelType": "flux", "gender": "woman", "imageUrls": urls, **extra}
    return api.post("/api/training/start", json=body, headers=user.headers)


def started(api: httpx.Client, user: User, count: int = 5) -> dict:
    """A started training's 201 body."""
    response = start_training(api, user, upload_selfies(api, user, count))
    assert response.status_code == 201, response.text
    return response.json()


def progress(api: httpx.Client, user: User, model_id: str) -> dict:
    """GET /api/training/progress's 200 body."""
    response = api.get("/api/training/progress", params={"modelId": model_id}, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


def replicate_gets(stack, training_id: str) -> list:
    """The GETs of one training the Replicate emulator has answered."""
    return [
        r for r in stack.replicate.requests if r.method == "GET" and r.path.endswith(training_id)
    ]


def go_quiet(db, training_id: str, seconds: int = 120) -> None:
    """Make a run look as if nothing was heard of it (or about it) for `seconds`."""
    db.execute(
        "UPDATE training_runs SET last_event_at = now() - make_interval(secs => %s),"
        " created_at = now() - make_interval(secs => %s), last_polled_at = NULL"
        " WHERE replicate_training_id = %s",
        (seconds, seconds, training_id),
    )


def signed_delivery(stack, payload, *, webhook_id=None, timestamp=None, secret=None):
    """A delivery's raw body and headers, signed as Replicate signs them."""
    raw = json.dumps(payload).encode()
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(
            secret or stack.replicate.webhook_secret, webhook_id, timestamp, raw
        ),
        "content-type": "application/json",
    }
    return raw, headers


def deliver(api, stack, payload, *, query="", **signing):
    """POST a delivery signed as Replicate signs it."""
    raw, headers = signed_delivery(stack, payload, **signing)
    return api.post(f"/api/webhooks/replicate{query}", content=raw, headers=headers)


def ask_token(api, user, pathname):
    event = {
        "type": "blob.generate-client-token",
        "payload": {"pathname": pathname, "clientPayload": None, "multipart": False},
    }
    return api.post(UPLOAD, json=event, headers=user.headers)


def browser_put(stack, token, pathname, data, content_type="image/jpeg"):
    """The PUT that @vercel/blob's upload() sends from the browser."""
    return httpx.put(
        f"{stack.blob.url}/",
        params={"pathname": pathname},
        content=data,
        headers={
            "authorization": f"Bearer {token}",
            "x-vercel-blob-store-id": stack.blob.store_id,
            "x-api-version": "12",
            "x-content-type": content_type,
        },
    )


def client_upload(api, stack, user, pathname, data, content_type="image/jpeg"):
    """Token, PUT and wait for the callback; returns (put result, callback delivery)."""
    token = ask_token(api, user, pathname).json()["clientToken"]
    put = browser_put(stack, token, pathname, data, content_type)
    assert put.status_code == 200, put.text
    stack.blob.wait_for_callbacks()
    delivery = next(
        c
        for c in reversed(stack.blob.callbacks)
        if c.json["payload"]["blob"]["url"] == put.json()["url"]
    )
    return put.json(), delivery


@cache
def _openapi():
    import schemathesis

    return schemathesis.openapi.from_path(OPENAPI_DOCUMENT)


def conforms_to_openapi(response: httpx.Response) -> None:
    """Fail unless a documented operation's answer has a documented status and body."""
    request = response.request
    operation = _openapi().find_operation_by_path(request.method, request.url.path)
    if operation is None:
        return  # OPTIONS, an undocumented method (405), the dev pages
    request.read()  # schemathesis keeps the request with the response
    response.read()
    status = response.status_code
    assert operation.responses.find_by_status_code(status), f"{operation.label} answered {status}"
    operation.validate_response(response)


def open_files_under(folder: Path) -> list[str]:
    """What this process holds open below `folder`, deleted files included (Linux /proc)."""
    targets = []
    for descriptor in Path("/proc/self/fd").iterdir():
        try:
            targets.append(os.readlink(descriptor))
        except OSError:  # the listing's own descriptor, closed by now
            continue
    return [target for target in targets if target.startswith(f"{folder}/")]


def eventually(probe, timeout=15):
    """probe()'s first truthy answer, asked until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not (answer := probe()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return answer


def server_connection_url(database_url: str) -> str:
    """A URL to another database of the same server, from which the suite's database can be
    locked out: `postgres`, or `template1` when the suite runs in `postgres` itself (as on the
    embedded server)."""
    suite = psycopg.conninfo.conninfo_to_dict(database_url).get("dbname")
    other = "template1" if suite == "postgres" else "postgres"
    return psycopg.conninfo.make_conninfo(database_url, dbname=other)
