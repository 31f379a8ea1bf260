"""Delivery URLs, the httpx transports that reach the emulator, and blob downloads."""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import httpx

from dev.blob_emulator.protocol import (
    _CHUNK,
    DELIVERY_DOMAIN,
    _ApiError,
    _content_disposition,
    _http_date,
    _strip_etag,
)

if TYPE_CHECKING:
    from dev.blob_emulator.emulator import BlobEmulator

try:  # the fork used by the official SDK; optional for the emulator itself
    import httpx2
except ImportError:  # pragma: no cover - vercel-blob always installs it
    httpx2 = None  # type: ignore[assignment]


def delivery_url(store_id: str, access: str, pathname: str) -> str:
    """The delivery URL the service returns for a blob (same recipe as the SDKs)."""
    return f"https://{store_id.lower()}.{access}{DELIVERY_DOMAIN}/{quote(pathname, safe='/')}"


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


class _DeliveryRoutes:
    """Handler routes that serve blob contents (mixed into the HTTP handler)."""

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
