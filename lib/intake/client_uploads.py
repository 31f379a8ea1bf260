"""The @vercel/blob client-upload protocol: browsers send selfies straight to Vercel Blob.

1. The signed-in browser asks for a token: `{"type": "blob.generate-client-token",
   "payload": {"pathname", "clientPayload", "multipart"}}` → a client token limited to photo
   content types, the upload size cap and one pathname under the user's own selfies folder.
2. The browser PUTs the file to Blob with that token (so no 4.5 MB function body limit).
3. Blob POSTs `{"type": "blob.upload-completed", "payload": {"blob", "tokenPayload"}}` with
   `x-vercel-signature` = hex HMAC-SHA256(key = BLOB_READ_WRITE_TOKEN, raw body). The photo is
   then checked like a multipart upload and recorded once.

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
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import psycopg

from lib.adapters.storage.base import Storage, StoredObject
from lib.errors import ApiError, BadRequest, ConfigError, PayloadTooLarge, Unauthorized
from lib.intake.images import check_images
from lib.intake.uploads import check_size, record_upload, selfies_prefix
from lib.settings import Settings
from lib.web.http import JSON_BODY_LIMIT, Request, read_json

logger = logging.getLogger(__name__)

TOKEN_REQUEST = "blob.generate-client-token"
UPLOAD_COMPLETED = "blob.upload-completed"
CALLBACK_PATH = "/api/training/upload"
ALLOWED_CONTENT_TYPES = ["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"]
TOKEN_LIFETIME_MS = 60 * 60 * 1000  # handleUpload's own default
MAX_PATHNAME_LENGTH = 950  # Blob's limit


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


def upload_rules(user_id: str, settings: Settings) -> dict[str, Any]:
    """What a browser needs to call upload(): the pathname prefix it must use, types, size."""
    return {
        "pathnamePrefix": selfies_prefix(user_id),
        "allowedContentTypes": ALLOWED_CONTENT_TYPES,
        "maximumSizeInBytes": settings.upload_max_bytes,
    }


def issue_token(
    event: BlobEvent, *, user_id: str, settings: Settings, now_ms: int | None = None
) -> dict[str, str]:
    """Answer a token request: a client token for one photo under the caller's own folder."""
    rw_token = _read_write_token(settings)
    pathname = event.payload.get("pathname")
    prefix = selfies_prefix(user_id)
    if not isinstance(pathname, str) or not _is_selfie_pathname(pathname, prefix):
        raise BadRequest(
            f"pathname must be a file name under {prefix} (e.g. {prefix}selfie.jpg)",
            code="invalid_pathname",
        )
    callback_url = settings.callback_url(CALLBACK_PATH)
    if callback_url is None:
        raise ConfigError(
            "PUBLIC_BASE_URL environment variable is not set, so Blob cannot report uploads"
        )
    owner = {"userId": user_id, "filename": PurePosixPath(pathname).name}
    options = {
        "allowedContentTypes": ALLOWED_CONTENT_TYPES,
        "maximumSizeInBytes": settings.upload_max_bytes,
        "addRandomSuffix": True,  # two photos called IMG_0001.HEIC must not collide
        "tokenPayload": json.dumps(owner, separators=(",", ":")),
    }
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    token = client_token(
        rw_token,
        pathname=pathname,
        options=options,
        callback_url=callback_url,
        valid_until=now_ms + TOKEN_LIFETIME_MS,
    )
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
    """Blob's signed callback: check the uploaded photo and record it (once, however often
    the callback comes) with its face verdict; a file that is no image we accept is deleted."""
    verify_signature(event.raw, signature, _read_write_token(settings))
    user_id, filename, pathname, url = _completed_upload(event.payload)
    data = storage.read(pathname)
    try:
        check_size(filename, len(data), settings.upload_max_bytes)
        [info] = check_images([(filename, data)], min_face_share=settings.face_min_share)
    except ApiError as refusal:
        storage.delete([pathname])
        logger.warning("client upload deleted pathname=%s code=%s", pathname, refusal.code)
        raise
    stored = StoredObject(pathname, url, len(data), info.content_type)
    upload = record_upload(
        conn,
        user_id=user_id,
        stored=stored,
        filename=filename,
        info=info,
        sha256=hashlib.sha256(data).hexdigest(),
        backend=storage.backend,
    )
    logger.info("client upload recorded upload=%s usable=%s", upload.id, upload.usable)
    return {"type": UPLOAD_COMPLETED, "response": "ok"}


def verify_signature(body: bytes, signature: str, rw_token: str) -> None:
    """401 invalid_signature unless signature = hex HMAC-SHA256(rw token, body)."""
    expected = hmac.new(rw_token.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise Unauthorized("The callback signature is not valid", code="invalid_signature")


def _completed_upload(payload: dict[str, Any]) -> tuple[str, str, str, str]:
    """(user id, file name, pathname, url) from a verified callback's payload."""
    blob = payload.get("blob")
    try:
        owner = json.loads(payload["tokenPayload"])
        user_id, filename = owner["userId"], owner["filename"]
        pathname, url = blob["pathname"], blob["url"]
    except (KeyError, TypeError, ValueError):
        raise BadRequest("The callback does not describe an upload", code="invalid_event") from None
    if not all(isinstance(v, str) for v in (user_id, filename, pathname, url)) or not (
        _is_selfie_pathname(pathname, selfies_prefix(user_id))
    ):
        raise BadRequest("The callback does not describe a selfie upload", code="invalid_event")
    return user_id, filename, pathname, url


def _is_selfie_pathname(pathname: str, prefix: str) -> bool:
    name = pathname[len(prefix) :] if pathname.startswith(prefix) else ""
    return name not in ("", ".", "..") and "/" not in name and len(pathname) <= MAX_PATHNAME_LENGTH


def _read_write_token(settings: Settings) -> str:
    if settings.storage_backend != "blob" or not settings.blob_read_write_token:
        raise ConfigError(
            "BLOB_READ_WRITE_TOKEN environment variable is not set (client uploads need Blob)"
        )
    return settings.blob_read_write_token


def _js_json(value: Any) -> bytes:
    """UTF-8 bytes of what JavaScript's JSON.stringify gives for these plain values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
