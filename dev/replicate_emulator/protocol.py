"""Shared pieces of the Replicate emulator: constants, records, problem answers, JSON shapes."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dev.replicate_emulator import fixtures as fx

TRAINER_MODEL = "ostris/flux-dev-lora-trainer"
# Deliberately not a real trainer id: clients must resolve latest_version at runtime.
TRAINER_VERSION = hashlib.sha256(b"replicate-emulator:" + TRAINER_MODEL.encode()).hexdigest()
DEFAULT_WEBHOOK_SECRET = (
    "whsec_"
    + base64.b64encode(hashlib.sha256(b"sselfie-dev webhook signing key").digest()[:24]).decode()
)
NOT_FOUND = "The requested resource could not be found"
EVENTS = ("start", "output", "logs", "completed")
# `aborted`: a Cancel-After deadline passed before the job started (Replicate, October 2025).
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
FINE_TUNE_HARDWARE = "gpu-h100"
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


def _now() -> str:
    """ISO-8601 UTC timestamp with a Z suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_id() -> str:
    """A 26-character lowercase base32 id like Replicate's."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))


def _model_json(
    owner: str, name: str, visibility: str, description: str | None, hardware: str
) -> dict[str, Any]:
    """A model object with every field the official client requires, and its hardware."""
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
        "hardware": hardware,
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
