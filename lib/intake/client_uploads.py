"""The @vercel/blob client-upload protocol: browsers send selfies straight to Vercel Blob.

1. The signed-in browser asks for a token: `{"type": "blob.generate-client-token",
   "payload": {"pathname", "clientPayload", "multipart"}}`, the pathname being a bare file name
   (`upload(file.name, ...)`, as v0 and Vercel's docs write it) or one under the caller's own
   selfies folder. The token is for exactly that pathname, with Blob's random suffix, photo
   content types, the size cap and a short life; it is written down as a pending upload first.
2. The browser PUTs the file to Blob with that token (so no 4.5 MB function body limit).
3. Blob POSTs `{"type": "blob.upload-completed", "payload": {"blob", "tokenPayload"}}` with
   `x-vercel-signature` = hex HMAC-SHA256(key = BLOB_READ_WRITE_TOKEN, raw body). The photo is
   then checked like a multipart upload and recorded once, as the pending upload's owner's.
   A start naming the URL before the callback came records it the same way.

The Python SDK cannot make client tokens, so `client_token` ports @vercel/blob 2.8.0's
`handleUpload` → `generateClientTokenFromReadWriteToken`; its output is byte-identical to the
JS SDK's for the same inputs (tests/lib/test_client_uploads.py holds the known-answer vector).
"""

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg

from lib.adapters.storage.base import Storage, StoredObject
from lib.adapters.storage.blob import public_url
from lib.errors import ApiError, BadRequest, ConfigError, PayloadTooLarge, Unauthorized
from lib.intake import pending_uploads
from lib.intake.images import check_images
from lib.intake.pending_uploads import PendingUpload
from lib.intake.uploads import Upload, check_size, record_upload, selfies_prefix
from lib.settings import Settings
from lib.web.http import JSON_BODY_LIMIT, Request, read_json

logger = logging.getLogger(__name__)

TOKEN_REQUEST = "blob.generate-client-token"
UPLOAD_COMPLETED = "blob.upload-completed"
CALLBACK_PATH = "/api/training/upload"
ALLOWED_CONTENT_TYPES = ["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"]
# Long enough for a 25 MB photo over a slow phone connection (Blob checks it on every request
# of a multipart upload), short enough that a leaked token is soon worthless.
TOKEN_LIFETIME_MS = 15 * 60 * 1000
MAX_PATHNAME_LENGTH = 950  # Blob's limit
COMPLETED = {"type": UPLOAD_COMPLETED, "response": "ok"}


@dataclass(frozen=True)
class BlobEvent:
    type: str
    payload: dict[str, Any]
    raw: bytes  # the exact body: the callback's signature covers these bytes


def read_event(request: Request) -> BlobEvent:
    """The protocol's JSON event; 400 for anything else."""
    declared = request.headers.get("content-length") or "0"
    if not declared.isdigit() or int(declared) > JSON_BODY_LIMIT:
        raise PayloadTooLarge("A client-upload event is at most 64 KB")
    body = read_json(request)
    kind, payload = body.get("type"), body.get("payload")
    if kind not in (TOKEN_REQUEST, UPLOAD_COMPLETED) or not isinstance(payload, dict):
        raise BadRequest(
            f"type must be {TOKEN_REQUEST} or {UPLOAD_COMPLETED}, with a payload object",
            code="invalid_event",
        )
    return BlobEvent(kind, payload, request.get_data())


def handle_event(
    conn: psycopg.Connection,
    event: BlobEvent,
    *,
    caller: Callable[[], str],
    signature: str,
    storage: Storage,
    settings: Settings,
) -> dict[str, str]:
    """A token request (`caller()` authenticates the user) or Blob's signed callback."""
    if event.type == TOKEN_REQUEST:
        return issue_token(conn, event, user_id=caller(), settings=settings)
    return record_completed(conn, event, signature=signature, storage=storage, settings=settings)


def upload_rules(user_id: str, settings: Settings) -> dict[str, Any]:
    """What a browser may send upload(): a bare file name, or one under this prefix."""
    return {
        "pathnamePrefix": selfies_prefix(user_id),
        "allowedContentTypes": ALLOWED_CONTENT_TYPES,
        "maximumSizeInBytes": settings.upload_max_bytes,
    }


