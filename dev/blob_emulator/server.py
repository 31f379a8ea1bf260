"""The HTTP handler: plumbing, recording, CORS, authentication and responses."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from dev.blob_emulator.api import _ApiRoutes
from dev.blob_emulator.client_tokens import ClientTokenError, verify_client_token
from dev.blob_emulator.delivery import _DeliveryRoutes, _is_delivery_host
from dev.blob_emulator.multipart import _MultipartRoutes
from dev.blob_emulator.protocol import (
    CLIENT_TOKEN_PREFIX,
    RECORDED_BODY_LIMIT,
    RecordedRequest,
    _ApiError,
    _js_json,
)

if TYPE_CHECKING:
    from dev.blob_emulator.emulator import BlobEmulator


log = logging.getLogger(__name__)


class _Handler(_ApiRoutes, _MultipartRoutes, _DeliveryRoutes, BaseHTTPRequestHandler):
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
