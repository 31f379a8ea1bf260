"""`ReplicateEmulator`: lifecycle, test controls and HTTP dispatch."""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from dev.replicate_emulator.jobs import _JobRoutes
from dev.replicate_emulator.models import _ModelRoutes
from dev.replicate_emulator.protocol import (
    _DEFAULT_DETAILS,
    DEFAULT_WEBHOOK_SECRET,
    NOT_FOUND,
    TERMINAL,
    TRAINER_MODEL,
    TRAINER_VERSION,
    ApiError,
    Delivery,
    RecordedRequest,
    _default_error,
    _Job,
    _Message,
    _Request,
    _version_json,
)
from dev.replicate_emulator.server import _ROUTES, _handler_class
from dev.replicate_emulator.walker import _Walker
from dev.replicate_emulator.webhooks import _encode, _WebhookSender


class ReplicateEmulator(_ModelRoutes, _JobRoutes, _Walker, _WebhookSender):
    """A threaded loopback HTTP server that behaves like api.replicate.com."""

    page_size = 100

    def __init__(
        self,
        *,
        token: str = "r8_dev_token",
        owner: str = "sselfie-dev",
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        auto_walk: bool = True,
        starting_seconds: float = 2.0,
        processing_seconds: float = 20.0,
        log_interval: float = 0.5,
        latency: float = 0.0,
        webhook_retry_delays: tuple[float, ...] = (1, 2, 4, 8, 15, 30),
    ) -> None:
        self.token, self.owner, self.webhook_secret = token, owner, webhook_secret
        self.auto_walk, self.latency = auto_walk, latency
        self.starting_seconds, self.processing_seconds = starting_seconds, processing_seconds
        self.log_interval, self.webhook_retry_delays = log_interval, webhook_retry_delays
        self.trainer_version = TRAINER_VERSION
        self.url = ""
        self.drop_webhooks = False
        # The local stack's router: lets tests wait for work a webhook leaves after its answer.
        self.receiver_idle: Callable[[float], bool] | None = None
        self.requests: list[RecordedRequest] = []
        self.deliveries: list[Delivery] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._send_cv = threading.Condition()
        self._outbox: dict[str, deque[_Message]] = {}
        self._draining: set[str] = set()
        self._pending = 0
        self._stopping = threading.Event()
        self._failures: list[dict[str, Any]] = []
        self._delays: list[dict[str, Any]] = []
        self._mute = False
        self._models: dict[str, dict[str, Any]] = {}
        self._versions: dict[str, list[dict[str, Any]]] = {}
        self._taken: set[str] = set()
        self._jobs: dict[str, _Job] = {}
        self._files: dict[str, tuple[str, bytes]] = {}
        self._seq = 0
        self._server: ThreadingHTTPServer | None = None
        self._http = httpx.Client(timeout=5.0, follow_redirects=False, trust_env=False)
        self._add_trainer_model()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0) -> ReplicateEmulator:
        """Bind 127.0.0.1 and serve in daemon threads."""
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_class(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving, walking and retrying."""
        self._stopping.set()
        with self._lock:
            for job in self._jobs.values():
                job.halt.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        self._http.close()

    def __enter__(self) -> ReplicateEmulator:
        """Start serving."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop serving."""
        self.stop()

    # --- test controls -----------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` matching requests with a problem+json `status`."""
        extra = {"retry-after": "30", "ratelimit-remaining": "0", "ratelimit-reset": "30"}
        rule = {
            "method": method.upper(),
            "pattern": re.compile(path_pattern),
            "status": status,
            "detail": detail or _DEFAULT_DETAILS.get(status, "Request failed"),
            "headers": {**(extra if status == 429 else {}), **(headers or {})},
            "times": times,
        }
        with self._lock:
            self._failures.append(rule)

    def delay_next(self, method: str, path_pattern: str, seconds: float, *, times: int = 1) -> None:
        """Hold the next `times` matching requests `seconds` before handling them: a client
        that stops waiting sooner never sees the answer, yet the request still takes effect."""
        rule = {
            "method": method.upper(),
            "pattern": re.compile(path_pattern),
            "seconds": seconds,
            "times": times,
        }
        with self._lock:
            self._delays.append(rule)

    def set_fields(self, id: str, **fields: Any) -> None:
        """Overwrite fields of an object as an upstream bug would (any JSON value, any text)."""
        with self._lock:
            self._jobs[id].data.update(fields)

    def advance(
        self,
        training_or_prediction_id: str,
        status: str,
        *,
        step: int | None = None,
        error: str | None = None,
        send: bool = True,
    ) -> dict[str, Any]:
        """Move an object to `status` by hand and send the matching webhooks."""
        if status not in {"processing", *TERMINAL}:
            raise ValueError(f"cannot advance to {status!r}")
        with self._lock:
            job = self._jobs[training_or_prediction_id]
            if job.data["status"] in TERMINAL:
                raise ValueError(f"{job.data['id']} is already {job.data['status']}")
            self._mute = not send
            try:
                self._advance(job, status, step, error)
            finally:
                self._mute = False
            return self._render(job)

    def _advance(self, job: _Job, status: str, step: int | None, error: str | None) -> None:
        """advance() body; caller holds the lock."""
        if status == "canceled":
            self._cancel(job)
        elif status == "aborted":
            self._finish(job, "aborted")
        elif job.invalid and job.data["status"] == "starting":
            self._fail(job, error or job.invalid)
        elif status == "failed":
            self._fail(job, error or _default_error(job.kind))
        else:
            lines = self._begin(job) if job.data["status"] == "starting" else []
            if status == "succeeded":
                self._succeed(job, lines, throttle=False)
            else:
                lines += self._progress_lines(job, job.step if step is None else step)
                self._append_logs(job, lines, throttle=False)

    def publish_trainer_version(self, openapi_schema: dict[str, Any]) -> str:
        """Publish a new version of the trainer with this schema (it becomes the latest)."""
        vid = secrets.token_hex(32)
        with self._lock:
            self._versions[TRAINER_MODEL].append(_version_json(vid, openapi_schema))
        return vid

    def withdraw_trainer_version(self, vid: str) -> None:
        """Remove a version published with publish_trainer_version."""
        with self._lock:
            versions = self._versions[TRAINER_MODEL]
            versions[:] = [v for v in versions if v["id"] != vid]

    def get_object(self, id: str) -> dict[str, Any]:
        """Current JSON of a training or prediction, as GET returns it."""
        with self._lock:
            return self._render(self._jobs[id])

    def forget(self, id: str) -> None:
        """Make an object disappear (GET answers 404)."""
        with self._lock:
            self._jobs.pop(id).halt.set()

    def resend(self, id: str, event: str = "completed", *, delivery_index: int = -1) -> Delivery:
        """Re-POST an earlier delivery byte-identically (same webhook-id and body)."""
        with self._lock:
            earlier = [d for d in self.deliveries if d.object_id == id and d.event == event]
            original = earlier[delivery_index]
            attempt = 1 + sum(d.webhook_id == original.webhook_id for d in self.deliveries)
        return self._post(original.url, original.headers, original.body, event, id, attempt)

    def wait_for_deliveries(self, timeout: float = 5.0) -> bool:
        """Block until queued webhook sends and scheduled retries are done (and, when the
        receiver told us how, until it has finished the work it does after answering)."""
        with self._send_cv:
            sent = self._send_cv.wait_for(lambda: self._pending == 0, timeout)
        return sent and (self.receiver_idle is None or self.receiver_idle(timeout))

    # --- HTTP dispatch -----------------------------------------------------------------------

    def _dispatch(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: (status, headers, body)."""
        parts = urlsplit(target)
        path, query = parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self.requests.append(RecordedRequest(method, path, query, headers, body))
        if self.latency:
            time.sleep(self.latency)
        time.sleep(self._delay_for(method, path))
        limits = {"ratelimit-remaining": "2999", "ratelimit-reset": "1"}
        try:
            self._check_failures(method, path)
            if path.startswith("/delivery/") and method in ("GET", "HEAD"):
                return self._serve_file(path)
            self._check_auth(headers)
            if raw and body is None:
                raise ApiError(400, "The request body is not valid JSON.")
            status, payload = self._route(method, path, query, headers, body)
        except ApiError as exc:
            problem = {"content-type": "application/problem+json", **limits, **exc.headers}
            return exc.status, problem, json.dumps(exc.body).encode()
        if payload is None:
            return status, limits, b""
        return status, {"content-type": "application/json", **limits}, _encode(payload)

    def _delay_for(self, method: str, path: str) -> float:
        """Seconds the next programmed delay that matches holds this request."""
        with self._lock:
            for rule in self._delays:
                if rule["method"] == method and rule["pattern"].search(path):
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        self._delays.remove(rule)
                    return rule["seconds"]
        return 0.0

    def _check_failures(self, method: str, path: str) -> None:
        """Raise the next programmed failure that matches, if any."""
        with self._lock:
            for rule in self._failures:
                if rule["method"] == method and rule["pattern"].search(path):
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        self._failures.remove(rule)
                    error = ApiError(rule["status"], rule["detail"])
                    error.headers = rule["headers"]
                    raise error

    def _check_auth(self, headers: dict[str, str]) -> None:
        """Accept `Bearer <token>` or `Token <token>`."""
        scheme, _, value = headers.get("authorization", "").partition(" ")
        valid = scheme.lower() in ("bearer", "token") and hmac.compare_digest(
            value.strip().encode(), self.token.encode()
        )
        if not valid:
            raise ApiError(401, _DEFAULT_DETAILS[401], "Unauthenticated")

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        """Find and run the handler for a /v1 path."""
        allowed = False
        for verb, pattern, name in _ROUTES:
            match = pattern.fullmatch(path)
            if match and verb == method:
                handler = getattr(self, name)
                with self._lock:
                    return handler(_Request(path, query, headers, body), **match.groupdict())
            allowed = allowed or bool(match)
        if allowed:
            raise ApiError(405, "Method not allowed")
        raise ApiError(404, NOT_FOUND)

    def _serve_file(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """Serve an output file like replicate.delivery does."""
        with self._lock:
            found = self._files.get(path)
        if not found:
            return 404, {"content-type": "text/plain"}, b"Not Found"
        return 200, {"content-type": found[0]}, found[1]
