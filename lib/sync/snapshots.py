"""What Replicate tells us, made safe before it reaches our rules or PostgreSQL.

A webhook body or an API object becomes a snapshot: a dict of the fields we use, every string
free of what PostgreSQL refuses (NUL, lone surrogates), every field of the type we expect, nesting
cut short. Signed is not the same as well formed: a body that cannot be read is a 400, anything
readable is applied as far as it makes sense, so no delivery ever answers 500.
"""

import json
import re
from datetime import UTC, datetime
from typing import Any

from lib.errors import BadRequest

REPLICATE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
# "owner/name:version" as Replicate reports a pushed version.
VERSION_REF = re.compile(r"([A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}):([A-Za-z0-9]{1,128})")
# PostgreSQL's text refuses NUL; UTF-8 (and so the database) refuses unpaired surrogates.
SURROGATES = re.compile(r"[\ud800-\udfff]")
# Our fields sit at most three levels down (output.version); anything deeper is dropped.
MAX_DEPTH = 8
MAX_ERROR_LENGTH = 2000
NO_VERSION_ERROR = (
    "Replicate reported the training as succeeded but gave no usable model version; retry it"
)


def from_webhook(body: bytes) -> dict[str, Any]:
    """A verified webhook body as a snapshot; 400 when it is not a readable Replicate object."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser
        raise BadRequest("The webhook body is not JSON", code="invalid_json") from None
    return from_object(payload)


def from_object(payload: Any) -> dict[str, Any]:
    """A training or prediction (webhook body or API answer) as a snapshot."""
    if not isinstance(payload, dict):
        raise BadRequest("The webhook body is not a Replicate object", code="invalid_payload")
    status = payload.get("status")
    if not isinstance(status, str) or not status:
        raise BadRequest("The webhook body is not a Replicate object", code="invalid_payload")
    replicate_id = payload.get("id")
    if not isinstance(replicate_id, str) or not REPLICATE_ID.fullmatch(replicate_id):
        raise BadRequest("The webhook body has no valid id", code="invalid_payload")
    logs, error = payload.get("logs"), payload.get("error")
    return {
        "id": replicate_id,
        "status": clean_text(status)[:40],  # one we do not know ends it (statuses.ranked)
        "logs": clean_text(logs) if isinstance(logs, str) else "",
        "error": None if error is None else _error_text(error),
        "output": clean(payload.get("output")),
        "started_at": moment(payload.get("started_at")),
        "completed_at": moment(payload.get("completed_at")),
        "metrics": clean(payload.get("metrics")),  # the billed seconds (lib/accounts/spend.py)
    }


def as_training(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A training's snapshot whose success we can use: `succeeded` without a version fails."""
    output = snapshot.get("output")
    version = output.get("version") if isinstance(output, dict) else None
    if snapshot["status"] != "succeeded" or trained_version(version):
        return snapshot
    return {**snapshot, "status": "failed", "error": NO_VERSION_ERROR}


def trained_version(value: Any) -> tuple[str, str] | None:
    """(destination, version id) of an `owner/name:version` reference, else None."""
    match = VERSION_REF.fullmatch(value) if isinstance(value, str) else None
    return (match.group(1), match.group(2)) if match else None


def clean(value: Any, depth: int = 0) -> Any:
    """JSON data with every string made valid text and nesting cut at MAX_DEPTH."""
    if isinstance(value, str):
        return clean_text(value)
    if depth >= MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {clean_text(str(k)): clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(item, depth + 1) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean_text(str(value))


def clean_text(value: str) -> str:
    """The text without NUL characters or unpaired surrogates."""
    # A webhook's logs grow to megabytes: the common clean case costs a scan, not a regex.
    if "\x00" in value:
        value = value.replace("\x00", "")
    if value.isascii():
        return value
    try:
        value.encode()
    except UnicodeEncodeError:
        return SURROGATES.sub("", value)
    return value


def moment(value: Any) -> datetime | None:
    """An ISO 8601 time, or None for anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _error_text(error: Any) -> str:
    text = error if isinstance(error, str) else json.dumps(clean(error), default=str)
    return clean_text(text)[:MAX_ERROR_LENGTH]
