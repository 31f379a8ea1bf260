"""A local server that routes `api/**/*.py` exactly as Vercel does, plus the dev console.

Vercel's rules (reference/vercel-python-and-blob.md §1.1–1.2): files under a `_` or `.` path
segment are not functions; `api/a/b.py` answers `/api/a/b`, `/api/a/b/` and `/api/a/b.py`;
`index.py` answers its folder; a `[name]` segment matches one path segment and adds
`name=<value>` to the query. Each file is imported on its first request, by path, without its
parent packages, the way Vercel's runtime loads it.

Dev-only routes, answered only when no function matches (none exist on Vercel): `/` the console,
`/_dev/token?user=` a dev user's token, `/_dev/stack` what is real and what is simulated,
`/_dev/blob/<pathname>` an object of the simulated Blob store (whose https URLs a browser cannot
reach), `/_local_storage/<key>` an object of the `local` storage backend, `/_dev/samples/<n>.jpg`
sample selfie n (a real face photo, see dev/samples.py), `/_dev/app-events` the events the app
would receive (when `make dev` receives its own: APP_WEBHOOK_URL unset).
"""

import importlib.util
import json
import mimetypes
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from dev.tokens import issue_token

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONSOLE_PAGE = Path(__file__).with_name("console.html")
OPENAPI_DOCUMENT = PROJECT_ROOT / "openapi.json"  # written by `python -m dev.openapi`
ENTRYPOINT_NAMES = ("app", "application", "handler")
APP_EVENTS_PATH = "/_dev/app-events"
# Query values that are secrets: Vercel's protection bypass rides on webhook URLs.
SECRET_QUERY = re.compile(r"(x-vercel-protection-bypass=)[^&\s\"]*")


@dataclass
class Route:
    pattern: re.Pattern[str]
    module_name: str
    path: Path
    params: tuple[str, ...]
    _app: Callable | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wsgi_app(self) -> Callable:
        """The function's WSGI app, imported on first use (a cold start)."""
        with self._lock:
            if self._app is None:
                self._app = _load_entrypoint(self.module_name, self.path)
            return self._app


def discover_routes(root: Path = PROJECT_ROOT) -> list[Route]:
    """Every function under api/, static paths before dynamic ones as Vercel matches them."""
    routes = []
    for path in sorted((root / "api").rglob("*.py")):
        relative = path.relative_to(root).with_suffix("").as_posix()
        if re.search(r"(^|/)[_.]", relative):
            continue
        routes.append(_route(relative, path))
    return sorted(routes, key=lambda route: len(route.params))


def _route(relative: str, path: Path) -> Route:
    *folders, last = relative.split("/")
    params: list[str] = []
    parts = [_segment(segment, params) for segment in folders]
    if last == "index":
        pattern = "/".join(parts) + r"(?:/|/index|/index\.py)?"
    elif last.startswith("["):
        pattern = "/".join([*parts, _segment(last, params)])
    else:
        name = re.escape(last)
        pattern = "/".join([*parts, rf"(?:{name}/|{name}|{name}\.py)"])
    return Route(re.compile(f"^/{pattern}$"), relative.replace("/", "."), path, tuple(params))


def _segment(segment: str, params: list[str]) -> str:
    if segment.startswith("[") and segment.endswith("]"):
        params.append(segment[1:-1])
        return f"(?P<p{len(params) - 1}>[^/]+)"
    return re.escape(segment)


def _load_entrypoint(module_name: str, path: Path) -> Callable:
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ENTRYPOINT_NAMES:
        if callable(getattr(module, name, None)):
            return getattr(module, name)
    raise RuntimeError(f"{path} defines no app, application or handler")


