"""Request/response plumbing shared by every function: one WSGI wrapper, JSON in and out.

Reading a query string, headers and a length-capped body straight from the WSGI environ keeps
the hot functions (progress, webhook) free of werkzeug, whose package import costs ~100 ms of
every cold start. Multipart bodies are parsed by werkzeug's form parser, loaded only by the
function that takes uploads.
"""

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

from lib.errors import (
    ApiError,
    BadRequest,
    ConfigError,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
)

logger = logging.getLogger(__name__)

JSON_BODY_LIMIT = 64 * 1024
CORS_REQUEST_HEADERS = "Authorization, Content-Type, Idempotency-Key"
CORS_MAX_AGE_SECONDS = 600
STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Headers(dict[str, str]):
    """Request headers with case-insensitive lookup."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)


class Request:
    """What a function reads of a WSGI request."""

    def __init__(self, environ: dict[str, Any], max_body: int) -> None:
        self.environ = environ
        self.max_body = max_body
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.path = environ.get("PATH_INFO", "/")
        self._body: bytes | None = None

    @cached_property
    def args(self) -> dict[str, str]:
        """Query parameters (the first value of each)."""
        pairs = parse_qsl(self.environ.get("QUERY_STRING", ""), keep_blank_values=True)
        return dict(reversed(pairs))

    @cached_property
    def headers(self) -> Headers:
        """Headers by lower-cased name."""
        headers = Headers()
        for key, value in self.environ.items():
            if key.startswith("HTTP_"):
                headers[key[5:].replace("_", "-").lower()] = value
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if self.environ.get(key):
                headers[key.replace("_", "-").lower()] = self.environ[key]
        return headers

    @property
    def mimetype(self) -> str:
        """The content type without parameters, lower-cased."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def get_data(self) -> bytes:
        """The raw body, refused with 413 when longer than this function accepts."""
        if self._body is None:
            length = self._content_length()
            if length > self.max_body:
                raise PayloadTooLarge("The request body is too large")
            self._body = self.environ["wsgi.input"].read(length) if length else b""
        return self._body

    def files(self, name: str) -> list[tuple[str, bytes]]:
        """The (filename, content) of each multipart part called `name`."""
        from werkzeug.exceptions import RequestEntityTooLarge
        from werkzeug.formparser import parse_form_data

        if self._content_length() > self.max_body:
            raise PayloadTooLarge("The request body is too large", code="file_too_large")
        try:
            _, _, files = parse_form_data(
                self.environ, max_content_length=self.max_body, max_form_memory_size=self.max_body
            )
        except RequestEntityTooLarge:
            raise PayloadTooLarge("The request body is too large", code="file_too_large") from None
        return [(part.filename or "image", part.read()) for part in files.getlist(name)]

    def _content_length(self) -> int:
        try:
            return max(0, int(self.environ.get("CONTENT_LENGTH") or 0))
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None


@dataclass
class Response:
    """A complete response; WSGI-callable."""

    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    later: list[Callable[[], None]] = field(default_factory=list)

    def after(self, work: Callable[[], None]) -> "Response":
        """Run `work` once this response has been sent (its failure is only logged)."""
        self.later.append(work)
        return self

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        status_line = f"{self.status} {STATUS_TEXT.get(self.status, 'Unknown')}"
        headers = [*self.headers.items(), ("Content-Length", str(len(self.body)))]
        start_response(status_line, headers)
        return _SentBody(self.body, self.later) if self.later else [self.body]


class _SentBody:
    """The body as a WSGI iterable whose close() runs the work meant for after the answer.

    Every WSGI server calls close() once the body is written: Vercel's runtime (vc_init) after
    flushing it and before it reports the invocation's end, so the instance lives until the
    work is done; `make dev`'s server and waitress likewise, after the client has the answer.
    """

    def __init__(self, body: bytes, work: list[Callable[[], None]]) -> None:
        self.body = body
        self.work = work

    def __iter__(self) -> Iterator[bytes]:
        yield self.body

    def close(self) -> None:
        for work in self.work:
            try:
                work()
            except Exception:
                logger.exception("work after the answer failed work=%s", work.__qualname__)


