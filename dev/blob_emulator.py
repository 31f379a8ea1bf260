"""A local emulator of the Vercel Blob HTTP API, for development and tests.

`BlobEmulator` runs a real threaded HTTP server on 127.0.0.1 that speaks the wire protocol
used by the official SDKs (Python `vercel-blob` 0.5.0 and `@vercel/blob` 2.x):

* API (base URL = `emulator.url`, also accepted under `/api/blob`):
  put `PUT /?pathname=`, copy `PUT /?pathname=&fromUrl=`, head `GET /?url=`,
  list `GET /?limit=&prefix=&cursor=[&mode=folded]`, delete `POST /delete`,
  rename `POST /rename?pathname=&fromUrl=`, multipart `POST /mpu` (`x-mpu-action`).
  Every answer is JSON; errors are `{"error": {"code", "message"}}`.
* Delivery: `GET|HEAD /<pathname>` when the Host header is
  `<store>.<public|private>.blob.vercel-storage.com`. URLs returned by the API are real-looking
  `https://...blob.vercel-storage.com/...` URLs (the Python SDK rejects anything else), so
  downloads reach the emulator through `BlobEmulator.delivery_transport()`, which rewrites
  those requests to this server over plain HTTP while keeping the Host header.
* Emulator-only convenience (not part of Vercel): `GET /_delivery/<access>/<pathname>` on the
  loopback address serves a blob to a browser (e.g. an `<img>` in a dev console). Private blobs
  there need `Authorization: Bearer <rw token>` or `?token=<rw token>`.
* Client uploads: `vercel_blob_client_...` tokens (HMAC-SHA256 with the read-write token) are
  verified exactly like the service does, and after a successful upload the signed
  `blob.upload-completed` callback is POSTed to the token's `callbackUrl`.

Blobs live on disk under `root` (`blobs/<hh>/<sha256(pathname)>.bin` plus a `.json` metadata
file beside it), so a store survives restarts when `root` is given.

Minimal use with the official Python SDK::

    with BlobEmulator() as emu, emu.sdk_session():
        vercel.blob.sync.put_blob("a.txt", b"hi", access="public")
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import mimetypes
import os
import re
import secrets
import shutil
import string
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx

try:  # the fork used by the official SDK; optional for the emulator itself
    import httpx2
except ImportError:  # pragma: no cover - vercel-blob always installs it
    httpx2 = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_TOKEN",
    "BlobEmulator",
    "CallbackDelivery",
    "ClientTokenError",
    "RecordedRequest",
    "check_client_upload",
    "delivery_url",
    "verify_client_token",
]

log = logging.getLogger(__name__)

DEFAULT_SECRET = "devEmulatorSecret0123456789ABC"  # 30 characters, fixed on purpose
DEFAULT_TOKEN = "vercel_blob_rw_devstore_" + DEFAULT_SECRET
RW_TOKEN_PREFIX = "vercel_blob_rw_"
CLIENT_TOKEN_PREFIX = "vercel_blob_client_"
DELIVERY_DOMAIN = ".blob.vercel-storage.com"
DEFAULT_CACHE_MAX_AGE = 30 * 24 * 3600  # one month, like the service
MIN_CACHE_MAX_AGE = 60
MAX_PATHNAME_LENGTH = 950
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
MAX_LIST_LIMIT = 1000
RECORDED_BODY_LIMIT = 64 * 1024
CALLBACK_TIMEOUT = 10.0
_CHUNK = 64 * 1024
_SUFFIX_ALPHABET = string.ascii_letters + string.digits
_EXISTS_MESSAGE = "This blob already exists, use `allowOverwrite: true` if you want to overwrite it"


# --------------------------------------------------------------------------------------------
# Public helpers


def delivery_url(store_id: str, access: str, pathname: str) -> str:
    """The delivery URL the service returns for a blob (same recipe as the SDKs)."""
    return f"https://{store_id.lower()}.{access}{DELIVERY_DOMAIN}/{quote(pathname, safe='/')}"


class ClientTokenError(Exception):
    """A client token (or an upload made with it) was refused."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _store_from_rw_token(token: str) -> str | None:
    if not token.startswith(RW_TOKEN_PREFIX):
        return None
    store, sep, secret = token[len(RW_TOKEN_PREFIX) :].partition("_")
    if not sep or not store or not secret.strip("_"):
        return None
    return store.removeprefix("store_") or None


