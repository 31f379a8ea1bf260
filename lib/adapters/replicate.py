"""Replicate, through the official client: the single choke point for every call we make.

The `replicate` package costs ~200 ms to import, so it is imported only when a call is made;
the progress and webhook functions usually answer without it.
"""

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from lib.errors import (
    ApiError,
    BadGateway,
    ConfigError,
    GatewayTimeout,
    NotFoundUpstream,
    ServiceUnavailable,
)
from lib.settings import Settings

logger = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0, read=20.0, write=20.0, pool=5.0)
DOWNLOAD_CHUNK = 256 * 1024
MAX_ATTEMPTS = 3
MAX_RETRY_WAIT_SECONDS = 2.0
WEBHOOK_EVENTS = ["start", "logs", "completed"]
# A prediction takes seconds and has no progress worth a function invocation per log line.
PREDICTION_WEBHOOK_EVENTS = ["start", "completed"]
DELIVERY_HOST = "replicate.delivery"
MAX_OUTPUT_BYTES = 50 * 1024 * 1024
TOKEN_MISSING = "REPLICATE_API_TOKEN environment variable is not set"

# Per-process caches keyed by (base URL, token): a trainer version, a version's schema and the
# account do not change within an instance's life.
_cache: dict[tuple[str, ...], Any] = {}
_cache_lock = threading.RLock()  # held while a cached value loads through the cached client
_clients: dict[tuple[str, ...], Any] = {}
_secret_fetched_at: dict[tuple[str, ...], float] = {}
SECRET_REFRESH_SECONDS = 60
T = TypeVar("T")


class BoundedRetryTransport(httpx.HTTPTransport):
    """Retries idempotent requests on 429/503/504 a few times, never waiting long.

    Mounted in place of the client's own retry transport, which honours any Retry-After and
    would hold a serverless function for minutes.
    """

    RETRY_STATUSES = frozenset({429, 503, 504})
    RETRY_METHODS = frozenset({"GET", "HEAD", "DELETE"})

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        limits = request.extensions.get("timeout", {})
        if any(limit is None for limit in limits.values()):
            # The client creates predictions with no timeout at all (replicate 1.0.7): a create
            # Replicate never answers would hold the function until Vercel kills it.
            request.extensions["timeout"] = TIMEOUT.as_dict()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            response = super().handle_request(request)
            retry = request.method in self.RETRY_METHODS and response.status_code in (
                self.RETRY_STATUSES
            )
            if not retry or attempt == MAX_ATTEMPTS:
                return response
            response.close()
            time.sleep(min(MAX_RETRY_WAIT_SECONDS, 0.2 * 2**attempt * random.uniform(0.9, 1.1)))
        raise AssertionError("unreachable")


