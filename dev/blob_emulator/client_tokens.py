"""Client-upload tokens: verification, upload checks and the upload-completed callback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from typing import Any

import httpx

from dev.blob_emulator.protocol import (
    CALLBACK_TIMEOUT,
    CLIENT_TOKEN_PREFIX,
    RW_TOKEN_PREFIX,
    CallbackDelivery,
    _js_json,
)

log = logging.getLogger(__name__)


class ClientTokenError(Exception):
    """A client token (or an upload made with it) was refused."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _store_from_rw_token(token: str) -> str | None:
    if not token.startswith(RW_TOKEN_PREFIX):
        return None
    store, sep, secret = token[len(RW_TOKEN_PREFIX) :].partition("_")
    if not sep or not store or not secret.strip("_"):
        return None
    return store.removeprefix("store_") or None


def verify_client_token(token: str, rw_token: str, now_ms: int) -> dict[str, Any]:
    """Verify a `vercel_blob_client_<store>_<base64(hexsig + "." + payloadB64)>` token.

    Returns the decoded payload (pathname, validUntil, allowedContentTypes, ...).
    Raises ClientTokenError: 403 `forbidden` for a malformed/forged token or one minted for
    another store, 403 `client_token_expired` ("Token expired") once `validUntil` has passed.
    """
    forbidden = ClientTokenError("forbidden", "Invalid client token", 403)
    if not isinstance(token, str) or not token.startswith(CLIENT_TOKEN_PREFIX):
        raise forbidden
    store, sep, encoded = token[len(CLIENT_TOKEN_PREFIX) :].rpartition("_")
    if not sep or not store or store != _store_from_rw_token(rw_token):
        raise forbidden
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        signature, dot, payload_b64 = decoded.partition(".")
        if not dot:
            raise ValueError("no separator")
        expected = hmac.new(rw_token.encode(), payload_b64.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            raise ValueError("bad signature")
        payload = json.loads(base64.b64decode(payload_b64, validate=True).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise forbidden from None
    if not isinstance(payload, dict):
        raise forbidden
    valid_until = payload.get("validUntil")
    if not isinstance(valid_until, int | float) or isinstance(valid_until, bool):
        raise forbidden
    if now_ms > valid_until:
        raise ClientTokenError("client_token_expired", "Token expired", 403)
    return payload


def _base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _content_type_allowed(content_type: str, allowed: list[Any]) -> bool:
    actual = _base_type(content_type)
    for item in allowed:
        if not isinstance(item, str):
            continue
        wanted = _base_type(item)
        if wanted in ("*", "*/*") or wanted == actual:
            return True
        if wanted.endswith("/*") and actual.startswith(wanted[:-1]):
            return True
    return False


def check_client_upload(
    payload: dict[str, Any], *, pathname: str, content_type: str | None, size: int | None
) -> None:
    """Enforce a verified client token's constraints on one upload (400 errors).

    `content_type`/`size` of None skip that check (e.g. multipart create does not know
    the size yet).
    """
    allowed_path = str(payload.get("pathname", "")).removeprefix("/")
    if pathname.removeprefix("/") != allowed_path:
        raise ClientTokenError(
            "client_token_pathname_mismatch",
            f'The "pathname" of the request ({pathname}) does not match the token payload '
            f"({allowed_path})",
            400,
        )
    allowed = payload.get("allowedContentTypes")
    if (
        content_type is not None
        and isinstance(allowed, list)
        and allowed
        and not _content_type_allowed(content_type, allowed)
    ):
        raise ClientTokenError(
            "content_type_not_allowed",
            f'contentType "{content_type}" is not allowed. Allowed content types: '
            + ", ".join(str(a) for a in allowed),
            400,
        )
    maximum = payload.get("maximumSizeInBytes")
    if (
        size is not None
        and isinstance(maximum, int)
        and not isinstance(maximum, bool)
        and size > maximum
    ):
        raise ClientTokenError(
            "file_too_large",
            f"File size {size} exceeds the token limit: "
            f"the file length cannot be greater than {maximum} bytes",
            400,
        )


class _CallbackSender:
    """Signs and POSTs `blob.upload-completed` callbacks (mixed into `BlobEmulator`)."""

    # ---- callbacks ---------------------------------------------------------------------

    def _schedule_callback(self, token_payload: dict[str, Any], result: dict[str, Any]) -> None:
        completed = token_payload.get("onUploadCompleted")
        if not isinstance(completed, dict) or not completed.get("callbackUrl"):
            return
        tp = completed.get("tokenPayload")
        body = _js_json(
            {
                "type": "blob.upload-completed",
                "payload": {"blob": result, "tokenPayload": tp if tp is not None else None},
            }
        )
        signature = hmac.new(self.token.encode(), body, hashlib.sha256).hexdigest()
        delivery = CallbackDelivery(
            url=str(completed["callbackUrl"]),
            headers={"content-type": "application/json", "x-vercel-signature": signature},
            body=body,
        )
        with self._callbacks_done:
            self._pending_callbacks += 1
        with self._lock:
            self.callbacks.append(delivery)
        threading.Thread(target=self._run_callback, args=(delivery,), daemon=True).start()

    def _run_callback(self, delivery: CallbackDelivery) -> None:
        try:
            self._post_callback(delivery)
        finally:
            with self._callbacks_done:
                self._pending_callbacks -= 1
                self._callbacks_done.notify_all()

    @staticmethod
    def _post_callback(delivery: CallbackDelivery) -> None:
        try:
            response = httpx.post(
                delivery.url,
                content=delivery.body,
                headers=delivery.headers,
                timeout=CALLBACK_TIMEOUT,
            )
            delivery.status = response.status_code
            delivery.response_body = response.content
        except Exception as exc:  # recorded for inspection
            delivery.error = f"{type(exc).__name__}: {exc}"
            log.warning("blob emulator: callback to %s failed: %s", delivery.url, exc)
