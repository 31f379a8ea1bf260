"""The local Vercel Blob emulator, driven by the official `vercel-blob` SDK and by raw HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import httpx
import httpx2
import pytest
import vercel.api
import vercel.blob
import vercel.blob.sync as blob
from vercel.blob.errors import (
    BlobAccessError,
    BlobContentTypeNotAllowedError,
    BlobError,
    BlobFileTooLargeError,
    BlobNotFoundError,
    BlobPathnameMismatchError,
    BlobPreconditionFailedError,
)
from vercel.blob.models import BlobCredentials, CredentialKind

from dev.blob_emulator import (
    DEFAULT_TOKEN,
    BlobEmulator,
    ClientTokenError,
    delivery_url,
    verify_client_token,
)

MiB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture
def emu() -> Iterator[BlobEmulator]:
    with BlobEmulator() as emulator:
        yield emulator


@contextmanager
def sdk(
    emulator: BlobEmulator,
    *,
    token: str | None = None,
    kind: CredentialKind = CredentialKind.READ_WRITE,
) -> Iterator[None]:
    """The official sync SDK pointed at the emulator with explicit service options."""
    credentials = BlobCredentials(token or emulator.token, emulator.store_id, kind)
    options = blob.SyncBlobServiceOptions(
        base_url=emulator.url, credentials_factory=lambda: credentials
    )
    with vercel.api.session(
        service_options=[options],
        httpx_client_factory=lambda: httpx2.Client(transport=emulator.delivery_transport()),
    ):
        yield


def js_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def make_client_token(
    rw_token: str,
    pathname: str,
    *,
    valid_until: int | None = None,
    callback_url: str | None = None,
    token_payload: str | None = None,
    **options: Any,
) -> str:
    """Test-only port of @vercel/blob's generateClientTokenFromReadWriteToken."""
    store_id = rw_token.split("_")[3]
    payload: dict[str, Any] = {**options, "pathname": pathname}
    if callback_url is not None:
        payload["onUploadCompleted"] = {"callbackUrl": callback_url, "tokenPayload": token_payload}
    payload["validUntil"] = (
        valid_until if valid_until is not None else int(time.time() * 1000) + 60_000
    )
    payload_b64 = base64.b64encode(js_json(payload)).decode()
    signature = hmac.new(rw_token.encode(), payload_b64.encode(), hashlib.sha256).hexdigest()
    encoded = base64.b64encode(f"{signature}.{payload_b64}".encode()).decode()
    return f"vercel_blob_client_{store_id}_{encoded}"


