"""Selfie uploads: checked, stored, and recorded as the caller's own."""

import hashlib
import uuid
from dataclasses import asdict, dataclass
from pathlib import PurePath

import psycopg

from lib.errors import BadRequest, PayloadTooLarge
from lib.images import inspect_image
from lib.paths import user_prefix
from lib.storage import Storage

EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/heif": ".heif",
}
MAX_FILES_PER_REQUEST = 50


@dataclass(frozen=True)
class IncomingFile:
    filename: str
    data: bytes


@dataclass(frozen=True)
class Upload:
    id: str
    url: str
    contentType: str
    size: int
    width: int
    height: int


def save_uploads(
    conn: psycopg.Connection,
    *,
    user_id: str,
    files: list[IncomingFile],
    storage: Storage,
    max_bytes: int,
) -> list[Upload]:
    """Check every file first, then store and record them all; any bad file changes nothing."""
    if not files:
        raise BadRequest("Send one or more images in parts named files", code="no_files")
    if len(files) > MAX_FILES_PER_REQUEST:
        raise BadRequest(
            f"Send at most {MAX_FILES_PER_REQUEST} files at once", code="too_many_files"
        )
    for file in files:
        if len(file.data) > max_bytes:
            raise PayloadTooLarge(
                f"{file.filename} is larger than {max_bytes // (1024 * 1024)} MB",
                code="file_too_large",
            )
    checked = [(file, inspect_image(file.data, file.filename)) for file in files]
    return [_store(conn, user_id, file, info, storage) for file, info in checked]


def _store(conn, user_id, file, info, storage: Storage) -> Upload:
    key = f"{user_prefix(user_id)}/selfies/{uuid.uuid4().hex}{EXTENSIONS[info.content_type]}"
    stored = storage.put(key, file.data, info.content_type)
    row = conn.execute(
        """
        INSERT INTO selfie_uploads
            (user_id, storage_backend, storage_key, url, filename, content_type, size,
             width, height, sha256)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        RETURNING id
        """,
        (
            user_id,
            storage.backend,
            stored.key,
            stored.url,
            safe_filename(file.filename),
            info.content_type,
            stored.size,
            info.width,
            info.height,
            hashlib.sha256(file.data).hexdigest(),
        ),
    ).fetchone()
    return Upload(
        str(row["id"]), stored.url, info.content_type, stored.size, info.width, info.height
    )


def safe_filename(name: str) -> str:
    """The base name a browser sent, trimmed to something safe to show back."""
    return PurePath(name or "image").name[:200] or "image"


def as_json(uploads: list[Upload]) -> dict:
    """The upload endpoint's answer."""
    return {"urls": [upload.url for upload in uploads], "uploads": [asdict(u) for u in uploads]}
