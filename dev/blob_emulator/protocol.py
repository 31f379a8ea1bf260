"""Wire-level pieces shared by the Blob emulator: limits, records, API errors, pure helpers."""

from __future__ import annotations

import base64
import json
import mimetypes
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

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