def client_put(
    emulator: BlobEmulator,
    token: str,
    pathname: str,
    body: bytes,
    *,
    content_type: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A PUT shaped like the @vercel/blob browser client's upload()."""
    headers = {
        "authorization": f"Bearer {token}",
        "x-vercel-blob-store-id": emulator.store_id,
        "x-api-version": "12",
        "x-vercel-blob-access": "public",
        **({"x-content-type": content_type} if content_type else {}),
        **(extra_headers or {}),
    }
    return httpx.put(
        f"{emulator.url}/", params={"pathname": pathname}, content=body, headers=headers
    )


def api(emulator: BlobEmulator, method: str, path: str = "/", **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {emulator.token}", **kwargs.pop("headers", {})}
    return httpx.request(method, emulator.url + path, headers=headers, **kwargs)


class CallbackReceiver:
    """A tiny app server that records upload-completed callbacks as raw bytes."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                reply = b'{"type":"blob.upload-completed","response":"ok"}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/blob/upload"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    r = CallbackReceiver()
    yield r
    r.close()


# ---------------------------------------------------------------------------------------------
# Server-side API through the official SDK


def test_put_head_list_copy_and_delete_round_trip_through_the_sdk(emu: BlobEmulator) -> None:
    with sdk(emu):
        put = blob.put_blob(
            "docs/hello world.txt", b"hello", access="public", cache_control_max_age=3600
        )
        assert put.pathname == "docs/hello world.txt"
        assert put.url == delivery_url("devstore", "public", "docs/hello world.txt")
        assert put.url == "https://devstore.public.blob.vercel-storage.com/docs/hello%20world.txt"
        assert put.download_url == put.url + "?download=1"
        assert put.content_type == "text/plain"
        assert put.content_disposition == 'attachment; filename="hello world.txt"'
        assert put.etag == '"' + hashlib.sha256(b"hello").hexdigest() + '"'

        for target in (put.pathname, put.url):
            head = blob.head_blob(target)
            assert (head.size, head.etag, head.pathname) == (5, put.etag, put.pathname)
            assert head.cache_control == "public, max-age=3600"
            assert head.uploaded_at.tzinfo is not None

        copied = blob.copy_blob(put.url, "docs/copy.txt", access="public", if_match=put.etag)
        assert copied.etag == put.etag
        assert [b.pathname for b in blob.query_blobs(prefix="docs/")] == [
            "docs/copy.txt",
            "docs/hello world.txt",
        ]

        blob.delete_blob([put.url, "docs/never-existed.txt"])
        assert emu.objects() == {"docs/copy.txt": b"hello"}

    delete = next(r for r in emu.requests if r.path == "/delete")
    assert delete.method == "POST"
    assert delete.headers["authorization"] == f"Bearer {emu.token}"
    assert json.loads(delete.body or b"")["urls"][0] == put.url


def test_listing_follows_cursors_page_by_page_within_a_prefix(emu: BlobEmulator) -> None:
    for i in range(5):
        emu.add_object(f"img/{i}.png", b"x" * i)
    emu.add_object("other.txt", b"")
    with sdk(emu):
        listed = [b.pathname for b in blob.query_blobs(prefix="img/", page_size=2)]
    assert listed == [f"img/{i}.png" for i in range(5)]
    cursors = [r.query.get("cursor") for r in emu.requests if r.query.get("limit") == "2"]
    assert len(cursors) == 3 and cursors[0] is None and all(cursors[1:])

    first = api(emu, "GET", "/", params={"prefix": "img/", "limit": "3"}).json()
    assert first["hasMore"] is True and len(first["blobs"]) == 3
    rest = api(emu, "GET", "/", params={"prefix": "img/", "cursor": first["cursor"]}).json()
    assert [b["pathname"] for b in rest["blobs"]] == ["img/3.png", "img/4.png"]
    assert rest["hasMore"] is False and rest["cursor"] is None


def test_folded_listing_returns_folders_ending_with_a_slash(emu: BlobEmulator) -> None:
    for pathname in ("a/1.txt", "a/b/2.txt", "a/c/3.txt", "top.txt"):
        emu.add_object(pathname, b"1")
    with sdk(emu):
        entries = list(blob.query_blob_entries(prefix="a/"))
    assert [e.pathname for e in entries if isinstance(e, blob.ListBlob)] == ["a/1.txt"]
    assert [e.prefix for e in entries if isinstance(e, blob.BlobPrefix)] == ["a/b/", "a/c/"]


def test_an_existing_pathname_is_only_overwritten_with_allow_overwrite(emu: BlobEmulator) -> None:
    with sdk(emu):
        blob.put_blob("same.txt", b"one", access="public")
        with pytest.raises(BlobError) as refused:
            blob.put_blob("same.txt", b"two", access="public")
        assert refused.value.status_code == 400 and refused.value.code == "bad_request"
        assert "This blob already exists" in str(refused.value)
        assert emu.objects()["same.txt"] == b"one"
        blob.put_blob("same.txt", b"two", access="public", allow_overwrite=True)
    assert emu.objects()["same.txt"] == b"two"


def test_a_random_suffix_is_inserted_before_the_extension(emu: BlobEmulator) -> None:
    with sdk(emu):
        a = blob.put_blob("u/photo.jpg", b"1", access="public", add_random_suffix=True)
        b = blob.put_blob("u/photo.jpg", b"2", access="public", add_random_suffix=True)
    assert a.pathname != b.pathname
    for result in (a, b):
        stem, ext = result.pathname.rsplit(".", 1)
        assert ext == "jpg" and stem.startswith("u/photo-") and len(stem) == len("u/photo-") + 30
        assert result.content_type == "image/jpeg"


def test_get_blob_and_stream_blob_download_through_the_delivery_transport(
    emu: BlobEmulator,
) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB -> several 64 KiB chunks
    with sdk(emu):
        put = blob.put_blob("files/data.bin", data, access="public")
        got = blob.get_blob(put.url, access="public")
        assert got.body == data
        assert got.metadata.size == len(data)
        assert got.metadata.etag == put.etag
        assert got.metadata.content_type == "application/octet-stream"
        assert got.metadata.content_disposition == 'inline; filename="data.bin"'
        assert got.metadata.last_modified is not None
        with blob.stream_blob("files/data.bin", access="public") as download:
            chunks = list(download)
        assert b"".join(chunks) == data and len(chunks) > 1
        with pytest.raises(BlobNotFoundError):
            blob.get_blob("files/missing.bin", access="public")

    delivery = [r for r in emu.requests if r.path == "/files/data.bin"]
    assert delivery and delivery[0].headers["host"] == "devstore.public.blob.vercel-storage.com"

    # The same transport works with plain httpx, sync and async.
    with httpx.Client(transport=emu.delivery_transport()) as client:
        attached = client.get(put.download_url)
    assert attached.content == data
    assert attached.headers["content-disposition"] == 'attachment; filename="data.bin"'

    async def fetch() -> bytes:
        async with httpx.AsyncClient(transport=emu.delivery_async_transport()) as client:
            return (await client.get(put.url, headers={"range": "bytes=0-9"})).content

    assert asyncio.run(fetch()) == data[:10]


def test_the_async_sdk_downloads_through_the_async_delivery_transport(emu: BlobEmulator) -> None:
    emu.add_object("async.txt", b"async body")
    credentials = BlobCredentials(emu.token, emu.store_id)

    async def run() -> bytes:
        async def factory() -> BlobCredentials:
            return credentials

        options = vercel.blob.BlobServiceOptions(base_url=emu.url, credentials_factory=factory)
        async with vercel.api.session(
            service_options=[options],
            httpx_client_factory=lambda: httpx2.AsyncClient(
                transport=emu.delivery_async_transport()
            ),
        ):
            return (await vercel.blob.get_blob("async.txt", access="public")).body

    assert asyncio.run(run()) == b"async body"


def test_private_blobs_need_the_read_write_token_on_delivery(emu: BlobEmulator) -> None:
    with sdk(emu):
        put = blob.put_blob("private/cv.pdf", b"%PDF", access="private")
        assert put.url.startswith("https://devstore.private.blob.vercel-storage.com/")
        assert blob.get_blob(put.url, access="private").body == b"%PDF"
        assert blob.head_blob(put.url).cache_control.startswith("private")

    with httpx.Client(transport=emu.delivery_transport()) as client:
        assert client.get(put.url).status_code == 403
        wrong = client.get(put.url, headers={"authorization": "Bearer vercel_blob_rw_devstore_x"})
        assert wrong.status_code == 403
        ok = client.get(put.url, headers={"authorization": f"Bearer {emu.token}"})
        assert ok.status_code == 200 and ok.content == b"%PDF"
        # A private blob is not served from the public host.
        public = put.url.replace(".private.", ".public.")
        assert client.get(public).status_code == 404

    with (
        sdk(emu, token="vercel_blob_rw_devstore_notTheRealSecret"),
        pytest.raises(BlobAccessError),
    ):
        blob.get_blob(put.url, access="private")


def test_a_multipart_upload_of_twelve_mebibytes_in_three_parts_completes(
    emu: BlobEmulator,
) -> None:
    data = hashlib.sha256(b"seed").digest() * (12 * MiB // 32) + b"tail"
    with sdk(emu):
        with blob.multipart_upload_blob("videos/clip.mp4", access="public") as upload:
            upload.upload_part(data[: 5 * MiB])
            upload.upload_part(data[5 * MiB : 10 * MiB])
            upload.upload_part(data[10 * MiB :])
        result = upload.result
        assert result.pathname == "videos/clip.mp4" and result.content_type == "video/mp4"
        assert blob.head_blob("videos/clip.mp4").size == len(data)
    assert emu.objects()["videos/clip.mp4"] == data
    actions = [r.headers.get("x-mpu-action") for r in emu.requests if r.path == "/mpu"]
    assert actions == ["create", "upload", "upload", "upload", "complete"]


def test_multipart_complete_refuses_a_non_final_part_under_five_mebibytes(
    emu: BlobEmulator,
) -> None:
    common = {"x-vercel-blob-access": "public"}
    created = api(
        emu,
        "POST",
        "/mpu",
        params={"pathname": "small.bin"},
        headers=common | {"x-mpu-action": "create"},
    ).json()
    ids = {"x-mpu-key": quote(created["key"]), "x-mpu-upload-id": created["uploadId"]}
    parts = []
    for number, chunk in ((1, b"a" * 10), (2, b"b" * 10)):
        receipt = api(
            emu,
            "POST",
            "/mpu",
            params={"pathname": "small.bin"},
            headers=common | ids | {"x-mpu-action": "upload", "x-mpu-part-number": str(number)},
            content=chunk,
        ).json()
        parts.append({"partNumber": number, "etag": receipt["etag"]})
    complete = api(
        emu,
        "POST",
        "/mpu",
        params={"pathname": "small.bin"},
        headers=common | ids | {"x-mpu-action": "complete"},
        json=parts,
    )
    assert complete.status_code == 400
    assert complete.json()["error"]["code"] == "bad_request"
    assert "small.bin" not in emu.objects()


def test_head_of_a_missing_pathname_raises_blob_not_found(emu: BlobEmulator) -> None:
    with emu.sdk_session(), pytest.raises(BlobNotFoundError) as missing:
        blob.head_blob("nope.txt")
    assert missing.value.status_code == 404 and missing.value.code == "blob_not_found"


def test_a_wrong_read_write_token_raises_the_sdk_access_error(emu: BlobEmulator) -> None:
    with sdk(emu, token="vercel_blob_rw_devstore_notTheRealSecret"):
        with pytest.raises(BlobAccessError) as denied:
            blob.put_blob("x.txt", b"x", access="public")
        assert denied.value.status_code == 403
        with pytest.raises(BlobAccessError):
            list(blob.query_blobs())
    assert emu.objects() == {}


def test_an_etag_mismatch_raises_precondition_failed(emu: BlobEmulator) -> None:
    emu.add_object("v1.txt", b"v1")
    with sdk(emu), pytest.raises(BlobPreconditionFailedError):
        blob.copy_blob("v1.txt", "v2.txt", access="public", if_match='"stale"')
    response = api(
        emu,
        "PUT",
        "/",
        params={"pathname": "v1.txt"},
        headers={"x-if-match": '"stale"', "x-allow-overwrite": "1"},
        content=b"v2",
    )
    assert response.status_code == 412
    assert response.json() == {
        "error": {
            "code": "precondition_failed",
            "message": "The blob was modified (ETag mismatch)",
        }
    }


def test_the_sdk_finds_the_emulator_from_environment_variables(
    emu: BlobEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VERCEL_BLOB_API_URL", emu.url)
    monkeypatch.setenv("BLOB_READ_WRITE_TOKEN", emu.token)
    with vercel.api.session(
        httpx_client_factory=lambda: httpx2.Client(transport=emu.delivery_transport())
    ):
        put = blob.put_blob("env.txt", b"from env", access="public")
        assert blob.get_blob(put.url, access="public").body == b"from env"
    assert emu.token == DEFAULT_TOKEN and emu.store_id == "devstore"
    assert len(DEFAULT_TOKEN.removeprefix("vercel_blob_rw_devstore_")) == 30
    assert emu.env()["VERCEL_BLOB_API_URL"] == emu.url


def test_the_api_answers_json_at_both_roots_and_validates_pathnames(emu: BlobEmulator) -> None:
    emu.add_object("a.txt", b"a")
    for root in ("", "/"):
        response = api(emu, "GET", root, params={"url": "a.txt"})
        assert response.status_code == 200 and response.json()["pathname"] == "a.txt"
    missing = httpx.get(emu.url + "/", params={"url": "a.txt"})
    assert missing.status_code == 403 and missing.json()["error"]["code"] == "forbidden"
    deleted = api(emu, "POST", "/delete", json={"urls": ["a.txt"]})
    assert deleted.status_code == 200 and deleted.json() == {}
    preflight = httpx.options(
        emu.url + "/",
        headers={
            "origin": "http://localhost:3000",
            "access-control-request-method": "PUT",
            "access-control-request-headers": "authorization,x-content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert preflight.headers["access-control-allow-headers"] == "authorization,x-content-type"
    for bad in ("a//b.txt", "x/../y.txt", "./z.txt", "ctl\x01.txt"):
        response = api(emu, "PUT", "/", params={"pathname": bad}, content=b"x")
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "bad_request"


def test_blobs_survive_a_restart_when_a_root_is_given(tmp_path: Any) -> None:
    with BlobEmulator(root=tmp_path) as first:
        first.add_object("kept.txt", b"kept", content_type="text/x-kept")
    with BlobEmulator(root=tmp_path) as second:
        assert second.objects() == {"kept.txt": b"kept"}
        assert second.metadata("kept.txt")["contentType"] == "text/x-kept"  # type: ignore[index]


def test_the_loopback_delivery_route_serves_blobs_to_a_browser(emu: BlobEmulator) -> None:
    public = emu.add_object("pics/cat.png", b"\x89PNG")
    private = emu.add_object("pics/secret.png", b"\x89PNG!", access="private")
    shown = httpx.get(emu.browser_url(public["url"]))
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    assert shown.content == b"\x89PNG"
    assert httpx.get(emu.browser_url(private["url"])).status_code == 403
    with_token = httpx.get(emu.browser_url(private["url"]), params={"token": emu.token})
    assert with_token.content == b"\x89PNG!"


def test_latency_delays_every_request(emu: BlobEmulator) -> None:
    emu.latency = 0.05
    started = time.perf_counter()
    api(emu, "GET", "/")
    assert time.perf_counter() - started >= 0.05


# ---------------------------------------------------------------------------------------------
# Client uploads


def test_a_generated_client_token_is_accepted_for_its_pathname(emu: BlobEmulator) -> None:
    token = make_client_token(emu.token, "avatars/me.png", allowedContentTypes=["image/*"])
    assert verify_client_token(token, emu.token, int(time.time() * 1000))["pathname"] == (
        "avatars/me.png"
    )
    response = client_put(emu, token, "avatars/me.png", b"\x89PNG", content_type="image/png")
    assert response.status_code == 200, response.text
    assert response.json()["url"] == delivery_url("devstore", "public", "avatars/me.png")
    assert emu.objects() == {"avatars/me.png": b"\x89PNG"}
    # A client token cannot list, read metadata or delete.
    listing = httpx.get(emu.url + "/", headers={"authorization": f"Bearer {token}"})
    assert listing.status_code == 403


def test_a_client_token_with_a_forged_signature_is_refused(emu: BlobEmulator) -> None:
    forged = make_client_token("vercel_blob_rw_devstore_someOtherSecret", "a.txt")
    response = client_put(emu, forged, "a.txt", b"a")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    with pytest.raises(ClientTokenError) as refused:
        verify_client_token(forged, emu.token, int(time.time() * 1000))
    assert (refused.value.code, refused.value.status) == ("forbidden", 403)
    assert emu.objects() == {}


def test_an_expired_client_token_is_refused(emu: BlobEmulator) -> None:
    expired = make_client_token(emu.token, "a.txt", valid_until=int(time.time() * 1000) - 1)
    response = client_put(emu, expired, "a.txt", b"a")
    assert response.status_code == 403
    assert response.json()["error"] == {"code": "client_token_expired", "message": "Token expired"}


def test_a_client_token_for_another_pathname_is_refused(emu: BlobEmulator) -> None:
    token = make_client_token(emu.token, "allowed.txt")
    response = client_put(emu, token, "other.txt", b"a")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "client_token_pathname_mismatch"
    with sdk(emu, token=token, kind=CredentialKind.OIDC), pytest.raises(BlobPathnameMismatchError):
        blob.put_blob("other.txt", b"a", access="public")
    assert emu.objects() == {}


def test_a_client_token_refuses_a_content_type_it_does_not_allow(emu: BlobEmulator) -> None:
    token = make_client_token(emu.token, "pic.png", allowedContentTypes=["image/*"])
    response = client_put(emu, token, "pic.png", b"a", content_type="text/plain")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_type_not_allowed"
    with (
        sdk(emu, token=token, kind=CredentialKind.OIDC),
        pytest.raises(BlobContentTypeNotAllowedError),
    ):
        blob.put_blob("pic.png", b"a", access="public", content_type="application/pdf")
    assert client_put(emu, token, "pic.png", b"a", content_type="image/webp").status_code == 200


def test_a_client_token_refuses_a_file_larger_than_its_maximum(emu: BlobEmulator) -> None:
    token = make_client_token(emu.token, "big.bin", maximumSizeInBytes=4)
    response = client_put(emu, token, "big.bin", b"12345")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "file_too_large"
    assert "the file length cannot be greater than 4" in error["message"]
    with sdk(emu, token=token, kind=CredentialKind.OIDC), pytest.raises(BlobFileTooLargeError):
        blob.put_blob("big.bin", b"123456", access="public")
    assert client_put(emu, token, "big.bin", b"1234").status_code == 200


def test_upload_options_come_from_the_client_token_not_the_request(emu: BlobEmulator) -> None:
    emu.add_object("taken.txt", b"old")
    token = make_client_token(
        emu.token, "taken.txt", addRandomSuffix=False, allowOverwrite=True, cacheControlMaxAge=120
    )
    response = client_put(
        emu,
        token,
        "taken.txt",
        b"new",
        extra_headers={
            "x-add-random-suffix": "1",
            "x-allow-overwrite": "0",
            "x-cache-control-max-age": "999",
        },
    )
    assert response.status_code == 200 and response.json()["pathname"] == "taken.txt"
    head = api(emu, "GET", "/", params={"url": "taken.txt"}).json()
    assert head["cacheControl"] == "public, max-age=120"
    assert emu.objects()["taken.txt"] == b"new"


def test_the_upload_completed_callback_is_signed_over_the_raw_body(
    emu: BlobEmulator, receiver: CallbackReceiver
) -> None:
    token = make_client_token(
        emu.token,
        "uploads/ünïcode.jpg",
        callback_url=receiver.url,
        token_payload='{"userId":"u1"}',
    )
    put = client_put(emu, token, "uploads/ünïcode.jpg", b"jpeg", content_type="image/jpeg")
    assert put.status_code == 200
    [delivery] = emu.wait_for_callbacks(timeout=10)
    assert delivery.status == 200 and delivery.error is None
    [(headers, body)] = receiver.received
    assert body == delivery.body
    assert headers["content-type"] == "application/json"
    expected = hmac.new(emu.token.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-vercel-signature"], expected)
    event = json.loads(body)
    assert event == {
        "type": "blob.upload-completed",
        "payload": {"blob": put.json(), "tokenPayload": '{"userId":"u1"}'},
    }
    assert body == js_json(event)  # byte-identical to JSON.stringify of the parsed body
    assert set(event["payload"]["blob"]) == {
        "url",
        "downloadUrl",
        "pathname",
        "contentType",
        "contentDisposition",
        "etag",
    }

    again = emu.resend_callback()
    assert again.status == 200 and again.body == body
    assert [b for _, b in receiver.received] == [body, body]
    assert receiver.received[1][0]["x-vercel-signature"] == headers["x-vercel-signature"]
    assert len(emu.callbacks) == 2


def test_a_client_multipart_upload_sends_the_callback_after_completion(
    emu: BlobEmulator, receiver: CallbackReceiver
) -> None:
    token = make_client_token(emu.token, "mp/video.mp4", callback_url=receiver.url)
    data = b"v" * (5 * MiB + 3)
    with (
        sdk(emu, token=token, kind=CredentialKind.OIDC),
        blob.multipart_upload_blob("mp/video.mp4", access="public") as upload,
    ):
        upload.upload_part(data[: 5 * MiB])
        upload.upload_part(data[5 * MiB :])
    [delivery] = emu.wait_for_callbacks(timeout=10)
    assert delivery.json["payload"]["blob"]["pathname"] == "mp/video.mp4"
    assert delivery.json["payload"]["tokenPayload"] is None
    assert emu.objects()["mp/video.mp4"] == data
