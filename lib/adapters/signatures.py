"""Standard Webhooks signatures, as Replicate signs its callbacks."""

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from lib.errors import Unauthorized
from lib.settings import Settings

if TYPE_CHECKING:
    from lib.adapters.clients import Clients

TOLERANCE_SECONDS = 5 * 60
MAX_WEBHOOK_ID_LENGTH = 256


class WebhookVerificationError(Exception):
    """The delivery is missing a header, is stale, or its signature does not match."""


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for a body: `v1,<base64 HMAC-SHA256>`."""
    signed = b"%s.%d.%s" % (webhook_id.encode(), timestamp, body)
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
    """Check a delivery over its raw body; return its webhook-id."""
    webhook_id = _header(headers, "webhook-id")
    if len(webhook_id) > MAX_WEBHOOK_ID_LENGTH:
        raise WebhookVerificationError("webhook-id is too long")
    timestamp = _timestamp(_header(headers, "webhook-timestamp"))
    signatures = _header(headers, "webhook-signature")
    now = time.time() if now is None else now
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("webhook-timestamp is outside the 5-minute tolerance")
    expected = sign(secret, webhook_id, timestamp, body).encode()
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return webhook_id
    raise WebhookVerificationError("webhook-signature does not match")


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise WebhookVerificationError("the signing secret is not valid base64") from None


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise WebhookVerificationError(f"{name} header is missing")
    return value


def _timestamp(value: str) -> int:
    # isdigit alone accepts "²" and other digits int() refuses; 12 digits reach year 33658.
    if not (value.isascii() and value.isdigit() and len(value) <= 12):
        raise WebhookVerificationError("webhook-timestamp is not a Unix time")
    return int(value)


def verify_replicate(
    headers: Mapping[str, str], body: bytes, *, settings: Settings, clients: "Clients"
) -> str:
    """Verify a Replicate delivery; 401 when it does not hold. Return its webhook-id."""
    if settings.replicate_webhook_secret:
        return _verified_or_401(settings.replicate_webhook_secret, headers, body)
    replicate = clients.replicate  # the secret is fetched from Replicate once per instance
    try:
        return verify(replicate.webhook_secret(), headers, body)
    except WebhookVerificationError:
        # The secret may have been rotated since this instance fetched it: refresh once.
        return _verified_or_401(replicate.webhook_secret(refresh=True), headers, body)


def _verified_or_401(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    try:
        return verify(secret, headers, body)
    except WebhookVerificationError as error:
        raise Unauthorized(f"Invalid webhook: {error}", code="invalid_signature") from None
