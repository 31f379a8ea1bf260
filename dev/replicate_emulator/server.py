"""The route table and the keep-alive HTTP handler bound to one emulator."""

from __future__ import annotations

import re
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dev.replicate_emulator.emulator import ReplicateEmulator

_M = r"/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_ROUTES = [
    (verb, re.compile(pattern), name)
    for verb, pattern, name in [
        ("GET", r"/v1/account", "_get_account"),
        ("GET", r"/v1/webhooks/default/secret", "_get_secret"),
        ("GET", r"/v1/hardware", "_get_hardware"),
        ("POST", r"/v1/models", "_create_model"),
        ("GET", _M, "_get_model"),
        ("DELETE", _M, "_delete_model"),
        ("GET", _M + r"/versions", "_list_versions"),
        ("GET", _M + r"/versions/(?P<vid>[^/]+)", "_get_version"),
        ("DELETE", _M + r"/versions/(?P<vid>[^/]+)", "_delete_version"),
        ("POST", _M + r"/versions/(?P<vid>[^/]+)/trainings", "_create_training"),
        ("POST", _M + r"/predictions", "_create_model_prediction"),
        ("GET", r"/v1/trainings", "_list_trainings"),
        ("GET", r"/v1/trainings/(?P<id>[^/]+)", "_get_training"),
        ("POST", r"/v1/trainings/(?P<id>[^/]+)/cancel", "_cancel_training"),
        ("GET", r"/v1/predictions", "_list_predictions"),
        ("POST", r"/v1/predictions", "_create_prediction"),
        ("GET", r"/v1/predictions/(?P<id>[^/]+)", "_get_prediction"),
        ("POST", r"/v1/predictions/(?P<id>[^/]+)/cancel", "_cancel_prediction"),
    ]
]


def _handler_class(emulator: ReplicateEmulator) -> type[BaseHTTPRequestHandler]:
    """A keep-alive request handler bound to one emulator."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are separate writes; Nagle + delayed ACK would add ~40 ms each.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            """Answer one request."""
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, out_headers, body = emulator._dispatch(self.command, self.path, headers, raw)
            try:
                self._answer(status, out_headers, body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client stopped waiting (see delay_next)

        def _answer(self, status: int, out_headers: dict[str, str], body: bytes) -> None:
            """Write the status line, headers and body."""
            self.send_response(status)
            for name, value in out_headers.items():
                self.send_header(name, value)
            if status not in (204, 304):
                self.send_header("content-length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and status not in (204, 304):
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_QUERY = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the console quiet."""
            pass

    return Handler
