"""An app's end of our events, for `make dev` and the tests: verify, keep, answer.

It does what the README asks of an app: verify each delivery with the `standardwebhooks`
library over the raw body, deduplicate by `webhook-id`, answer 2xx. `fail_next(n)` makes it
answer 503 to the next n deliveries, to watch the retries. `GET` lists what arrived.
"""

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class AppReceiver:
    """A WSGI app standing in for the app that receives our events."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.deliveries: list[Delivery] = []
        self._failures_left = 0
        self._failing_about: str | None = None
        self._changed = threading.Condition()

    def fail_next(self, count: int, about: str | None = None) -> None:
        """Answer 503 to the next `count` deliveries (only those whose data has id `about`)."""
        with self._changed:
            self._failures_left, self._failing_about = count, about

    def events(self) -> list[dict]:
        """Each event once (by webhook-id), in arrival order, from deliveries answered 2xx."""
        seen: dict[str, dict] = {}
        for delivery in list(self.deliveries):
            if delivery.answered < 300 and delivery.webhook_id not in seen:
                seen[delivery.webhook_id] = {"webhookId": delivery.webhook_id, **delivery.event}
        return list(seen.values())

    def wait_for(self, predicate: Callable[[list[Delivery]], bool], timeout: float = 15) -> None:
        """Block until `predicate(deliveries)` holds; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self.deliveries)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"not received in {timeout} s: {self.deliveries}")
                self._changed.wait(left)

    def _fails(self, body: bytes) -> bool:
        about = self._failing_about
        return self._failures_left > 0 and (about is None or _about(body) == about)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "GET":
            return _answer(start_response, 200, {"events": self.events()})
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        try:
            Webhook(self.secret).verify(body, headers)
            verified = True
        except (WebhookVerificationError, ValueError):
            verified = False
        with self._changed:
            status = 401 if not verified else 503 if self._fails(body) else 200
            self._failures_left -= status == 503
            webhook_id = headers.get("webhook-id", "")
            self.deliveries.append(Delivery(webhook_id, headers, body, verified, status))
            self._changed.notify_all()
        return _answer(start_response, status, {"received": status == 200})


def _about(body: bytes) -> str | None:
    try:
        return json.loads(body)["data"].get("id")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _answer(start_response: Callable, status: int, body: dict) -> list[bytes]:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 401: "Unauthorized", 503: "Service Unavailable"}[status]
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]
