"""Selfie uploads: checked, stored, and recorded as the caller's own."""

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePath

import psycopg

from lib.adapters.storage.base import Storage, StoredObject
from lib.adapters.storage.keys import user_prefix
from lib.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from lib.intake import pending_uploads
from lib.intake.images import ImageInfo, check_images
from lib.settings import Settings
from lib.web.http import Request

EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/heic": ".heic",
}
MAX_FILES_PER_REQUEST = 50
# A multipart upload's pending row outlives the request that stores and records the object.
PENDING_MINUTES = 5
_UPLOAD_COLUMNS = (
    "id, url, content_type, size, width, height, faces, face_share, usable, unusable_reason"
)


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
    faces: int | None  # None only for uploads recorded before the face check existed
    faceShare: float | None
    usable: bool | None
    reason: str | None  # why not usable: "no face found", "2 faces", "face too small", "blurry: …"


def selfies_prefix(user_id: str) -> str:
    """The storage folder every selfie of this user lives in (ends with a slash)."""
    return f"{user_prefix(user_id)}/selfies/"


def incoming_files(request: Request) -> list[IncomingFile]:
    """The multipart parts named `files`; 415 for any other body."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("Send multipart/form-data with parts named files")
    return [IncomingFile(name, data) for name, data in request.files("files")]


def save_uploads(
    conn: psycopg.Connection,
    *,
    user_id: str,
    files: list[IncomingFile],
    storage: Storage,
    settings: Settings,
) -> list[Upload]:
    """Check every file first, then store and record them all; any file that is not an image
    changes nothing. A photo failing the face check is stored and recorded as unusable, saying
    why. The same bytes uploaded again by the same user answer the upload they already made."""
    if not files:
        raise BadRequest("Send one or more images in parts named files", code="no_files")
    if len(files) > MAX_FILES_PER_REQUEST:
        raise BadRequest(
            f"Send at most {MAX_FILES_PER_REQUEST} files at once", code="too_many_files"
        )
    for file in files:
        check_size(file.filename, len(file.data), settings.upload_max_bytes)
    checked = check_images(
        ((file.filename, file.data) for file in files), min_face_share=settings.face_min_share
    )
    pairs = zip(files, checked, strict=True)
    return [_store(conn, user_id, file, info, storage) for file, info in pairs]


def check_size(filename: str, size: int, max_bytes: int) -> None:
    """413 file_too_large for a file over the limit."""
    if size > max_bytes:
        raise PayloadTooLarge(
            f"{filename} is larger than {max_bytes // (1024 * 1024)} MB", code="file_too_large"
        )


def _store(conn, user_id: str, file: IncomingFile, info: ImageInfo, storage: Storage) -> Upload:
    digest = hashlib.sha256(file.data).hexdigest()
    # Named by content: a repeated upload rewrites the same object and meets its own row.
    key = f"{selfies_prefix(user_id)}{digest[:32]}{EXTENSIONS[info.content_type]}"
    # Written down before any byte is stored: if the upload dies between storing the object
    # and recording it, deletion and the cron still find the object by its pathname.
    expires_at = datetime.now(UTC) + timedelta(minutes=PENDING_MINUTES)
    pending = pending_uploads.record(conn, user_id=user_id, pathname=key, expires_at=expires_at)
    stored = storage.put(key, file.data, info.content_type)
    upload = record_upload(
        conn,
        user_id=user_id,
        stored=stored,
        filename=file.filename,
        info=info,
        sha256=digest,
        backend=storage.backend,
    )
    pending_uploads.forget(conn, pending)
    return upload


def record_upload(
    conn: psycopg.Connection,
    *,
    user_id: str,
    stored: StoredObject,
    filename: str,
    info: ImageInfo,
    sha256: str,
    backend: str,
) -> Upload:
    """The selfie_uploads row for a stored object: inserted once, found again after that."""
    faces = info.faces
    values = {
        "user_id": user_id,
        "backend": backend,
        "key": stored.key,
        "url": stored.url,
        "filename": safe_filename(filename),
        "content_type": info.content_type,
        "size": stored.size,
        "width": info.width,
        "height": info.height,
        "sha256": sha256,
        "faces": faces.faces if faces else None,
        "face_share": faces.share if faces else None,
        "usable": faces.usable if faces else None,
        "reason": faces.reason if faces else None,
    }
    # UNIQUE (url) makes repeats (a re-upload, a callback delivered twice) meet the first row;
    # it is read in a second statement, whose snapshot sees a row committed meanwhile.
    row = (
        conn.execute(
            """
        INSERT INTO selfie_uploads
            (user_id, storage_backend, storage_key, url, filename, content_type, size,
             width, height, sha256, faces, face_share, usable, unusable_reason)
        VALUES (%(user_id)s, %(backend)s, %(key)s, %(url)s, %(filename)s, %(content_type)s,
                %(size)s, %(width)s, %(height)s, %(sha256)s, %(faces)s, %(face_share)s,
                %(usable)s, %(reason)s)
        ON CONFLICT (url) DO NOTHING
        RETURNING """
            + _UPLOAD_COLUMNS,
            values,
        ).fetchone()
        or conn.execute(
            f"SELECT {_UPLOAD_COLUMNS} FROM selfie_uploads WHERE url = %s", (stored.url,)
        ).fetchone()
    )
    return Upload(
        str(row["id"]),
        row["url"],
        row["content_type"],
        row["size"],
        row["width"],
        row["height"],
        row["faces"],
        row["face_share"],
        row["usable"],
        row["unusable_reason"],
    )


def safe_filename(name: str) -> str:
    """The base name a browser sent, trimmed to something safe to show back."""
    return PurePath(name or "image").name[:200] or "image"


def as_json(uploads: list[Upload]) -> dict:
    """The upload endpoint's answer."""
    return {"urls": [upload.url for upload in uploads], "uploads": [asdict(u) for u in uploads]}
