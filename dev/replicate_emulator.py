"""Local emulator of Replicate's HTTP API (models, trainings, predictions, signed webhooks).

The official `replicate` client works against it unchanged:
`replicate.Client(api_token=emulator.token, base_url=emulator.url)`.
Run standalone with `python -m dev.replicate_emulator --port 8100`.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from dev import replicate_fixtures as fx

TRAINER_MODEL = "ostris/flux-dev-lora-trainer"
# Deliberately not a real trainer id: clients must resolve latest_version at runtime.
TRAINER_VERSION = hashlib.sha256(b"replicate-emulator:" + TRAINER_MODEL.encode()).hexdigest()
DEFAULT_WEBHOOK_SECRET = (
    "whsec_"
    + base64.b64encode(hashlib.sha256(b"sselfie-dev webhook signing key").digest()[:24]).decode()
)
NOT_FOUND = "The requested resource could not be found"
EVENTS = ("start", "output", "logs", "completed")
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
HARDWARE = [
    {"sku": "cpu", "name": "CPU"},
    {"sku": "gpu-t4", "name": "Nvidia T4 GPU"},
    {"sku": "gpu-l40s", "name": "Nvidia L40S GPU"},
    {"sku": "gpu-a100-large", "name": "Nvidia A100 (80GB) GPU"},
    {"sku": "gpu-h100", "name": "Nvidia H100 GPU"},
]
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_THROTTLED = "Request was throttled. Your rate limit resets in ~30s."
_DEFAULT_DETAILS = {
    400: "The request could not be understood.",
    401: "You did not pass a valid authentication token",
    402: "You have insufficient credit to run this model. Go to "
    "https://replicate.com/account/billing#billing to purchase credit.",
    403: "You do not have permission to perform this action.",
    404: NOT_FOUND,
    409: "The request conflicts with the current state of the resource.",
    422: "Input validation failed",
    429: _THROTTLED,
    500: "An unexpected error occurred. Please try again.",
    502: "Bad gateway. Please try again.",
    503: "Service temporarily unavailable. Please try again.",
    504: "Gateway timeout. Please try again.",
}
_INVALID_VERSION = (
    "Invalid version or not permitted",
    "The specified version does not exist (or perhaps you don't have permission to use it?)",
)


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the emulator received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass(frozen=True)
class Delivery:
    """One attempted webhook POST (status None = connection error)."""

    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None
    event: str
    object_id: str = ""
    attempt: int = 1

    @property
    def webhook_id(self) -> str:
        """The Standard Webhooks message id."""
        return self.headers["webhook-id"]


class ApiError(Exception):
    """An RFC 7807 problem answer."""

    def __init__(self, status: int, detail: str, title: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        body = {"title": title} if title else {}
        self.status, self.body = status, {**body, "detail": detail, "status": status, **extra}
        self.headers: dict[str, str] = {}


@dataclass
class _Job:
    """A training or prediction plus the emulator's private bookkeeping."""

    kind: str
    data: dict[str, Any]
    webhook: str | None
    events: frozenset[str]
    seq: int
    total: int
    destination: str = ""
    invalid: str | None = None
    step: int = -1
    created: float = field(default_factory=time.monotonic)
    started: float = 0.0
    last_logs_sent: float = 0.0
    halt: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class _Request:
    """What a route handler sees of a request."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    @property
    def fields(self) -> dict[str, Any]:
        """The JSON body if it is an object, else {}."""
        return self.body if isinstance(self.body, dict) else {}


@dataclass(frozen=True)
class _Message:
    """A queued webhook message."""

    object_id: str
    url: str
    body: bytes
    event: str
    msg_id: str


def sign(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks `v1,` signature of a body with a `whsec_` secret."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _now() -> str:
    """ISO-8601 UTC timestamp with a Z suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_id() -> str:
    """A 26-character lowercase base32 id like Replicate's."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))


def _ok(status: int | None) -> bool:
    """Whether a webhook answer counts as delivered."""
    return status is not None and 200 <= status < 300


class ReplicateEmulator:
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
        """Block until queued webhook sends and scheduled retries are done."""
        with self._send_cv:
            return self._send_cv.wait_for(lambda: self._pending == 0, timeout)

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
        content = json.dumps(payload, ensure_ascii=False).encode()
        return status, {"content-type": "application/json", **limits}, content

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

    # --- account, hardware, models -----------------------------------------------------------

    def _get_account(self, req: _Request) -> tuple[int, Any]:
        """GET /v1/account."""
        return 200, {
            "type": "user",
            "username": self.owner,
            "name": "SSELFIE Dev",
            "github_url": None,
        }

    def _get_secret(self, req: _Request) -> tuple[int, Any]:
        """GET /v1/webhooks/default/secret."""
        return 200, {"key": self.webhook_secret}

    def _get_hardware(self, req: _Request) -> tuple[int, Any]:
        """GET /v1/hardware."""
        return 200, HARDWARE

    def _add_trainer_model(self) -> None:
        """Seed ostris/flux-dev-lora-trainer with one version."""
        owner, name = TRAINER_MODEL.split("/")
        self._models[TRAINER_MODEL] = _model_json(owner, name, "public", "Fine-tune FLUX.1-dev")
        self._models[TRAINER_MODEL]["run_count"] = 412_337
        version = _version_json(TRAINER_VERSION, fx.trainer_openapi_schema())
        self._versions[TRAINER_MODEL] = [version]
        self._taken.add(TRAINER_MODEL)

    def _create_model(self, req: _Request) -> tuple[int, Any]:
        """POST /v1/models."""
        body = req.fields
        missing = [k for k in ("owner", "name", "visibility", "hardware") if not body.get(k)]
        _raise_invalid([{"field": k, "kind": "required"} for k in missing], "(root)")
        skus = [h["sku"] for h in HARDWARE]
        _raise_invalid(
            [
                {"field": k, "kind": "enum", "choices": choices}
                for k, choices in (("visibility", ["public", "private"]), ("hardware", skus))
                if body[k] not in choices
            ],
            "(root)",
        )
        if body["owner"] != self.owner:
            raise ApiError(403, f"You do not have permission to create models for {body['owner']}.")
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", str(body["name"])):
            detail = "Model names can only contain lowercase letters, numbers, dashes, "
            raise ApiError(400, detail + "underscores and periods.")
        key = f"{body['owner']}/{body['name']}"
        if key in self._taken:
            raise ApiError(409, "A model with that name and owner already exists.", "Conflict")
        extra = {k: body.get(k) for k in ("github_url", "paper_url", "license_url")}
        model = _model_json(
            body["owner"], body["name"], body["visibility"], body.get("description")
        )
        model.update(extra, cover_image_url=body.get("cover_image_url"))
        self._models[key], self._versions[key] = model, []
        self._taken.add(key)
        return 201, self._model_view(key)

    def _model_view(self, key: str) -> dict[str, Any]:
        """Model JSON with its latest_version."""
        versions = self._versions[key]
        return {**self._models[key], "latest_version": versions[-1] if versions else None}

    def _model_key(self, owner: str, name: str) -> str:
        """Key of an existing model, else 404."""
        key = f"{owner}/{name}"
        if key not in self._models:
            raise ApiError(404, NOT_FOUND)
        return key

    def _get_model(self, req: _Request, owner: str, name: str) -> tuple[int, Any]:
        """GET /v1/models/{owner}/{name}."""
        return 200, self._model_view(self._model_key(owner, name))

    def _delete_model(self, req: _Request, owner: str, name: str) -> tuple[int, Any]:
        """DELETE a model; only when it has no versions."""
        key = self._model_key(owner, name)
        if owner != self.owner:
            raise ApiError(403, "You do not have permission to delete this model.")
        if self._versions[key]:
            detail = "Cannot delete a model that has versions. Delete its versions first."
            raise ApiError(409, detail, "Conflict")
        del self._models[key], self._versions[key]
        return 204, None

    def _list_versions(self, req: _Request, owner: str, name: str) -> tuple[int, Any]:
        """GET a model's versions, newest first."""
        versions = self._versions[self._model_key(owner, name)]
        return 200, {"next": None, "previous": None, "results": versions[::-1]}

    def _find_version(self, owner: str, name: str, vid: str) -> dict[str, Any]:
        """A version of an existing model, else 404."""
        for version in self._versions[self._model_key(owner, name)]:
            if version["id"] == vid:
                return version
        raise ApiError(404, NOT_FOUND)

    def _get_version(self, req: _Request, owner: str, name: str, vid: str) -> tuple[int, Any]:
        """GET one version."""
        return 200, self._find_version(owner, name, vid)

    def _delete_version(self, req: _Request, owner: str, name: str, vid: str) -> tuple[int, Any]:
        """DELETE a version (202)."""
        version = self._find_version(owner, name, vid)
        if owner != self.owner:
            raise ApiError(403, "You do not have permission to delete this version.")
        self._versions[f"{owner}/{name}"].remove(version)
        return 202, None

    # --- trainings and predictions -----------------------------------------------------------

    def _create_training(self, req: _Request, owner: str, name: str, vid: str) -> tuple[int, Any]:
        """POST a training; input is validated later, like Replicate."""
        key = f"{owner}/{name}"
        versions = self._versions.get(key, []) if key in self._models else []
        version = next((v for v in versions if v["id"] == vid), None)
        if key != TRAINER_MODEL or version is None:
            raise ApiError(422, _INVALID_VERSION[1], _INVALID_VERSION[0])
        body = req.fields
        destination = body.get("destination")
        owned = isinstance(destination, str) and destination.startswith(self.owner + "/")
        if not owned or destination not in self._models:
            raise ApiError(404, "The specified training destination does not exist")
        values = body.get("input")
        if not isinstance(values, dict):
            _raise_invalid([{"field": "input", "kind": "required"}], "(root)")
        webhook, events = _webhook_settings(body)
        schema = version["openapi_schema"]["components"]["schemas"]["TrainingInput"]
        problems = fx.find_input_problems(schema, values)
        steps = values.get("steps", 1000)
        total = steps if isinstance(steps, int) and not problems else 1000
        job = self._new_job("training", key, vid, values, webhook, events, total)
        job.destination = destination
        job.invalid = fx.training_validation_error(problems) if problems else None
        self._launch(job)
        return 201, self._render(job, view="create")

    def _create_prediction(self, req: _Request) -> tuple[int, Any]:
        """POST /v1/predictions with `<id>` or `owner/name:<id>`."""
        body = req.fields
        ref = body.get("version")
        pattern = r"(?:([^/:]+/[^/:]+):)?([0-9a-f]{64})"
        match = re.fullmatch(pattern, ref) if isinstance(ref, str) else None
        key = self._version_owner(match.group(2)) if match else None
        if match is None or key is None or match.group(1) not in (None, key):
            raise ApiError(422, _INVALID_VERSION[1], _INVALID_VERSION[0])
        return self._start_prediction(req, key, match.group(2))

    def _create_model_prediction(self, req: _Request, owner: str, name: str) -> tuple[int, Any]:
        """POST a prediction on a model's latest version."""
        key = self._model_key(owner, name)
        if key == TRAINER_MODEL or not self._versions[key]:
            raise ApiError(404, NOT_FOUND)
        return self._start_prediction(req, key, self._versions[key][-1]["id"])

    def _version_owner(self, vid: str) -> str | None:
        """The model a trained (non-trainer) version belongs to."""
        for key, versions in self._versions.items():
            if key != TRAINER_MODEL and any(v["id"] == vid for v in versions):
                return key
        return None

    def _start_prediction(self, req: _Request, key: str, vid: str) -> tuple[int, Any]:
        """Validate input synchronously, create the prediction, honour `Prefer: wait`."""
        body = req.fields
        values = body.get("input")
        if not isinstance(values, dict):
            _raise_invalid([{"field": "input", "kind": "required"}], "(root)")
        version = next(v for v in self._versions[key] if v["id"] == vid)
        schema = version["openapi_schema"]["components"]["schemas"]["Input"]
        _raise_invalid(fx.find_input_problems(schema, values))
        webhook, events = _webhook_settings(body)
        steps = values.get("num_inference_steps", 28)
        job = self._new_job("prediction", key, vid, values, webhook, events, steps)
        self._launch(job)
        wait = re.fullmatch(r"wait(?:=(\d+))?", req.headers.get("prefer", "").strip())
        if wait:
            seconds = min(int(wait.group(1) or 60), 60)
            self._changed.wait_for(lambda: job.data["status"] in TERMINAL, seconds)
        return 201, self._render(job)

    def _new_job(
        self,
        kind: str,
        model: str,
        version: str,
        values: dict[str, Any],
        webhook: str | None,
        events: frozenset[str],
        total: int,
    ) -> _Job:
        """Register a new object in `starting`."""
        job_id = _new_id()
        data = {
            "id": job_id,
            "model": model,
            "version": version,
            "input": values,
            "logs": "",
            "output": None,
            "data_removed": False,
            "error": None,
            "status": "starting",
            "created_at": _now(),
            "started_at": None,
            "completed_at": None,
            "metrics": {},
        }
        self._seq += 1
        job = _Job(kind, data, webhook, events, self._seq, total)
        self._jobs[job_id] = job
        return job

    def _launch(self, job: _Job) -> None:
        """Start the background walker when auto_walk is on."""
        if self.auto_walk:
            threading.Thread(target=self._walk, args=(job,), daemon=True).start()

    def _job(self, id: str, kind: str | None = None) -> _Job:
        """An existing object (optionally of one kind), else 404."""
        job = self._jobs.get(id)
        if not job or (kind and job.kind != kind):
            raise ApiError(404, NOT_FOUND)
        return job

    def _get_training(self, req: _Request, id: str) -> tuple[int, Any]:
        """GET /v1/trainings/{id}."""
        return 200, self._render(self._job(id, "training"))

    def _get_prediction(self, req: _Request, id: str) -> tuple[int, Any]:
        """GET /v1/predictions/{id} (resolves trainings too)."""
        return 200, self._render(self._job(id), view="predictions")

    def _cancel_training(self, req: _Request, id: str) -> tuple[int, Any]:
        """POST /v1/trainings/{id}/cancel."""
        job = self._job(id, "training")
        self._cancel(job)
        return 200, self._render(job)

    def _cancel_prediction(self, req: _Request, id: str) -> tuple[int, Any]:
        """POST /v1/predictions/{id}/cancel (resolves trainings too)."""
        job = self._job(id)
        self._cancel(job)
        return 200, self._render(job, view="predictions")

    def _list_trainings(self, req: _Request) -> tuple[int, Any]:
        """GET /v1/trainings."""
        return 200, self._page("training", req)

    def _list_predictions(self, req: _Request) -> tuple[int, Any]:
        """GET /v1/predictions."""
        return 200, self._page("prediction", req)

    def _page(self, kind: str, req: _Request) -> dict[str, Any]:
        """Newest-first page with absolute `next` URLs and opaque cursors."""
        cursor = req.query.get("cursor")
        try:
            below = int(base64.urlsafe_b64decode(cursor).decode()[2:]) if cursor else None
        except ValueError as exc:
            raise ApiError(400, "Invalid cursor") from exc
        jobs = [j for j in reversed(self._jobs.values()) if j.kind == kind]
        jobs = [j for j in jobs if below is None or j.seq <= below]
        page, rest = jobs[: self.page_size], jobs[self.page_size :]
        next_url = None
        if rest:
            token = base64.urlsafe_b64encode(f"s={rest[0].seq}".encode()).decode()
            next_url = f"{self.url}{req.path}?cursor={token}"
        results = [self._render(j) for j in page]
        return {"next": next_url, "previous": None, "results": results}

    def _render(self, job: _Job, view: str | None = None) -> dict[str, Any]:
        """Public JSON of an object; `view` (create/trainings/predictions) picks the urls."""
        data = copy.deepcopy(job.data)
        view = view or ("trainings" if job.kind == "training" else "predictions")
        # Create answers point at /v1/predictions even for trainings, as Replicate's do.
        collection = "trainings" if view == "trainings" else "predictions"
        base = f"{self.url}/v1/{collection}/{job.data['id']}"
        data["urls"] = {
            "get": base,
            "cancel": f"{base}/cancel",
            "web": f"https://replicate.com/p/{job.data['id']}",
        }
        return data

    # --- state walking -----------------------------------------------------------------------

    def _walk(self, job: _Job) -> None:
        """Background timeline: starting -> processing (logs grow) -> succeeded/failed."""
        fast = job.kind == "prediction"
        starting = min(self.starting_seconds, 0.5) if fast else self.starting_seconds
        processing = min(self.processing_seconds, 1.5) if fast else self.processing_seconds
        if job.halt.wait(starting):
            return
        with self._lock:
            if job.data["status"] != "starting":
                return
            if job.invalid:
                self._fail(job, job.invalid)
                return
            self._append_logs(job, self._begin(job), throttle=True)
        began = time.monotonic()
        while True:
            remaining = processing - (time.monotonic() - began)
            if job.halt.wait(max(0.0, min(self.log_interval, remaining))):
                return
            done = min(1.0, (time.monotonic() - began) / processing) if processing > 0 else 1.0
            with self._lock:
                if job.data["status"] != "processing":
                    return
                if done >= 1.0:
                    self._succeed(job, [], throttle=True)
                    return
                lines = self._progress_lines(job, int(done * job.total))
                self._append_logs(job, lines, throttle=True)

    def _begin(self, job: _Job) -> list[str]:
        """starting -> processing: send `start`; return the log head to print."""
        job.data.update(status="processing", started_at=_now())
        job.started = time.monotonic()
        self._emit(job, "start")
        values = job.data["input"]
        if job.kind == "training":
            lines = fx.training_log_head(values, datetime.now(UTC))
            lines += fx.decoy_bars(fx.count_zip_entries(str(values.get("input_images", ""))) or 10)
        else:
            lines = fx.prediction_log_head(values)
        return lines + self._progress_lines(job, 0)

    def _progress_lines(self, job: _Job, step: int) -> list[str]:
        """One progress line per step not yet printed, up to `step`."""
        step = min(step, job.total)
        lines = [self._progress_line(job, n) for n in range(job.step + 1, step + 1)]
        job.step = max(job.step, step)
        return lines

    def _progress_line(self, job: _Job, step: int) -> str:
        """The trainer's or the predictor's progress line for one step."""
        if job.kind == "training":
            return fx.training_progress_line(step, job.total, job.data["id"])
        return fx.prediction_progress_line(step, job.total)

    def _append_logs(self, job: _Job, lines: list[str], throttle: bool) -> None:
        """Grow logs and send a `logs` webhook (at most every 500 ms when throttled)."""
        if not lines:
            return
        job.data["logs"] += "".join(lines)
        now = time.monotonic()
        if not throttle or now - job.last_logs_sent >= 0.5:
            job.last_logs_sent = now
            self._emit(job, "logs")

    def _succeed(self, job: _Job, lines: list[str], *, throttle: bool) -> None:
        """Finish successfully: complete logs, send `output`, then `completed`."""
        lines = lines + self._progress_lines(job, job.total)
        if job.kind == "training":
            lines += fx.training_log_tail(job.total)
            job.data["output"] = self._training_output(job)
        else:
            outputs = job.data["input"].get("num_outputs", 1)
            lines += fx.prediction_log_tail(outputs)
            job.data["output"] = self._prediction_output(job, outputs)
        self._append_logs(job, lines, throttle)
        self._emit(job, "output")
        self._finish(job, "succeeded")

    def _training_output(self, job: _Job) -> dict[str, str]:
        """Push a new version to the destination and publish the weights tar."""
        vid = secrets.token_hex(32)
        if job.destination in self._models:
            schema = fx.flux_lora_openapi_schema()
            self._versions[job.destination].append(_version_json(vid, schema))
        path = f"/delivery/{job.data['id']}/trained_model.tar"
        tar = fx.trained_model_tar(job.data["id"], job.data["input"])
        self._files[path] = ("application/x-tar", tar)
        return {"version": f"{job.destination}:{vid}", "weights": f"{self.url}{path}"}

    def _prediction_output(self, job: _Job, outputs: int) -> list[str]:
        """Publish `num_outputs` real images and return their URLs."""
        fmt = job.data["input"].get("output_format", "webp")
        urls = []
        for index in range(outputs):
            path = f"/delivery/{job.data['id']}/out-{index}.{fx.image_extension(fmt)}"
            image, content_type = fx.output_image(job.data["id"], index, fmt)
            self._files[path] = (content_type, image)
            urls.append(f"{self.url}{path}")
        return urls

    def _fail(self, job: _Job, error: str) -> None:
        """Finish as failed with `error`."""
        job.data["error"] = error
        self._finish(job, "failed")

    def _cancel(self, job: _Job) -> None:
        """Cancel; a no-op on terminal objects."""
        if job.data["status"] not in TERMINAL:
            self._finish(job, "canceled")

    def _finish(self, job: _Job, status: str) -> None:
        """Enter a terminal state, stamp times, send output/completed webhooks."""
        now = _now()
        job.data.update(status=status, completed_at=now)
        job.data["started_at"] = job.data["started_at"] or now
        metrics = {"predict_time": round(time.monotonic() - job.started, 6)} if job.started else {}
        if status == "succeeded":
            metrics["total_time"] = round(time.monotonic() - job.created, 6)
        job.data["metrics"] = metrics
        job.halt.set()
        self._emit(job, "completed")
        self._changed.notify_all()

    # --- webhooks ----------------------------------------------------------------------------

    def _emit(self, job: _Job, event: str) -> None:
        """Queue a signed webhook of the object's current JSON (caller holds the lock)."""
        if not job.webhook or self.drop_webhooks or self._mute or event not in job.events:
            return
        body = json.dumps(self._render(job), ensure_ascii=False).encode()
        msg_id = "msg_" + secrets.token_urlsafe(18)
        message = _Message(job.data["id"], job.webhook, body, event, msg_id)
        with self._send_cv:
            self._pending += 1
            self._outbox.setdefault(message.object_id, deque()).append(message)
            if message.object_id in self._draining:
                return
            self._draining.add(message.object_id)
        threading.Thread(target=self._drain, args=(message.object_id,), daemon=True).start()

    def _drain(self, object_id: str) -> None:
        """Send one object's queued messages in order."""
        while True:
            with self._send_cv:
                if not self._outbox[object_id]:
                    self._draining.discard(object_id)
                    return
                message = self._outbox[object_id].popleft()
            headers = self._signed_headers(message.msg_id, message.body)
            delivery = self._post(message.url, headers, message.body, message.event, object_id, 1)
            retry = message.event == "completed" and not _ok(delivery.status)
            if retry and self.webhook_retry_delays and not self._stopping.is_set():
                with self._send_cv:
                    self._pending += 1
                threading.Thread(target=self._retry, args=(message,), daemon=True).start()
            self._done_sending()

    def _retry(self, message: _Message) -> None:
        """Retry a `completed` webhook on the backoff schedule (same webhook-id)."""
        for attempt, delay in enumerate(self.webhook_retry_delays, start=2):
            if self._stopping.wait(delay):
                break
            headers = self._signed_headers(message.msg_id, message.body)
            args = (message.url, headers, message.body, message.event, message.object_id)
            if _ok(self._post(*args, attempt).status):
                break
        self._done_sending()

    def _done_sending(self) -> None:
        """Mark one queued send (or retry series) as finished."""
        with self._send_cv:
            self._pending -= 1
            self._send_cv.notify_all()

    def _signed_headers(self, msg_id: str, body: bytes) -> dict[str, str]:
        """Standard Webhooks headers for one attempt."""
        timestamp = str(int(time.time()))
        return {
            "content-type": "application/json",
            "user-agent": "Replicate-Webhook/1.0",
            "webhook-id": msg_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": sign(self.webhook_secret, msg_id, timestamp, body),
        }

    def _post(
        self, url: str, headers: dict[str, str], body: bytes, event: str, oid: str, attempt: int
    ) -> Delivery:
        """POST one webhook (no redirects followed) and record it."""
        status: int | None
        try:
            status = self._http.post(url, content=body, headers=headers).status_code
        except (httpx.HTTPError, RuntimeError):
            status = None
        delivery = Delivery(url, dict(headers), body, status, event, oid, attempt)
        with self._lock:
            self.deliveries.append(delivery)
        return delivery


