"""`BlobEmulator`: lifecycle, wiring helpers and inspection of a local Vercel Blob store."""

from __future__ import annotations

import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from dev.blob_emulator.client_tokens import _CallbackSender, _store_from_rw_token
from dev.blob_emulator.delivery import (
    _AsyncDeliveryTransport,
    _DeliveryTransport,
    delivery_url,
    httpx2,
)
from dev.blob_emulator.protocol import (
    DEFAULT_CACHE_MAX_AGE,
    DEFAULT_TOKEN,
    CallbackDelivery,
    RecordedRequest,
    _guess_content_type,
    _validate_pathname,
)
from dev.blob_emulator.server import _Handler
from dev.blob_emulator.store import _DiskStore


class BlobEmulator(_DiskStore, _CallbackSender):
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