def verify_client_token(token: str, rw_token: str, now_ms: int) -> dict[str, Any]:
    """Verify a `vercel_blob_client_<store>_<base64(hexsig + "." + payloadB64)>` token.

    Returns the decoded payload (pathname, validUntil, allowedContentTypes, ...).
    Raises ClientTokenError: 403 `forbidden` for a malformed/forged token or one minted for
    another store, 403 `client_token_expired` ("Token expired") once `validUntil` has passed.
    """
    forbidden = ClientTokenError("forbidden", "Invalid client token", 403)
    if not isinstance(token, str) or not token.startswith(CLIENT_TOKEN_PREFIX):
        raise forbidden
    store, sep, encoded = token[len(CLIENT_TOKEN_PREFIX) :].rpartition("_")
    if not sep or not store or store != _store_from_rw_token(rw_token):
        raise forbidden
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        signature, dot, payload_b64 = decoded.partition(".")
        if not dot:
            raise ValueError("no separator")
        expected = hmac.new(rw_token.encode(), payload_b64.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            raise ValueError("bad signature")
        payload = json.loads(base64.b64decode(payload_b64, validate=True).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise forbidden from None
    if not isinstance(payload, dict):
        raise forbidden
    valid_until = payload.get("validUntil")
    if not isinstance(valid_until, int | float) or isinstance(valid_until, bool):
        raise forbidden
    if now_ms > valid_until:
        raise ClientTokenError("client_token_expired", "Token expired", 403)
    return payload


def _base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _content_type_allowed(content_type: str, allowed: list[Any]) -> bool:
    actual = _base_type(content_type)
    for item in allowed:
        if not isinstance(item, str):
            continue
        wanted = _base_type(item)
        if wanted in ("*", "*/*") or wanted == actual:
            return True
        if wanted.endswith("/*") and actual.startswith(wanted[:-1]):
            return True
    return False


def check_client_upload(
    payload: dict[str, Any], *, pathname: str, content_type: str | None, size: int | None
) -> None:
    """Enforce a verified client token's constraints on one upload (400 errors).

    `content_type`/`size` of None skip that check (e.g. multipart create does not know
    the size yet).
    """
    allowed_path = str(payload.get("pathname", "")).removeprefix("/")
    if pathname.removeprefix("/") != allowed_path:
        raise ClientTokenError(
            "client_token_pathname_mismatch",
            f'The "pathname" of the request ({pathname}) does not match the token payload '
            f"({allowed_path})",
            400,
        )
    allowed = payload.get("allowedContentTypes")
    if (
        content_type is not None
        and isinstance(allowed, list)
        and allowed
        and not _content_type_allowed(content_type, allowed)
    ):
        raise ClientTokenError(
            "content_type_not_allowed",
            f'contentType "{content_type}" is not allowed. Allowed content types: '
            + ", ".join(str(a) for a in allowed),
            400,
        )
    maximum = payload.get("maximumSizeInBytes")
    if (
        size is not None
        and isinstance(maximum, int)
        and not isinstance(maximum, bool)
        and size > maximum
    ):
        raise ClientTokenError(
            "file_too_large",
            f"File size {size} exceeds the token limit: "
            f"the file length cannot be greater than {maximum} bytes",
            400,
        )


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator answered (recorded after the response was sent)."""

    method: str
    path: str  # URL path as sent (still percent-encoded), without the query
    query: dict[str, str]  # last value per key, decoded
    headers: dict[str, str]  # lower-cased names
    status: int = 0
    body: bytes | None = None  # None when larger than 64 KiB (or never received)


@dataclass
class CallbackDelivery:
    """One POST of a `blob.upload-completed` callback."""

    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None  # None when the request failed (see `error`)
    error: str | None = None
    response_body: bytes = b""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _bad_request(message: str) -> _ApiError:
    return _ApiError(400, "bad_request", message)


def _not_found(message: str = "The requested blob does not exist") -> _ApiError:
    return _ApiError(404, "blob_not_found", message)


# --------------------------------------------------------------------------------------------
# Small pure helpers


def _js_json(obj: Any) -> bytes:
    """Serialize like JavaScript's JSON.stringify."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _now_iso() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _http_date(iso: str) -> str:
    return format_datetime(datetime.fromisoformat(iso.replace("Z", "+00:00")), usegmt=True)


def _strip_etag(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def _validate_pathname(raw: str | None) -> str:
    if raw is None or raw == "":
        raise _bad_request("pathname is required")
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise _bad_request("pathname cannot contain control characters")
    if "//" in raw:
        raise _bad_request('pathname cannot contain "//"')
    pathname = raw.removeprefix("/")
    if not pathname:
        raise _bad_request("pathname cannot be root or empty")
    if any(seg in (".", "..") for seg in pathname.split("/")):
        raise _bad_request("pathname cannot contain dot segments ('.' or '..')")
    if len(pathname.encode("utf-16-le")) // 2 > MAX_PATHNAME_LENGTH:
        raise _bad_request(f"pathname is too long, maximum length is {MAX_PATHNAME_LENGTH}")
    return pathname


def _with_random_suffix(pathname: str) -> str:
    directory, slash, name = pathname.rpartition("/")
    if not name:  # a folder marker such as "dir/"
        return pathname
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(30))
    dot = name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    return f"{directory}{slash}{stem}-{suffix}{ext}"


def _content_disposition(pathname: str, kind: str) -> str:
    name = pathname.rstrip("/").rpartition("/")[2]
    safe = name.replace("\\", "\\\\").replace('"', '\\"')
    if name.isascii():
        return f'{kind}; filename="{safe}"'
    fallback = safe.encode("ascii", "replace").decode("ascii")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _guess_content_type(pathname: str) -> str:
    return mimetypes.guess_type(pathname, strict=False)[0] or "application/octet-stream"


def _header_bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true")


def _parse_max_age(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        age = int(value)
    except ValueError:
        raise _bad_request("x-cache-control-max-age must be an integer") from None
    if age < 0:
        raise _bad_request("x-cache-control-max-age must be nonnegative")
    return max(age, MIN_CACHE_MAX_AGE)


def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        raise _bad_request("Invalid cursor") from None


# --------------------------------------------------------------------------------------------
# Transports that route *.blob.vercel-storage.com to the emulator


def _is_delivery_host(host: str) -> bool:
    return host.lower().endswith(DELIVERY_DOMAIN)


_SYNC_BASES: tuple[type, ...] = (httpx.BaseTransport,)
_ASYNC_BASES: tuple[type, ...] = (httpx.AsyncBaseTransport,)
if httpx2 is not None:
    _SYNC_BASES += (httpx2.BaseTransport,)
    _ASYNC_BASES += (httpx2.AsyncBaseTransport,)


def _flavour(request: Any) -> Any:
    if httpx2 is not None and isinstance(request, httpx2.Request):
        return httpx2
    return httpx


class _DeliveryTransport(*_SYNC_BASES):  # type: ignore[misc]
    """Sends `https://*.blob.vercel-storage.com/...` to the emulator, keeping the Host header.

    Works as the transport of an `httpx.Client` and of an `httpx2.Client` (the SDK's fork);
    every other request goes out unchanged.
    """

    def __init__(self, emulator: BlobEmulator) -> None:
        self._emulator = emulator
        self._inner: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def _inner_for(self, module: Any) -> Any:
        with self._lock:
            if module not in self._inner:
                self._inner[module] = module.HTTPTransport()
            return self._inner[module]

    def handle_request(self, request: Any) -> Any:
        if _is_delivery_host(request.url.host):
            request.url = request.url.copy_with(
                scheme="http", host="127.0.0.1", port=self._emulator.port
            )
        return self._inner_for(_flavour(request)).handle_request(request)

    def close(self) -> None:
        with self._lock:
            inner, self._inner = list(self._inner.values()), {}
        for transport in inner:
            transport.close()


class _AsyncDeliveryTransport(*_ASYNC_BASES):  # type: ignore[misc]
    """The async twin of `_DeliveryTransport` (for `httpx.AsyncClient`/`httpx2.AsyncClient`)."""

    def __init__(self, emulator: BlobEmulator) -> None:
        self._emulator = emulator
        self._inner: dict[Any, Any] = {}

    def _inner_for(self, module: Any) -> Any:
        if module not in self._inner:
            self._inner[module] = module.AsyncHTTPTransport()
        return self._inner[module]

    async def handle_async_request(self, request: Any) -> Any:
        if _is_delivery_host(request.url.host):
            request.url = request.url.copy_with(
                scheme="http", host="127.0.0.1", port=self._emulator.port
            )
        return await self._inner_for(_flavour(request)).handle_async_request(request)

    async def aclose(self) -> None:
        inner, self._inner = list(self._inner.values()), {}
        for transport in inner:
            await transport.aclose()


# --------------------------------------------------------------------------------------------
# The emulator


class BlobEmulator:
    """A Vercel Blob store served from 127.0.0.1 (see the module docstring)."""

    def __init__(self, *, token: str = DEFAULT_TOKEN, root: Path | None = None) -> None:
        store = _store_from_rw_token(token)
        if store is None:
            raise ValueError("token must look like vercel_blob_rw_<storeId>_<secret>")
        self.token = token
        self.store_id = store
        self._own_root = root is None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if root is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="blob-emulator-")
            root = Path(self._tempdir.name)
        self.root = Path(root)
        self.latency = 0.0
        self.requests: list[RecordedRequest] = []
        self.callbacks: list[CallbackDelivery] = []
        self._lock = threading.RLock()
        self._index: dict[str, dict[str, Any]] = {}
        self._uploads: dict[str, dict[str, Any]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._pending_callbacks = 0
        self._callbacks_done = threading.Condition()
        self._load_index()

    # ---- lifecycle ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("BlobEmulator is not started")
        return self._port

    @property
    def url(self) -> str:
        """The API base URL (what VERCEL_BLOB_API_URL should be set to)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> BlobEmulator:
        if self._server is not None:
            return self
        if self._tempdir is None and self._own_root:  # restarted after stop()
            self._tempdir = tempfile.TemporaryDirectory(prefix="blob-emulator-")
            self.root = Path(self._tempdir.name)
        self.root.mkdir(parents=True, exist_ok=True)
        handler = type("_BoundHandler", (_Handler,), {"emulator": self})
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        server.daemon_threads = True
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"blob-emulator:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving. A store without an explicit `root` is deleted."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
            with self._lock:
                self._index.clear()
                self._uploads.clear()

    def __enter__(self) -> BlobEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- wiring helpers ----------------------------------------------------------------

    def delivery_transport(self) -> httpx.BaseTransport:
        """A sync transport for `httpx.Client` or `httpx2.Client` that routes delivery URLs
        (`https://*.blob.vercel-storage.com/...`) to this emulator over http, Host kept."""
        return _DeliveryTransport(self)

    def delivery_async_transport(self) -> httpx.AsyncBaseTransport:
        """The async counterpart of `delivery_transport()`."""
        return _AsyncDeliveryTransport(self)

    def env(self) -> dict[str, str]:
        """Environment variables that point the SDKs at this emulator."""
        return {
            "VERCEL_BLOB_API_URL": self.url,
            "NEXT_PUBLIC_VERCEL_BLOB_API_URL": self.url,
            "BLOB_READ_WRITE_TOKEN": self.token,
        }

    def sdk_session(self, *, token: str | None = None) -> Any:
        """`vercel.api.session(...)` wired to this emulator for the *sync* SDK: explicit
        base URL and credentials, and downloads routed by `delivery_transport()`."""
        import vercel.api
        from vercel.blob.sync import BlobCredentials, SyncBlobServiceOptions

        creds = BlobCredentials(token or self.token, self.store_id)
        options = SyncBlobServiceOptions(base_url=self.url, credentials_factory=lambda: creds)
        client_module = httpx2 if httpx2 is not None else httpx
        return vercel.api.session(
            service_options=[options],
            httpx_client_factory=lambda: client_module.Client(transport=self.delivery_transport()),
        )

    def delivery_url(self, pathname: str, access: str = "public") -> str:
        return delivery_url(self.store_id, access, pathname)

    def browser_url(self, url_or_pathname: str) -> str:
        """An http URL on this emulator (`/_delivery/...`) a local browser can load."""
        pathname, access = self._resolve_target(url_or_pathname)
        if access is None:
            meta = self._index.get(pathname)
            access = meta["access"] if meta else "public"
        return f"{self.url}/_delivery/{access}/{quote(pathname, safe='/')}"

    # ---- inspection --------------------------------------------------------------------

    def objects(self) -> dict[str, bytes]:
        """pathname -> content of every stored blob."""
        with self._lock:
            return {p: self._content_path(p).read_bytes() for p in self._index}

    def metadata(self, pathname: str) -> dict[str, Any] | None:
        with self._lock:
            meta = self._index.get(pathname)
            return dict(meta) if meta else None

    def add_object(
        self,
        pathname: str,
        data: bytes,
        *,
        access: str = "public",
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """Seed a blob directly (overwrites); returns the put-result JSON."""
        pathname = _validate_pathname(pathname)
        with self._lock:
            meta = self._write_blob(
                pathname,
                access=access,
                content_type=content_type or _guess_content_type(pathname),
                max_age=DEFAULT_CACHE_MAX_AGE,
                data=data,
            )
        return self._put_result(meta)

    def clear(self) -> None:
        """Delete every blob, pending multipart upload and record."""
        with self._lock:
            for pathname in list(self._index):
                self._delete_blob(pathname)
            for upload_id in list(self._uploads):
                self._drop_upload(upload_id)
            self.requests.clear()
            self.callbacks.clear()

    def wait_for_callbacks(self, timeout: float = 10.0) -> list[CallbackDelivery]:
        """Block until every scheduled upload-completed callback has been sent."""
        deadline = time.monotonic() + timeout
        with self._callbacks_done:
            while self._pending_callbacks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._pending_callbacks} callback(s) still pending")
                self._callbacks_done.wait(remaining)
            return list(self.callbacks)

    def resend_callback(self, index: int = -1) -> CallbackDelivery:
        """Re-POST an earlier callback byte-identically (synchronously); returns the new
        delivery, which is also appended to `callbacks`."""
        original = self.callbacks[index]
        delivery = CallbackDelivery(
            url=original.url, headers=dict(original.headers), body=original.body
        )
        self._post_callback(delivery)
        with self._lock:
            self.callbacks.append(delivery)
        return delivery

    # ---- storage -----------------------------------------------------------------------

    def _blob_base(self, pathname: str) -> Path:
        digest = hashlib.sha256(pathname.encode("utf-8")).hexdigest()
        return self.root / "blobs" / digest[:2] / digest

    def _content_path(self, pathname: str) -> Path:
        return self._blob_base(pathname).with_suffix(".bin")

    def _meta_path(self, pathname: str) -> Path:
        return self._blob_base(pathname).with_suffix(".json")

    def _load_index(self) -> None:
        blobs = self.root / "blobs"
        if not blobs.is_dir():
            return
        for meta_file in blobs.glob("*/*.json"):
            try:
                meta = json.loads(meta_file.read_text("utf-8"))
                if meta_file.with_suffix(".bin").is_file():
                    self._index[meta["pathname"]] = meta
            except (OSError, ValueError, KeyError):
                log.warning("blob emulator: skipping unreadable %s", meta_file)

    def _write_blob(
        self,
        pathname: str,
        *,
        access: str,
        content_type: str,
        max_age: int,
        data: bytes | None = None,
        source_file: Path | None = None,
        parts: list[Path] | None = None,
    ) -> dict[str, Any]:
        """Store content (caller holds the lock). Exactly one of data/source_file/parts."""
        base = self._blob_base(pathname)
        base.parent.mkdir(parents=True, exist_ok=True)
        tmp = base.with_name(base.name + f".{secrets.token_hex(4)}.tmp")
        digest = hashlib.sha256()
        size = 0
        with open(tmp, "wb") as out:
            if data is not None:
                out.write(data)
                digest.update(data)
                size = len(data)
            else:
                for src in [source_file] if source_file is not None else parts or []:
                    with open(src, "rb") as f:
                        while chunk := f.read(1024 * 1024):
                            out.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
        os.replace(tmp, base.with_suffix(".bin"))
        meta = {
            "pathname": pathname,
            "access": access,
            "size": size,
            "contentType": content_type,
            "cacheControlMaxAge": max_age,
            "uploadedAt": _now_iso(),
            "etag": f'"{digest.hexdigest()}"',
        }
        meta_tmp = base.with_name(base.name + f".{secrets.token_hex(4)}.json.tmp")
        meta_tmp.write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
        os.replace(meta_tmp, base.with_suffix(".json"))
        self._index[pathname] = meta
        return meta

    def _delete_blob(self, pathname: str) -> None:
        self._index.pop(pathname, None)
        for path in (self._content_path(pathname), self._meta_path(pathname)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _drop_upload(self, upload_id: str) -> None:
        self._uploads.pop(upload_id, None)
        shutil.rmtree(self.root / "mpu" / upload_id, ignore_errors=True)

    # ---- JSON shapes -------------------------------------------------------------------

    def _urls(self, meta: dict[str, Any]) -> tuple[str, str]:
        url = delivery_url(self.store_id, meta["access"], meta["pathname"])
        return url, url + "?download=1"

    def _put_result(self, meta: dict[str, Any]) -> dict[str, Any]:
        url, download = self._urls(meta)
        return {
            "url": url,
            "downloadUrl": download,
            "pathname": meta["pathname"],
            "contentType": meta["contentType"],
            "contentDisposition": _content_disposition(meta["pathname"], "attachment"),
            "etag": meta["etag"],
        }

    def _cache_control(self, meta: dict[str, Any]) -> str:
        scope = "private" if meta["access"] == "private" else "public"
        return f"{scope}, max-age={meta['cacheControlMaxAge']}"

    def _head_result(self, meta: dict[str, Any]) -> dict[str, Any]:
        url, download = self._urls(meta)
        return {
            "url": url,
            "downloadUrl": download,
            "pathname": meta["pathname"],
            "size": meta["size"],
            "uploadedAt": meta["uploadedAt"],
            "contentType": meta["contentType"],
            "contentDisposition": _content_disposition(meta["pathname"], "attachment"),
            "cacheControl": self._cache_control(meta),
            "etag": meta["etag"],
        }

    def _list_entry(self, meta: dict[str, Any]) -> dict[str, Any]:
        url, download = self._urls(meta)
        return {
            "url": url,
            "downloadUrl": download,
            "pathname": meta["pathname"],
            "size": meta["size"],
            "uploadedAt": meta["uploadedAt"],
            "etag": meta["etag"],
        }

    # ---- target resolution -------------------------------------------------------------

    def _resolve_target(self, value: str) -> tuple[str, str | None]:
        """pathname or delivery URL -> (pathname, access from the URL or None)."""
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value):
            parts = urlsplit(value)
            host = (parts.hostname or "").lower()
            if not host.endswith(DELIVERY_DOMAIN):
                raise _bad_request(f"Invalid URL: {value}")
            labels = host[: -len(DELIVERY_DOMAIN)].split(".")
            if len(labels) != 2 or labels[1] not in ("public", "private"):
                raise _bad_request(f"Invalid URL: {value}")
            if labels[0] != self.store_id.lower():
                raise _not_found()
            return _validate_pathname(unquote(parts.path)), labels[1]
        return _validate_pathname(value), None

    def _lookup(self, value: str) -> dict[str, Any]:
        pathname, access = self._resolve_target(value)
        meta = self._index.get(pathname)
        if meta is None or (access is not None and meta["access"] != access):
            raise _not_found()
        return meta

    # ---- callbacks ---------------------------------------------------------------------

    def _schedule_callback(self, token_payload: dict[str, Any], result: dict[str, Any]) -> None:
        completed = token_payload.get("onUploadCompleted")
        if not isinstance(completed, dict) or not completed.get("callbackUrl"):
            return
        tp = completed.get("tokenPayload")
        body = _js_json(
            {
                "type": "blob.upload-completed",
                "payload": {"blob": result, "tokenPayload": tp if tp is not None else None},
            }
        )
        signature = hmac.new(self.token.encode(), body, hashlib.sha256).hexdigest()
        delivery = CallbackDelivery(
            url=str(completed["callbackUrl"]),
            headers={"content-type": "application/json", "x-vercel-signature": signature},
            body=body,
        )
        with self._callbacks_done:
            self._pending_callbacks += 1
        with self._lock:
            self.callbacks.append(delivery)
        threading.Thread(target=self._run_callback, args=(delivery,), daemon=True).start()

    def _run_callback(self, delivery: CallbackDelivery) -> None:
        try:
            self._post_callback(delivery)
        finally:
            with self._callbacks_done:
                self._pending_callbacks -= 1
                self._callbacks_done.notify_all()

    @staticmethod
    def _post_callback(delivery: CallbackDelivery) -> None:
        try:
            response = httpx.post(
                delivery.url,
                content=delivery.body,
                headers=delivery.headers,
                timeout=CALLBACK_TIMEOUT,
            )
            delivery.status = response.status_code
            delivery.response_body = response.content
        except Exception as exc:  # recorded for inspection
            delivery.error = f"{type(exc).__name__}: {exc}"
            log.warning("blob emulator: callback to %s failed: %s", delivery.url, exc)


# --------------------------------------------------------------------------------------------
# HTTP handler


class _Handler(BaseHTTPRequestHandler):
    emulator: BlobEmulator
    protocol_version = "HTTP/1.1"
    server_version = "VercelBlobEmulator/1"

    # -- plumbing -------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("blob emulator: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _body_chunks(self) -> Iterator[bytes]:
        """The raw request body (Content-Length or chunked), in pieces."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        remaining = int(self.headers.get("content-length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1024 * 1024))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    def _read_body(self) -> bytes:
        if self._body is None:
            self._body = b"".join(self._body_chunks())
            self._body_done = True
        return self._body

    def _drain_body(self) -> None:
        """Discard an unread body so the client sees the response, not a reset."""
        if self._body_done:
            return
        kept: bytearray | None = bytearray()
        try:
            for chunk in self._body_chunks():
                if kept is not None and len(kept) + len(chunk) <= RECORDED_BODY_LIMIT:
                    kept += chunk
                else:
                    kept = None
            self._body_done = True
            self._body = bytes(kept) if kept is not None else None
        except OSError:
            self.close_connection = True

    def _dispatch(self) -> None:
        emu = self.emulator
        self._body: bytes | None = None
        self._body_done = False
        self._recorded = False
        self._status = 0
        if emu.latency:
            time.sleep(emu.latency)
        parts = self._parts = urlsplit(self.path)
        query = self._query = {
            k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()
        }
        host = (self.headers.get("host") or "").rsplit(":", 1)[0].lower()
        try:
            if self.command == "OPTIONS":
                self._preflight()
            elif _is_delivery_host(host):
                self._delivery_by_host(host, parts.path, query)
            elif parts.path.startswith("/_delivery/"):
                self._delivery_local(parts.path, query)
            else:
                self._api(parts.path, query)
        except (_ApiError, ClientTokenError) as err:
            self._drain_body()
            self._error(err.status, err.code, err.message)
        except Exception as exc:  # reported as the service would
            log.exception("blob emulator: internal error")
            if self._status:  # the response had already started: just drop the connection
                self.close_connection = True
            else:
                self._drain_body()
                self._error(500, "internal_server_error", f"{type(exc).__name__}: {exc}")
        finally:
            self._drain_body()  # keep the connection usable for the next request
            self._record()

    def _record(self) -> None:
        """Append this request to `emulator.requests` (once, before the response goes out)."""
        if self._recorded:
            return
        self._recorded = True
        body = self._body
        emu = self.emulator
        with emu._lock:
            emu.requests.append(
                RecordedRequest(
                    method=self.command,
                    path=self._parts.path,
                    query=self._query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    status=self._status,
                    body=body if body is None or len(body) <= RECORDED_BODY_LIMIT else None,
                )
            )

    def _cors_headers(self) -> dict[str, str]:
        return {
            "access-control-allow-origin": self.headers.get("origin") or "*",
            "access-control-expose-headers": "*",
            "vary": "origin",
        }

    def _preflight(self) -> None:
        headers = self._cors_headers() | {
            "access-control-allow-methods": "GET, HEAD, PUT, POST, DELETE, OPTIONS",
            "access-control-allow-headers": self.headers.get("access-control-request-headers")
            or "*",
            "access-control-max-age": "86400",
            "content-length": "0",
        }
        self._start(204, headers)

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self._status = status
        self._record()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _json(self, status: int, obj: Any) -> None:
        body = _js_json(obj)
        headers = self._cors_headers() | {
            "content-type": "application/json; charset=utf-8",
            "content-length": str(len(body)),
            "cache-control": "no-store",
        }
        self._start(status, headers)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"error": {"code": code, "message": message}})

    # -- auth -----------------------------------------------------------------------------

    def _bearer(self) -> str | None:
        value = self.headers.get("authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def _authenticate(self) -> dict[str, Any] | None:
        """None for the read-write token, the client-token payload for a client token."""
        emu = self.emulator
        token = self._bearer()
        if token is not None and hmac.compare_digest(token.encode(), emu.token.encode()):
            return None
        if token is not None and token.startswith(CLIENT_TOKEN_PREFIX):
            return verify_client_token(token, emu.token, int(time.time() * 1000))
        raise _ApiError(
            403, "forbidden", "Access denied, please provide a valid token for this resource."
        )

    # -- API ------------------------------------------------------------------------------

    def _api(self, path: str, query: dict[str, str]) -> None:
        path = path.removeprefix("/api/blob")
        route = path.rstrip("/")
        method = self.command
        if route not in ("", "/delete", "/mpu", "/rename"):
            raise _ApiError(404, "not_found", f"Unknown endpoint: {method} {path}")
        client = self._authenticate()
        if client is not None and not (
            (route == "" and method == "PUT" and "fromUrl" not in query) or route == "/mpu"
        ):
            raise _ApiError(
                403, "client_token_not_allowed", "Client tokens can only be used to upload"
            )
        if route == "" and method == "PUT":
            if "fromUrl" in query:
                self._copy(query)
            else:
                self._put(query, client)
        elif route == "" and method in ("GET", "HEAD"):
            if "url" in query:
                self._head(query)
            else:
                self._list(query)
        elif route == "/delete" and method == "POST":
            self._delete()
        elif route == "/rename" and method == "POST":
            self._rename(query)
        elif route == "/mpu" and method == "POST":
            self._mpu(query, client)
        else:
            raise _ApiError(405, "bad_request", f"Method {method} not allowed on {path or '/'}")

    def _access(self) -> str:
        access = (self.headers.get("x-vercel-blob-access") or "public").strip()
        if access not in ("public", "private"):
            raise _bad_request('access must be "public" or "private"')
        return access

    def _put_options(
        self, raw_pathname: str | None, client: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Options shared by put, copy and multipart create (token values win)."""
        h = self.headers
        pathname = _validate_pathname(raw_pathname)
        opts: dict[str, Any] = {
            "pathname": pathname,
            "access": self._access(),
            "content_type": h.get("x-content-type") or None,
            "if_match": h.get("x-if-match") or None,
        }
        if client is None:
            opts["random_suffix"] = _header_bool(h.get("x-add-random-suffix"), False)
            opts["allow_overwrite"] = _header_bool(h.get("x-allow-overwrite"), False)
            opts["max_age"] = _parse_max_age(h.get("x-cache-control-max-age"))
        else:
            opts["random_suffix"] = bool(client.get("addRandomSuffix"))
            opts["allow_overwrite"] = bool(client.get("allowOverwrite"))
            age = client.get("cacheControlMaxAge")
            opts["max_age"] = max(age, MIN_CACHE_MAX_AGE) if isinstance(age, int) else None
            opts["if_match"] = client.get("ifMatch") or None
        return opts

    def _final_pathname(self, opts: dict[str, Any]) -> str:
        """Apply the random suffix and the overwrite / if-match rules (lock held)."""
        emu = self.emulator
        pathname = opts["pathname"]
        if opts["random_suffix"]:
            pathname = _with_random_suffix(pathname)
        existing = emu._index.get(pathname)
        if opts["if_match"] is not None:
            if existing is None or _strip_etag(existing["etag"]) != _strip_etag(opts["if_match"]):
                raise _ApiError(412, "precondition_failed", "The blob was modified (ETag mismatch)")
        elif existing is not None and not opts["allow_overwrite"]:
            raise _bad_request(_EXISTS_MESSAGE)
        return pathname

    def _put(self, query: dict[str, str], client: dict[str, Any] | None) -> None:
        emu = self.emulator
        opts = self._put_options(query.get("pathname"), client)
        content_type = opts["content_type"] or _guess_content_type(opts["pathname"])
        if client is not None:
            check_client_upload(
                client, pathname=opts["pathname"], content_type=content_type, size=None
            )
            declared = self.headers.get("content-length")
            if declared and declared.isdigit():
                check_client_upload(
                    client, pathname=opts["pathname"], content_type=None, size=int(declared)
                )
        data = self._read_body()
        if client is not None:
            size = len(data)
            check_client_upload(client, pathname=opts["pathname"], content_type=None, size=size)
        with emu._lock:
            pathname = self._final_pathname(opts)
            meta = emu._write_blob(
                pathname,
                access=opts["access"],
                content_type=content_type,
                max_age=opts["max_age"] or DEFAULT_CACHE_MAX_AGE,
                data=data,
            )
            result = emu._put_result(meta)
        if client is not None:  # registered before answering, so wait_for_callbacks sees it
            emu._schedule_callback(client, result)
        self._json(200, result)

    def _copy(self, query: dict[str, str]) -> None:
        emu = self.emulator
        self._read_body()
        opts = self._put_options(query.get("pathname"), None)
        with emu._lock:
            source = emu._lookup(query["fromUrl"])
            if opts["if_match"] is not None and _strip_etag(source["etag"]) != _strip_etag(
                opts["if_match"]
            ):
                raise _ApiError(
                    412, "precondition_failed", "The source blob was modified (ETag mismatch)"
                )
            opts["if_match"] = None
            pathname = self._final_pathname(opts)
            meta = emu._write_blob(
                pathname,
                access=opts["access"],
                content_type=opts["content_type"] or source["contentType"],
                max_age=opts["max_age"] or source["cacheControlMaxAge"],
                source_file=emu._content_path(source["pathname"]),
            )
            result = emu._put_result(meta)
        self._json(200, result)

    def _rename(self, query: dict[str, str]) -> None:
        emu = self.emulator
        self._read_body()
        opts = self._put_options(query.get("pathname"), None)
        with emu._lock:
            source = emu._lookup(query.get("fromUrl", ""))
            pathname = self._final_pathname(opts | {"if_match": None})
            if pathname == source["pathname"]:
                result = emu._put_result(source)
            else:
                meta = emu._write_blob(
                    pathname,
                    access=source["access"],
                    content_type=opts["content_type"] or source["contentType"],
                    max_age=opts["max_age"] or source["cacheControlMaxAge"],
                    source_file=emu._content_path(source["pathname"]),
                )
                emu._delete_blob(source["pathname"])
                result = emu._put_result(meta)
        self._json(200, result)

    def _head(self, query: dict[str, str]) -> None:
        emu = self.emulator
        with emu._lock:
            meta = emu._lookup(query["url"])
            result = emu._head_result(meta)
        self._json(200, result)

    def _list(self, query: dict[str, str]) -> None:
        emu = self.emulator
        try:
            limit = int(query.get("limit") or MAX_LIST_LIMIT)
        except ValueError:
            raise _bad_request("limit must be an integer") from None
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise _bad_request(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        prefix = query.get("prefix") or ""
        folded = query.get("mode") == "folded"
        after = _decode_cursor(query["cursor"]) if query.get("cursor") else None
        with emu._lock:
            entries: dict[str, dict[str, Any] | None] = {}  # key -> meta, or None for folders
            for pathname, meta in emu._index.items():
                if not pathname.startswith(prefix):
                    continue
                rest = pathname[len(prefix) :]
                if folded and "/" in rest:
                    entries[prefix + rest.split("/", 1)[0] + "/"] = None
                else:
                    entries[pathname] = meta
            keys = sorted(k for k in entries if after is None or k > after)
            page, more = keys[:limit], len(keys) > limit
            body: dict[str, Any] = {
                "blobs": [emu._list_entry(entries[k]) for k in page if entries[k] is not None],
                "hasMore": more,
                "cursor": _encode_cursor(page[-1]) if more else None,
            }
            if folded:
                body["folders"] = [k for k in page if entries[k] is None]
        self._json(200, body)

    def _delete(self) -> None:
        emu = self.emulator
        try:
            payload = json.loads(self._read_body() or b"{}")
            urls = payload["urls"]
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise _bad_request('body must be JSON {"urls": [...]}') from None
        if_match = self.headers.get("x-if-match")
        with emu._lock:
            pathnames = []
            for url in urls:
                try:
                    pathnames.append(emu._lookup(url)["pathname"])
                except _ApiError as err:
                    if err.status != 404:
                        raise
            if if_match and len(urls) == 1 and pathnames:
                meta = emu._index[pathnames[0]]
                if _strip_etag(meta["etag"]) != _strip_etag(if_match):
                    raise _ApiError(
                        412, "precondition_failed", "The blob was modified (ETag mismatch)"
                    )
            for pathname in pathnames:
                emu._delete_blob(pathname)
        self._json(200, {})

    # -- multipart ------------------------------------------------------------------------

    def _mpu(self, query: dict[str, str], client: dict[str, Any] | None) -> None:
        action = (self.headers.get("x-mpu-action") or "").strip()
        if action == "create":
            self._mpu_create(query, client)
        elif action == "upload":
            self._mpu_upload(client)
        elif action == "complete":
            self._mpu_complete(client)
        else:
            raise _bad_request("x-mpu-action must be create, upload or complete")

    def _mpu_create(self, query: dict[str, str], client: dict[str, Any] | None) -> None:
        emu = self.emulator
        self._read_body()
        opts = self._put_options(query.get("pathname"), client)
        content_type = opts["content_type"] or _guess_content_type(opts["pathname"])
        if client is not None:
            check_client_upload(
                client, pathname=opts["pathname"], content_type=content_type, size=None
            )
        with emu._lock:
            pathname = self._final_pathname(opts)
            upload_id = secrets.token_urlsafe(24)
            (emu.root / "mpu" / upload_id).mkdir(parents=True, exist_ok=True)
            emu._uploads[upload_id] = {
                "key": pathname,
                "opts": opts | {"content_type": content_type},
                "parts": {},
                "client": client,
            }
        self._json(200, {"key": pathname, "uploadId": upload_id})

    def _upload_for(self, client: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        emu = self.emulator
        upload_id = self.headers.get("x-mpu-upload-id") or ""
        key = unquote(self.headers.get("x-mpu-key") or "")
        upload = emu._uploads.get(upload_id)
        if upload is None or upload["key"] != key:
            raise _bad_request("Multipart upload not found (check x-mpu-key and x-mpu-upload-id)")
        if (client is None) != (upload["client"] is None):
            raise _ApiError(403, "forbidden", "Token does not match the multipart upload")
        return upload_id, upload

    def _mpu_upload(self, client: dict[str, Any] | None) -> None:
        emu = self.emulator
        try:
            number = int(self.headers.get("x-mpu-part-number") or "")
        except ValueError:
            raise _bad_request("x-mpu-part-number must be an integer") from None
        if not 1 <= number <= MAX_PARTS:
            raise _bad_request(f"x-mpu-part-number must be between 1 and {MAX_PARTS}")
        with emu._lock:
            upload_id, upload = self._upload_for(client)
        data = self._read_body()
        if not data:
            raise _bad_request("a multipart part cannot be empty")
        etag = hashlib.sha256(data).hexdigest()
        part_file = emu.root / "mpu" / upload_id / f"{number}.part"
        with emu._lock:
            if emu._uploads.get(upload_id) is not upload:
                raise _bad_request("Multipart upload not found")
            if client is not None:
                sizes = {n: s for n, (_, s) in upload["parts"].items()} | {number: len(data)}
                check_client_upload(
                    upload["client"],
                    pathname=upload["opts"]["pathname"],
                    content_type=None,
                    size=sum(sizes.values()),
                )
            part_file.write_bytes(data)
            upload["parts"][number] = (etag, len(data))
        self._json(200, {"etag": etag})

    def _mpu_complete(self, client: dict[str, Any] | None) -> None:
        emu = self.emulator
        try:
            parts = json.loads(self._read_body() or b"[]")
            numbers = [int(p["partNumber"]) for p in parts]
            etags = [str(p["etag"]) for p in parts]
        except (ValueError, KeyError, TypeError):
            raise _bad_request('body must be JSON [{"partNumber": 1, "etag": "..."}]') from None
        if not parts:
            raise _bad_request("a multipart upload needs at least one part")
        if numbers != sorted(set(numbers)):
            raise _bad_request("parts must be listed once each, in ascending partNumber order")
        with emu._lock:
            upload_id, upload = self._upload_for(client)
            files = []
            for i, (number, etag) in enumerate(zip(numbers, etags, strict=True)):
                stored = upload["parts"].get(number)
                if stored is None or _strip_etag(stored[0]) != _strip_etag(etag):
                    raise _bad_request(f"part {number} was not uploaded or its etag differs")
                if i < len(numbers) - 1 and stored[1] < MIN_PART_SIZE:
                    raise _bad_request(
                        f"part {number} is smaller than 5 MiB; only the last part may be"
                    )
                files.append(emu.root / "mpu" / upload_id / f"{number}.part")
            opts = upload["opts"]
            if upload["client"] is not None:
                total = sum(upload["parts"][n][1] for n in numbers)
                check_client_upload(
                    upload["client"], pathname=opts["pathname"], content_type=None, size=total
                )
            pathname = upload["key"]
            existing = emu._index.get(pathname)
            if existing is not None and not opts["allow_overwrite"] and not opts["if_match"]:
                raise _bad_request(_EXISTS_MESSAGE)
            meta = emu._write_blob(
                pathname,
                access=opts["access"],
                content_type=opts["content_type"],
                max_age=opts["max_age"] or DEFAULT_CACHE_MAX_AGE,
                parts=files,
            )
            result = emu._put_result(meta)
            emu._drop_upload(upload_id)
        if upload["client"] is not None:
            emu._schedule_callback(upload["client"], result)
        self._json(200, result)

    # -- delivery -------------------------------------------------------------------------

    def _delivery_by_host(self, host: str, path: str, query: dict[str, str]) -> None:
        emu = self.emulator
        labels = host[: -len(DELIVERY_DOMAIN)].split(".")
        if self.command not in ("GET", "HEAD"):
            raise _ApiError(405, "bad_request", "Only GET and HEAD are allowed on delivery URLs")
        if len(labels) != 2 or labels[0] != emu.store_id.lower():
            raise _ApiError(404, "not_found", "The requested blob does not exist")
        self._deliver(labels[1], unquote(path.removeprefix("/")), query, allow_query_token=False)

    def _delivery_local(self, path: str, query: dict[str, str]) -> None:
        if self.command not in ("GET", "HEAD"):
            raise _ApiError(405, "bad_request", "Only GET and HEAD are allowed")
        access, _, rest = path.removeprefix("/_delivery/").partition("/")
        self._deliver(access, unquote(rest), query, allow_query_token=True)

    def _deliver(
        self, access: str, pathname: str, query: dict[str, str], *, allow_query_token: bool
    ) -> None:
        emu = self.emulator
        not_found = _ApiError(404, "not_found", "The requested blob does not exist")
        if access not in ("public", "private") or not pathname:
            raise not_found
        if access == "private":
            token = self._bearer() or (query.get("token") if allow_query_token else None)
            if token is None or not hmac.compare_digest(token.encode(), emu.token.encode()):
                raise _ApiError(
                    403, "forbidden", "Access denied, please provide a valid token for this blob."
                )
        with emu._lock:
            meta = emu._index.get(pathname)
            if meta is None or meta["access"] != access:
                raise not_found
            meta = dict(meta)
            try:
                handle = open(emu._content_path(pathname), "rb")  # noqa: SIM115 - closed below
            except FileNotFoundError:
                raise not_found from None
        with handle:
            self._send_file(meta, handle, download=query.get("download") == "1")

    def _send_file(self, meta: dict[str, Any], handle: Any, *, download: bool) -> None:
        size = meta["size"]
        kind = "attachment" if download else "inline"
        headers = self._cors_headers() | {
            "content-type": meta["contentType"],
            "etag": meta["etag"],
            "last-modified": _http_date(meta["uploadedAt"]),
            "cache-control": self.emulator._cache_control(meta),
            "content-disposition": _content_disposition(meta["pathname"], kind),
            "accept-ranges": "bytes",
            "x-content-type-options": "nosniff",
        }
        inm = self.headers.get("if-none-match")
        if inm and any(_strip_etag(t) == _strip_etag(meta["etag"]) for t in inm.split(",")):
            self._start(304, headers | {"content-length": "0"})
            return
        start, end, status = 0, size - 1, 200
        range_header = self.headers.get("range")
        if range_header and size:
            match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", range_header)
            if match and (match.group(1) or match.group(2)):
                first, last = match.group(1), match.group(2)
                if first:
                    start, end = int(first), min(int(last), size - 1) if last else size - 1
                else:
                    start, end = max(size - int(last), 0), size - 1
                if start > end or start >= size:
                    self._start(
                        416, headers | {"content-range": f"bytes */{size}", "content-length": "0"}
                    )
                    return
                status = 206
                headers["content-range"] = f"bytes {start}-{end}/{size}"
        length = max(end - start + 1, 0)
        self._start(status, headers | {"content-length": str(length)})
        if self.command == "HEAD" or not length:
            return
        handle.seek(start)
        remaining = length
        for chunk in _read_chunks(handle, remaining):
            self.wfile.write(chunk)


def _read_chunks(handle: Any, remaining: int) -> Iterator[bytes]:
    while remaining > 0:
        chunk = handle.read(min(_CHUNK, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk
