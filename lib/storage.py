"""Where selfies, ZIPs and weights live: Vercel Blob, S3 (lib/storage_s3.py) or a local folder.

Objects are referred to by key (the Blob pathname); URLs are only handed to browsers and to
Replicate, never fetched from user input.
"""

import hashlib
import logging
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import quote

from lib.errors import BadGateway, NotFound
from lib.settings import Settings, is_loopback_url

logger = logging.getLogger(__name__)


CHUNK_SIZE = 64 * 1024
# Multipart parts must be at least 5 MiB (except the last); the minimum keeps the part read
# into memory to be sent small.
PART_SIZE = 5 * 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    key: str
    url: str
    size: int
    content_type: str
    sha256: str | None = None


class Storage(Protocol):
    """What every backend offers; keys are relative paths like `users/<hash>/selfies/x.jpg`."""

    backend: str

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        """Store bytes under key (overwriting)."""
        ...

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        """Store a stream without holding it whole in memory; the result carries its sha256."""
        ...

    def read(self, key: str) -> bytes:
        """The whole object (404 object_missing when absent)."""
        ...

    def stream(self, key: str) -> Iterator[bytes]:
        """The object in chunks (404 object_missing when absent)."""
        ...

    def delete(self, keys: list[str]) -> None:
        """Remove objects; missing ones are ignored."""
        ...


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup a stream into pieces of `size` bytes (the last may be shorter). Bytes wait for
    their piece to fill in a temporary file, not in memory; a piece is read back to be sent."""
    with tempfile.TemporaryFile() as pending:
        for chunk in chunks:
            pending.write(chunk)
            while pending.tell() >= size:
                yield _first(pending, size)
        pending.seek(0)
        if rest := pending.read():
            yield rest


def _first(pending: IO[bytes], size: int) -> bytes:
    """The file's first `size` bytes; what followed them is moved to its start."""
    pending.seek(0)
    piece, rest = pending.read(size), pending.read()
    pending.seek(0)
    pending.truncate()
    pending.write(rest)
    return piece


def put_if_small(
    storage: Storage, key: str, chunks: Iterable[bytes], content_type: str
) -> tuple[StoredObject | None, Iterator[bytes]]:
    """Store a stream that fits in one part with a plain put; else (None, its parts)."""
    pieces = rechunk(chunks, PART_SIZE)
    first = next(pieces, b"")
    if len(first) < PART_SIZE:  # the whole object fits in one request
        stored = storage.put(key, first, content_type)
        return replace(stored, sha256=hashlib.sha256(first).hexdigest()), iter(())
    return None, chain([first], pieces)


class LocalStorage:
    """Files under a folder, served by the dev server at `<public base>/_local_storage/<key>`."""

    backend = "local"

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self.base_url = base_url.rstrip("/")

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return StoredObject(key, f"{self.base_url}/{quote(key)}", len(data), content_type)

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with path.open("wb") as file:
            for chunk in chunks:
                file.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        url = f"{self.base_url}/{quote(key)}"
        return StoredObject(key, url, size, content_type, digest.hexdigest())

    def read(self, key: str) -> bytes:
        return b"".join(self.stream(key))

    def stream(self, key: str) -> Iterator[bytes]:
        try:
            file = self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(f"Stored object {key} does not exist", code="object_missing") from None
        with file:
            while chunk := file.read(CHUNK_SIZE):
                yield chunk

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key escapes the storage root: {key}")
        return path