def _model_json(owner: str, name: str, visibility: str, description: str | None) -> dict[str, Any]:
    """A model object with every field the official client requires."""
    return {
        "url": f"https://replicate.com/{owner}/{name}",
        "owner": owner,
        "name": name,
        "description": description,
        "visibility": visibility,
        "github_url": None,
        "paper_url": None,
        "license_url": None,
        "run_count": 0,
        "cover_image_url": None,
        "default_example": None,
    }


def _version_json(vid: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A model version object."""
    return {"id": vid, "created_at": _now(), "cog_version": "0.9.13", "openapi_schema": schema}


def _default_error(kind: str) -> str:
    """A realistic failure message."""
    if kind == "training":
        return "Training failed. Failed to create trained image after successful training run."
    return (
        "All generated images contained NSFW content. Try running it again with a different prompt."
    )


def _raise_invalid(problems: list[dict[str, Any]], prefix: str = "input") -> None:
    """Raise a 422 `Input validation failed` with invalid_fields, if there are problems."""
    if problems:
        fields = fx.invalid_fields(problems, prefix)
        detail = "".join(f"- {f['field']}: {f['description']}\n" for f in fields)
        raise ApiError(422, detail, "Input validation failed", invalid_fields=fields)


def _webhook_settings(body: dict[str, Any]) -> tuple[str | None, frozenset[str]]:
    """Validate `webhook` and `webhook_events_filter`."""
    webhook, events = body.get("webhook"), body.get("webhook_events_filter")
    if webhook is not None and not re.match(r"https?://", str(webhook)):
        _raise_invalid([{"field": "webhook", "kind": "uri", "scheme": ""}], "(root)")
    events = EVENTS if events is None else events
    if not isinstance(events, list | tuple) or any(e not in EVENTS for e in events):
        choices = list(EVENTS)
        _raise_invalid(
            [{"field": "webhook_events_filter", "kind": "enum", "choices": choices}], "(root)"
        )
    return webhook, frozenset(events)


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


def main(argv: list[str] | None = None) -> None:
    """Run the emulator standalone until interrupted."""
    parser = argparse.ArgumentParser(description="Local emulator of Replicate's HTTP API.")
    parser.add_argument("--port", type=int, default=8100, help="port on 127.0.0.1 (0 = any)")
    parser.add_argument("--token", default="r8_dev_token", help="accepted API token")
    parser.add_argument("--owner", default="sselfie-dev", help="account username")
    parser.add_argument("--manual", action="store_true", help="disable automatic state walking")
    parser.add_argument("--starting-seconds", type=float, default=2.0)
    parser.add_argument("--processing-seconds", type=float, default=20.0)
    parser.add_argument("--log-interval", type=float, default=0.5)
    parser.add_argument("--latency", type=float, default=0.0, help="sleep per request (s)")
    args = parser.parse_args(argv)
    emulator = ReplicateEmulator(
        token=args.token,
        owner=args.owner,
        auto_walk=not args.manual,
        starting_seconds=args.starting_seconds,
        processing_seconds=args.processing_seconds,
        log_interval=args.log_interval,
        latency=args.latency,
    ).start(args.port)
    print(f"Replicate emulator on {emulator.url}", flush=True)
    print(f"REPLICATE_BASE_URL={emulator.url}", flush=True)
    print(f"REPLICATE_API_TOKEN={emulator.token}", flush=True)
    print(f"webhook secret: {emulator.webhook_secret}", flush=True)
    print(f"trainer version: {TRAINER_MODEL}:{emulator.trainer_version}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emulator.stop()


if __name__ == "__main__":
    main()