View = Callable[[Request], Response]


class Endpoint:
    """A WSGI app (what Vercel's Python runtime serves) around one view function."""

    def __init__(
        self,
        view: View,
        methods: Iterable[str],
        max_body: int,
        after: Callable[[], None] | None = None,
    ) -> None:
        self.view = view
        self.methods = frozenset(methods)
        self.max_body = max_body
        self.after = after

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        return self.respond(Request(environ, self.max_body))(environ, start_response)

    def respond(self, request: Request) -> Response:
        """Run the view and turn every failure into the contract's JSON error."""
        allow = ", ".join(sorted(self.methods))
        try:
            # Before the method check: a browser's CORS preflight must be answered everywhere.
            if request.method == "OPTIONS":
                response = Response(b"", 204, {"Allow": f"{allow}, OPTIONS"})
            elif request.method not in self.methods:
                raise MethodNotAllowed(f"Use {allow}", headers={"Allow": allow})
            else:
                response = self.view(request)
        except ApiError as error:
            response = error_response(error)
        except Exception:
            logger.exception("unhandled error method=%s path=%s", request.method, request.path)
            response = error_response(ApiError("Internal server error"))
        if self.after is not None:
            response.after(self.after)
        return _with_cors(response, request, allow)


def _with_cors(response: Response, request: Request, allow: str) -> Response:
    """Let the configured frontend origins read the response (every status, errors too)."""
    origins = _allowed_origins()
    if not origins:
        return response
    response.headers["Vary"] = "Origin"
    origin = request.headers.get("origin", "")
    if origin.rstrip("/").lower() not in origins:
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = allow
        response.headers["Access-Control-Allow-Headers"] = CORS_REQUEST_HEADERS
        response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
    else:
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response


def _allowed_origins() -> frozenset[str]:
    from lib.settings import get_settings

    try:
        return get_settings().cors_allowed_origins
    except ConfigError:
        return frozenset()  # the view reports the broken setting by name


def endpoint(
    view: View,
    *methods: str,
    max_body: int = JSON_BODY_LIMIT,
    after: Callable[[], None] | None = None,
) -> Endpoint:
    """Wrap a view as the module's WSGI `app` (`app = endpoint(view, "GET")`); `after` runs
    once each answer has been sent."""
    return Endpoint(view, methods, max_body, after)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response that no CDN caches."""
    payload = json.dumps(body, default=str, separators=(",", ":")).encode()
    base = {"Content-Type": "application/json", "Cache-Control": "no-store"}
    return Response(payload, status, {**base, **(headers or {})})


def error_response(error: ApiError) -> Response:
    """The contract's error body: {"error": message, "code": code}."""
    return json_response(
        {"error": error.message, "code": error.code}, status=error.status, headers=error.headers
    )


def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400/415 saying what is wrong."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Send the body as application/json", code="unsupported_media")
    try:
        body = json.loads(request.get_data() or b"null")
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, 5000-digit numbers, deep nesting
        raise BadRequest("The body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object", code="invalid_json")
    return body


def query_param(request: Request, name: str) -> str:
    """A required query parameter."""
    value = request.args.get(name, "").strip()
    if not value:
        raise BadRequest(f"The query parameter {name} is required", code="missing_parameter")
    return value


def int_param(request: Request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """An optional whole-number query parameter within [minimum, maximum]."""
    if name not in request.args:
        return default
    raw = request.args[name]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not (
        minimum <= int(raw) <= maximum
    ):
        raise BadRequest(
            f"The query parameter {name} must be a whole number from {minimum} to {maximum}",
            code="invalid_parameter",
        )
    return int(raw)
