"""Vercel Blob through the official SDK."""

import hashlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cached_property
from urllib.parse import quote

from lib.adapters.storage.base import CHUNK_SIZE, StoredObject, put_if_small
from lib.errors import BadGateway, NotFound
from lib.settings import is_loopback_url

logger = logging.getLogger(__name__)


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