class BlobStorage:
    """Vercel Blob through the official SDK, public access (Replicate must fetch the ZIP)."""

    backend = "blob"

    def __init__(self, token: str, api_url: str | None) -> None:
        self.token = token
        self.api_url = api_url

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        from vercel.blob.sync import put_blob

        with self._session(), self._errors():
            result = put_blob(
                key, data, access="public", content_type=content_type, allow_overwrite=True
            )
        return StoredObject(key, result.url, len(data), content_type)

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        from vercel.blob.sync import multipart_upload_blob

        stored, parts = put_if_small(self, key, chunks, content_type)
        if stored:
            return stored
        digest, size = hashlib.sha256(), 0
        with self._session(), self._errors():
            upload = multipart_upload_blob(
                key, access="public", content_type=content_type, allow_overwrite=True
            )
            with upload:
                for part in parts:
                    digest.update(part)
                    size += len(part)
                    upload.upload_part(part)
        return StoredObject(key, upload.result.url, size, content_type, digest.hexdigest())

    def read(self, key: str) -> bytes:
        return b"".join(self.stream(key))

    def stream(self, key: str) -> Iterator[bytes]:
        # A public blob is a plain GET of its delivery URL (what the SDK's stream_blob does),
        # through one shared client: the SDK builds a client and TLS context (~40 ms of CPU
        # under the GIL) for every call, which dominated fetching a training set's photos.
        import httpx

        store = self.token.split("_")[3].lower()
        url = f"https://{store}.public.blob.vercel-storage.com/{quote(key, safe='/')}"
        try:
            with self._downloads.stream("GET", url) as response:
                if response.status_code == 404:
                    raise NotFound("Stored object does not exist", code="object_missing")
                response.raise_for_status()
                yield from response.iter_bytes(CHUNK_SIZE)
        except httpx.HTTPError as error:
            logger.warning("blob download failed type=%s", type(error).__name__)
            raise BadGateway("Vercel Blob failed", code="storage_error") from error

    @cached_property
    def _downloads(self):
        """One connection pool for this instance's downloads (httpx clients are thread-safe)."""
        import httpx

        if is_loopback_url(self.api_url):
            return _loopback_client(self.api_url)
        return httpx.Client(timeout=httpx.Timeout(30, connect=10))

    def list_uploads(self, prefix: str) -> list[tuple[str, datetime]]:
        """(pathname, upload time) of each object starting with `prefix` (client uploads
        whose callback may never have come)."""
        from vercel.blob.sync import query_blobs

        with self._session(), self._errors():
            blobs = query_blobs(prefix=prefix, page_size=1000)
            return [(blob.pathname, blob.uploaded_at) for blob in blobs]

    def delete(self, keys: list[str]) -> None:
        from vercel.blob.sync import delete_blob

        if keys:
            with self._session(), self._errors():
                delete_blob(keys)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        from vercel.blob.errors import BlobError, BlobNotFoundError

        try:
            yield
        except BlobNotFoundError:
            raise NotFound("Stored object does not exist", code="object_missing") from None
        except BlobError as error:
            logger.warning("blob error type=%s", type(error).__name__)
            raise BadGateway("Vercel Blob failed", code="storage_error") from error

    def _session(self):
        from vercel.api import session
        from vercel.blob.models import BlobCredentials
        from vercel.blob.sync import SyncBlobServiceOptions

        credentials = BlobCredentials(token=self.token, store_id=self.token.split("_")[3])
        options = SyncBlobServiceOptions(
            base_url=self.api_url, credentials_factory=lambda: credentials
        )
        if not is_loopback_url(self.api_url):
            return session(service_options=[options])
        # The local Blob emulator serves deliveries too: send *.blob.vercel-storage.com there.
        return session(
            service_options=[options], httpx_client_factory=lambda: _loopback_client(self.api_url)
        )


def _loopback_client(emulator_url: str):
    """An httpx client that sends Blob delivery hosts to a local emulator, Host header kept."""
    import httpx

    emulator = httpx.URL(emulator_url)

    class LoopbackDelivery(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.host.endswith(".blob.vercel-storage.com"):
                request.url = request.url.copy_with(
                    scheme=emulator.scheme, host=emulator.host, port=emulator.port
                )
            return super().handle_request(request)

    return httpx.Client(transport=LoopbackDelivery())


def get_storage(settings: Settings) -> Storage:
    """The backend chosen by STORAGE_BACKEND (or the presence of BLOB_READ_WRITE_TOKEN)."""
    if settings.storage_backend == "s3":
        from lib.storage_s3 import S3Storage

        return S3Storage(settings)
    if settings.storage_backend == "blob":
        assert settings.blob_read_write_token  # settings refuse blob without a token
        return BlobStorage(settings.blob_read_write_token, settings.blob_api_url)
    base = (settings.public_base_url or "http://127.0.0.1:8000") + "/_local_storage"
    return LocalStorage(settings.local_storage_dir, base)