def issue_token(
    conn: psycopg.Connection,
    event: BlobEvent,
    *,
    user_id: str,
    settings: Settings,
    now_ms: int | None = None,
) -> dict[str, str]:
    """Answer a token request: a client token for one photo, written down as pending first."""
    rw_token = _read_write_token(settings)
    pathname = event.payload.get("pathname")
    prefix = selfies_prefix(user_id)
    if not isinstance(pathname, str) or not _is_selfie_pathname(pathname, prefix):
        raise BadRequest(
            f"pathname must be a file name (e.g. selfie.jpg), or one under {prefix}",
            code="invalid_pathname",
        )
    callback_url = settings.callback_url(CALLBACK_PATH)
    if callback_url is None:
        raise ConfigError(
            "PUBLIC_BASE_URL environment variable is not set, so Blob cannot report uploads"
        )
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    valid_until = now_ms + TOKEN_LIFETIME_MS
    expires_at = datetime.fromtimestamp(valid_until / 1000, UTC)
    pending_id = pending_uploads.record(
        conn, user_id=user_id, pathname=pathname, expires_at=expires_at
    )
    owner = {"pendingId": pending_id, "filename": PurePosixPath(pathname).name}
    options = {
        "allowedContentTypes": ALLOWED_CONTENT_TYPES,
        "maximumSizeInBytes": settings.upload_max_bytes,
        "addRandomSuffix": True,  # two photos called IMG_0001.HEIC must not collide
        "allowOverwrite": False,
        "tokenPayload": json.dumps(owner, separators=(",", ":")),
    }
    token = client_token(
        rw_token,
        pathname=pathname,
        options=options,
        callback_url=callback_url,
        valid_until=valid_until,
    )
    logger.info("client upload token issued pending=%s", pending_id)
    return {"type": TOKEN_REQUEST, "clientToken": token}


def client_token(
    rw_token: str,
    *,
    pathname: str,
    options: dict[str, Any],
    callback_url: str,
    valid_until: int,
) -> str:
    """`vercel_blob_client_<store>_` + base64(hex HMAC-SHA256(rw token, payloadB64) + "." +
    payloadB64), payloadB64 = base64(JSON of {...options, pathname, onUploadCompleted,
    validUntil}) — key order and spacing as JavaScript's spread and JSON.stringify give them."""
    payload = {
        **options,
        "pathname": pathname,
        "onUploadCompleted": {
            "callbackUrl": callback_url,
            "tokenPayload": options.get("tokenPayload"),
        },
        "validUntil": valid_until,
    }
    payload_b64 = base64.b64encode(_js_json(payload)).decode()
    signature = hmac.new(rw_token.encode(), payload_b64.encode(), hashlib.sha256).hexdigest()
    secured = base64.b64encode(f"{signature}.{payload_b64}".encode()).decode()
    return f"vercel_blob_client_{rw_token.split('_')[3]}_{secured}"


def record_completed(
    conn: psycopg.Connection,
    event: BlobEvent,
    *,
    signature: str,
    storage: Storage,
    settings: Settings,
) -> dict[str, str]:
    """Blob's signed callback: check the uploaded photo and record it as its pending upload's
    owner's (once, however often the callback comes); a file that is no image we accept, or
    one whose owner deleted the account or whose pending upload expired, is deleted."""
    verify_signature(event.raw, signature, _read_write_token(settings))
    pending_id, pathname, url = _completed_upload(event.payload)
    pending = pending_uploads.find(conn, pending_id)
    if pending is None or pending.abandoned:
        return _unclaimed(conn, pending, pathname=pathname, url=url, storage=storage)
    if not pending_uploads.made_from(pending.pathname, pathname):
        raise BadRequest("The callback does not describe its token's upload", code="invalid_event")
    upload = _record(conn, pending, pathname, url, storage=storage, settings=settings)
    logger.info("client upload recorded upload=%s usable=%s", upload.id, upload.usable)
    return COMPLETED