class VercelRouter:
    """The WSGI app `make dev` and the tests serve."""

    def __init__(
        self,
        routes: list[Route],
        *,
        storage_dir: Path | None,
        token_secret: str | None,
        parts: dict[str, str] | None = None,
        blob_emulator_url: str | None = None,
        app_receiver: Callable | None = None,
    ) -> None:
        self.routes = routes
        self.app_receiver = app_receiver
        self.storage_dir = storage_dir
        self.token_secret = token_secret
        self.parts = parts or {}
        self.blob_emulator_url = blob_emulator_url
        self._busy = 0
        self._idle = threading.Condition()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        for route in self.routes:
            match = route.pattern.match(path)
            if match:
                _add_params(environ, route, match)
                with self._idle:
                    self._busy += 1
                try:
                    body = route.wsgi_app()(environ, start_response)
                except BaseException:
                    self._done()
                    raise
                return _Tracked(body, self._done)
        if path == APP_EVENTS_PATH and self.app_receiver:
            return self.app_receiver(environ, start_response)
        return self._dev_page(Request(environ))(environ, start_response)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no function is answering or doing its work after the answer."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _done(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def _dev_page(self, request: Request) -> Response:
        if request.path == "/":
            return Response(CONSOLE_PAGE.read_bytes(), mimetype="text/html")
        if request.path == "/openapi.json":
            return Response(OPENAPI_DOCUMENT.read_bytes(), mimetype="application/json")
        if request.path == "/_dev/token" and self.token_secret:
            user = request.args.get("user", "demo-user")[:100]
            return _json({"token": issue_token(self.token_secret, user), "user": user})
        if request.path.startswith("/_local_storage/") and self.storage_dir:
            return self._stored_file(unquote(request.path.removeprefix("/_local_storage/")))
        if request.path == "/_dev/stack":
            blob_proxy = "/_dev/blob/" if self.blob_emulator_url else None
            return _json({"parts": self.parts, "blobProxy": blob_proxy})
        if request.path.startswith("/_dev/blob/") and self.blob_emulator_url:
            return self._simulated_blob(request.path.removeprefix("/_dev/blob/"))
        sample = re.fullmatch(r"/_dev/samples/(\d{1,2})\.jpg", request.path)
        if sample:
            return _sample_selfie(int(sample.group(1)))
        return _json({"error": "Not found", "code": "not_found"}, 404)

    def _simulated_blob(self, pathname: str) -> Response:
        # Simulated Blob URLs (https://<store>.public.blob.vercel-storage.com/...) exist only
        # inside this process; the emulator serves the same objects to a browser at /_delivery.
        import httpx

        assert self.blob_emulator_url
        url = f"{self.blob_emulator_url}/_delivery/public/{quote(pathname, safe='/')}"
        upstream = httpx.get(url, timeout=10)
        mimetype = upstream.headers.get("content-type", "application/octet-stream")
        return Response(upstream.content, status=upstream.status_code, mimetype=mimetype)

    def _stored_file(self, key: str) -> Response:
        assert self.storage_dir
        root = self.storage_dir.resolve()
        file = (root / key).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            return _json({"error": "Not found", "code": "not_found"}, 404)
        mimetype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return Response(file.read_bytes(), mimetype=mimetype)


def _sample_selfie(index: int) -> Response:
    from dev.samples import COUNT, selfie  # scikit-image: a dev-only dependency

    if index >= COUNT:
        return _json({"error": f"There are {COUNT} samples", "code": "not_found"}, 404)
    return Response(selfie(index), mimetype="image/jpeg")


def _add_params(environ: dict, route: Route, match: re.Match[str]) -> None:
    added = "&".join(
        f"{name}={quote(match.group(f'p{index}'), safe='')}"
        for index, name in enumerate(route.params)
    )
    if added:
        query = environ.get("QUERY_STRING", "")
        environ["QUERY_STRING"] = f"{query}&{added}" if query else added


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


class _Tracked:
    """A function's body whose close() (the work after the answer included) ends its request."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self.body, self.done = body, done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            self.done()


class RedactingRequestHandler(WSGIRequestHandler):
    """The request log line, without secret query values."""

    def log(self, type: str, message: str, *args) -> None:
        redacted = [SECRET_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in args]
        super().log(type, message, *redacted)


def serve(app: Callable, port: int = 0, host: str = "127.0.0.1") -> BaseWSGIServer:
    """Serve `app` on a thread; the returned server has `.port` and `.shutdown()`."""
    server = make_server(host, port, app, threaded=True, request_handler=RedactingRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True, name="dev-server").start()
    return server
