"""Standard Webhooks signing, the per-object delivery worker and its retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from typing import Any

import httpx

from dev.replicate_emulator.protocol import Delivery, _Job, _Message


def _encode(payload: Any) -> bytes:
    """JSON as Replicate sends it: UTF-8, with text that UTF-8 cannot hold (a lone surrogate
    set by set_fields) escaped as JSON escapes (`\\ud800`)."""
    try:
        return json.dumps(payload, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(payload).encode()


def sign(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks `v1,` signature of a body with a `whsec_` secret."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _ok(status: int | None) -> bool:
    """Whether a webhook answer counts as delivered."""
    return status is not None and 200 <= status < 300


class _WebhookSender:
    """Queues, signs, POSTs and retries webhooks (mixed into `ReplicateEmulator`)."""

    # --- webhooks ----------------------------------------------------------------------------

    def _emit(self, job: _Job, event: str) -> None:
        """Queue a signed webhook of the object's current JSON (caller holds the lock)."""
        if not job.webhook or self.drop_webhooks or self._mute or event not in job.events:
            return
        body = _encode(self._render(job))
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