def complete_waiting(
    conn: psycopg.Connection,
    *,
    user_id: str,
    urls: list[str],
    storage: Storage,
    settings: Settings,
) -> None:
    """Record the caller's client uploads among `urls` whose callback has not come yet (it
    can come after upload() resolves): a URL counts as the caller's only when the caller
    alone holds a live token it could have been stored with."""
    if settings.storage_backend != "blob" or not settings.blob_read_write_token:
        return  # client uploads need Blob
    recorded = conn.execute("SELECT url FROM selfie_uploads WHERE url = ANY(%s)", (urls,))
    waiting = set(urls) - {row["url"] for row in recorded.fetchall()}
    for url in sorted(waiting):
        pathname = unquote(urlsplit(url).path.removeprefix("/"))
        if url != public_url(settings.blob_read_write_token, pathname):
            continue  # not the URL Blob gave for a file of this store
        holders = pending_uploads.claimants(conn, pathname, storage=storage)
        if holders and {holder.user_id for holder in holders} == {user_id}:
            upload = _record(conn, holders[0], pathname, url, storage=storage, settings=settings)
            logger.info("client upload recorded at start upload=%s", upload.id)


def verify_signature(body: bytes, signature: str, rw_token: str) -> None:
    """401 invalid_signature unless signature = hex HMAC-SHA256(rw token, body)."""
    expected = hmac.new(rw_token.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise Unauthorized("The callback signature is not valid", code="invalid_signature")


def _record(
    conn: psycopg.Connection,
    pending: PendingUpload,
    pathname: str,
    url: str,
    *,
    storage: Storage,
    settings: Settings,
) -> Upload:
    """Check the stored photo like a multipart upload and record it as the pending owner's;
    a refused file is deleted."""
    filename = PurePosixPath(pending.pathname).name
    data = storage.read(pathname)
    try:
        check_size(filename, len(data), settings.upload_max_bytes)
        [info] = check_images([(filename, data)], min_face_share=settings.face_min_share)
    except ApiError as refusal:
        storage.delete([pathname])
        logger.warning("client upload deleted pending=%s code=%s", pending.id, refusal.code)
        raise
    return record_upload(
        conn,
        user_id=pending.user_id,
        stored=StoredObject(pathname, url, len(data), info.content_type),
        filename=filename,
        info=info,
        sha256=hashlib.sha256(data).hexdigest(),
        backend=storage.backend,
    )


def _unclaimed(
    conn: psycopg.Connection,
    pending: PendingUpload | None,
    *,
    pathname: str,
    url: str,
    storage: Storage,
) -> dict[str, str]:
    """A callback whose pending upload the cron swept (it came hours late) or whose owner
    deleted the account: the file is deleted unless it was recorded before."""
    if conn.execute("SELECT 1 FROM selfie_uploads WHERE url = %s", (url,)).fetchone():
        return COMPLETED
    storage.delete([pathname])
    logger.warning("client upload without a live token deleted abandoned=%s", pending is not None)
    return COMPLETED
    storage.delete([pathname])
    if pending is not None:
        pending_uploads.forget(conn, pending.id)
    logger.warning("client upload without a live token deleted abandoned=%s", pending is not None)
    return COMPLETED


def _completed_upload(payload: dict[str, Any]) -> tuple[str, str, str]:
    """(pending upload id, stored pathname, url) from a verified callback's payload."""
    blob = payload.get("blob")
    try:
        pending_id = json.loads(payload["tokenPayload"])["pendingId"]
        pathname, url = blob["pathname"], blob["url"]
        uuid.UUID(pending_id)
        if not isinstance(pathname, str) or not isinstance(url, str):
            raise TypeError
    except (AttributeError, KeyError, TypeError, ValueError):
        raise BadRequest("The callback does not describe an upload", code="invalid_event") from None
    return pending_id, pathname, url


def _is_selfie_pathname(pathname: str, prefix: str) -> bool:
    """A bare file name, or a file name directly under the caller's own selfies folder."""
    name = pathname.removeprefix(prefix)
    return (
        name not in ("", ".", "..")
        and "/" not in name
        and name.isprintable()
        and len(pathname) <= MAX_PATHNAME_LENGTH
    )


def _read_write_token(settings: Settings) -> str:
    if settings.storage_backend != "blob" or not settings.blob_read_write_token:
        raise ConfigError(
            "BLOB_READ_WRITE_TOKEN environment variable is not set (client uploads need Blob)"
        )
    return settings.blob_read_write_token


def _js_json(value: Any) -> bytes:
    """UTF-8 bytes of what JavaScript's JSON.stringify gives for these plain values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