class Replicate:
    """The calls this product makes to Replicate, each mapped to the contract's errors."""

    def __init__(self, settings: Settings) -> None:
        if not settings.replicate_api_token:
            raise ConfigError(TOKEN_MISSING)
        self._settings = settings

    @property
    def client(self) -> Any:
        """The official client, built once per instance (its TLS setup costs ~40 ms of CPU)."""
        key = ("client", "", self._settings.replicate_base_url, self._settings.replicate_api_token)
        with _cache_lock:
            if key not in _clients:
                import replicate

                _clients[key] = replicate.Client(
                    api_token=self._settings.replicate_api_token,
                    base_url=self._settings.replicate_base_url,
                    timeout=TIMEOUT,
                    mounts={"all://": BoundedRetryTransport()},
                )
            return _clients[key]

    def trainer_version(self) -> str:
        """The configured trainer version, else the trainer model's latest, resolved once."""
        if self._settings.trainer_version:
            return self._settings.trainer_version
        model = self._settings.trainer_model
        return self._cached(
            "trainer", model, lambda: self.client.models.get(model).latest_version.id
        )

    def trainer_schema(self) -> dict[str, Any]:
        """The trainer version's openapi_schema (its inputs), fetched once per version."""
        from replicate.version import Versions

        model, version = self._settings.trainer_model, self.trainer_version()
        return self._cached(
            "schema",
            f"{model}:{version}",
            lambda: Versions(self.client, model).get(version).openapi_schema or {},
        )

    def destination_owner(self) -> str:
        """The account that owns destination models."""
        if self._settings.destination_owner:
            return self._settings.destination_owner
        return self._cached("owner", "", lambda: self.client.accounts.current().username)

    def webhook_secret(self, *, refresh: bool = False) -> str:
        """The signing secret: configured, else fetched from Replicate once per instance."""
        if self._settings.replicate_webhook_secret:
            return self._settings.replicate_webhook_secret
        key = self._key("secret", "")
        if refresh and time.monotonic() - _secret_fetched_at.get(key, 0) > SECRET_REFRESH_SECONDS:
            _cache.pop(key, None)  # at most once a minute: forged deliveries cannot make us spin
            _secret_fetched_at[key] = time.monotonic()
        return self._cached("secret", "", lambda: self.client.webhooks.default.secret().key)

    def ensure_model(self, name: str) -> str:
        """Create the private destination model `owner/name` unless it exists; return its id."""
        owner = self.destination_owner()
        self._call(
            lambda: self.client.models.create(
                owner=owner, name=name, visibility="private", hardware="gpu-t4"
            ),
            tolerate=(409,),  # it already exists: reuse it
        )
        return f"{owner}/{name}"

    def create_training(
        self, *, destination: str, training_input: dict[str, Any], webhook: str | None
    ) -> dict[str, Any]:
        """Start a training of the configured trainer into `destination`."""
        model, version = self._settings.trainer_model, self.trainer_version()
        options: dict[str, Any] = {"destination": destination, "input": training_input}
        if webhook:
            options |= {"webhook": webhook, "webhook_events_filter": WEBHOOK_EVENTS}
        training = self._call(
            lambda: self.client.trainings.create(model=model, version=version, **options)
        )
        return snapshot(training)

    def get_training(self, training_id: str) -> dict[str, Any]:
        """The training as Replicate sees it now (404 raises NotFoundUpstream)."""
        return self._job("GET", f"/v1/trainings/{quote(training_id, safe='')}")

    def cancel_training(self, training_id: str) -> dict[str, Any]:
        """Ask Replicate to cancel a training."""
        return self._job("POST", f"/v1/trainings/{quote(training_id, safe='')}/cancel")

    def model_hardware(self, model: str) -> str | None:
        """The hardware Replicate reports for the model `owner/name`, if it reports one."""
        path = f"/v1/models/{quote(model, safe='/')}"
        return self._cached("hardware", model, lambda: self._json("GET", path).get("hardware"))

    def recent_trainings(self, *, pages: int) -> list[dict[str, Any]]:
        """The account's trainings, newest first, up to `pages` pages: snapshots plus their
        `input`, `version` and `created_at`."""
        return self._recent(self.client.trainings, pages)

    def recent_predictions(self, *, pages: int) -> list[dict[str, Any]]:
        """The account's predictions, as recent_trainings."""
        return self._recent(self.client.predictions, pages)

    def _recent(self, resource: Any, pages: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: Any = ...  # the client's "first page"
        for _ in range(pages):
            page = self._call(lambda c=cursor: resource.list(cursor=c))
            found += [
                {**snapshot(job), "input": job.input, "version": job.version}
                | {"created_at": job.created_at}
                for job in page.results
            ]
            if not page.next:
                break
            cursor = page.next
        return found

    def create_prediction(
        self, *, version: str, prediction_input: dict[str, Any], webhook: str | None
    ) -> dict[str, Any]:
        """Run a version (`owner/name:version_id`) on `prediction_input`."""
        options: dict[str, Any] = {"version": version, "input": prediction_input}
        if webhook:
            options |= {"webhook": webhook, "webhook_events_filter": PREDICTION_WEBHOOK_EVENTS}
        return snapshot(self._call(lambda: self.client.predictions.create(**options)))

    def get_prediction(self, prediction_id: str) -> dict[str, Any]:
        """The prediction as Replicate sees it now (404 raises NotFoundUpstream)."""
        return self._job("GET", f"/v1/predictions/{quote(prediction_id, safe='')}")

    def _job(self, method: str, path: str) -> dict[str, Any]:
        # Read as JSON, not through the client's models: they refuse statuses newer than the
        # client (`aborted`), and such a job must still reach our rows to end there.
        return snapshot(self._json(method, path))

    def cancel_prediction(self, prediction_id: str) -> dict[str, Any]:
        """Ask Replicate to cancel a prediction."""
        return snapshot(self._call(lambda: self.client.predictions.cancel(prediction_id)))

    def download(self, url: str) -> "Download":
        """One output file from Replicate's delivery host (its URLs expire after an hour)."""
        if not self._is_delivery_url(url):
            raise BadGateway(
                "Replicate returned an output outside its delivery host", code="download_failed"
            )
        failed = BadGateway("A Replicate output could not be downloaded", code="download_failed")
        try:
            with (
                httpx.Client(timeout=TIMEOUT, follow_redirects=False) as http,
                http.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    logger.warning("download failed status=%s", response.status_code)
                    raise failed
                content = _read_capped(response.iter_bytes(), MAX_OUTPUT_BYTES)
                content_type = response.headers.get("content-type", "").split(";")[0]
        except httpx.HTTPError as error:
            logger.warning("download failed error=%s", type(error).__name__)
            raise failed from error
        return Download(content, content_type or "application/octet-stream")

    @contextmanager
    def stream_download(self, url: str) -> Iterator[Iterator[bytes]]:
        """A large file from Replicate's delivery host (a training's weights), in chunks."""
        if not self._is_delivery_url(url):
            raise BadGateway("The file is not on Replicate's delivery host", code="download_failed")
        try:
            with (
                httpx.Client(timeout=TIMEOUT, follow_redirects=False) as http,
                http.stream("GET", url) as response,
            ):
                if response.status_code in (404, 410):
                    raise NotFoundUpstream("Replicate no longer serves the file")
                if response.status_code != 200:
                    logger.warning("download failed status=%s", response.status_code)
                    raise BadGateway(
                        f"Replicate's file host answered {response.status_code}",
                        code="download_failed",
                    )
                yield response.iter_bytes(DOWNLOAD_CHUNK)
        except httpx.HTTPError as error:
            logger.warning("download failed error=%s", type(error).__name__)
            raise BadGateway(
                "A Replicate file could not be downloaded", code="download_failed"
            ) from (error)

    def _is_delivery_url(self, url: str) -> bool:
        # Our own base URL counts too: the local emulator serves its outputs itself.
        parts, base = urlsplit(url), urlsplit(self._settings.replicate_base_url)
        host = parts.hostname or ""
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return True
        return parts.scheme == "https" and (
            host == DELIVERY_HOST or host.endswith("." + DELIVERY_HOST)
        )

    def list_versions(self, model: str) -> list[str]:
        """The version ids of the model `owner/name` (none when the model does not exist)."""
        from replicate.version import Versions

        page = self._call(lambda: Versions(self.client, model).list(), tolerate=(404,))
        return [version.id for version in page.results] if page else []

    def delete_version(self, model: str, version_id: str) -> None:
        """Delete one version of `owner/name` with its weights; one already gone is fine."""
        from replicate.version import Versions

        self._call(lambda: Versions(self.client, model).delete(version_id), tolerate=(404,))

    def delete_model(self, model: str) -> None:
        """Delete the model `owner/name`; gone (404) or still holding a version (409) is fine."""
        self._call(lambda: self.client.models.delete(model), tolerate=(404, 409))

    def _json(self, method: str, path: str) -> dict[str, Any]:
        return self._call(lambda: self.client._request(method, path).json())

    def _cached(self, kind: str, name: str, load: Callable[[], T]) -> T:
        key = self._key(kind, name)
        with _cache_lock:
            if key not in _cache:
                _cache[key] = self._call(load)
            return _cache[key]

    def _key(self, kind: str, name: str) -> tuple[str, ...]:
        settings = self._settings
        return (kind, name, settings.replicate_base_url, settings.replicate_api_token or "")

    def _call(self, request: Callable[[], T], *, tolerate: tuple[int, ...] = ()) -> T | None:
        from replicate.exceptions import ReplicateError

        try:
            return request()
        except ReplicateError as error:
            if error.status in tolerate:
                return None
            raise _api_error(error) from error
        except httpx.TimeoutException as error:
            raise GatewayTimeout(
                "Replicate did not answer in time", code="replicate_timeout"
            ) from (error)
        except httpx.TransportError as error:
            raise BadGateway("Replicate could not be reached", code="replicate_unreachable") from (
                error
            )
        except (ValueError, RecursionError) as error:  # an answer the client cannot read
            logger.warning("replicate answer unreadable error=%s", type(error).__name__)
            raise BadGateway(
                "Replicate answered something we cannot read", code="replicate_unreadable"
            ) from error


@dataclass(frozen=True)
class Download:
    content: bytes
    content_type: str


def snapshot(job: Any) -> dict[str, Any]:
    """The fields we use of a training or prediction (a client object or Replicate's JSON), in
    the shape of a webhook payload."""
    fields = job if isinstance(job, dict) else vars(job)
    output = fields.get("output")
    if output is not None and not isinstance(output, dict | list | str):
        output = output.dict() if hasattr(output, "dict") else dict(output)
    return {
        "id": fields.get("id"),
        "status": fields.get("status"),
        "logs": fields.get("logs") or "",
        "error": fields.get("error"),
        "output": output,
        "started_at": fields.get("started_at"),
        "completed_at": fields.get("completed_at"),
        "metrics": fields.get("metrics"),
    }


def _read_capped(chunks: Any, limit: int) -> bytes:
    content = bytearray()
    for chunk in chunks:
        content += chunk
        if len(content) > limit:
            raise BadGateway("A Replicate output is too large to copy", code="download_failed")
    return bytes(content)


def _api_error(error: Any) -> ApiError:
    status = error.status or 502
    # Replicate's own words stay in our logs: they may name accounts, models or limits.
    detail = error.detail or error.title or "no detail"
    logger.warning("replicate error status=%s detail=%s", status, detail[:200])
    if status == 429:
        return ServiceUnavailable(
            "Replicate is rate limiting us; try again in a minute",
            code="replicate_throttled",
            headers={"Retry-After": "30"},
        )
    if status == 401:
        return ServiceUnavailable("Replicate rejected REPLICATE_API_TOKEN", code="replicate_auth")
    if status == 404:
        return NotFoundUpstream("Replicate does not know that object")
    if status == 402:
        return ServiceUnavailable("The Replicate account has insufficient credit", code="no_credit")
    return BadGateway(f"Replicate answered {status}; try again later", code="replicate_error")
