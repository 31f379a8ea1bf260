"""Replicate's webhook deliveries: parsed, recorded once, applied to a training or a generation."""

import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from lib.errors import ApiError, BadRequest
from lib.sync import generations, training_runs, weights

if TYPE_CHECKING:
    from lib.adapters.clients import Clients

logger = logging.getLogger(__name__)

REPLICATE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True)
class Delivery:
    """What one delivery did, and the network work it leaves for after its transaction."""

    outcome: str  # applied, unchanged, duplicate or unknown
    copy: generations.PendingCopy | None = None  # a succeeded prediction's images
    trained: bool = False  # a training succeeded: its weights wait to be copied

    @property
    def has_follow_up(self) -> bool:
        return self.copy is not None or self.trained


def parse_payload(body: bytes) -> dict[str, Any]:
    """A webhook body (already verified) as a snapshot of a training or a prediction."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("The webhook body is not JSON", code="invalid_json") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("status"), str):
        raise BadRequest("The webhook body is not a Replicate object", code="invalid_payload")
    if not isinstance(payload.get("id"), str) or not REPLICATE_ID.fullmatch(payload["id"]):
        raise BadRequest("The webhook body has no valid id", code="invalid_payload")
    return payload


def record_webhook(
    conn: psycopg.Connection,
    *,
    webhook_id: str,
    payload: dict[str, Any],
    run_hint: str | None,
    generation_hint: str | None,
) -> Delivery:
    """Apply one verified delivery once, in one transaction: a failure rolls it back so
    Replicate's retry of it is applied."""
    with conn.transaction():
        first = conn.execute(
            "INSERT INTO webhook_events (webhook_id, object_id, status) VALUES (%s, %s, %s)"
            " ON CONFLICT (webhook_id) DO NOTHING RETURNING webhook_id",
            (webhook_id, payload["id"], payload["status"][:40]),
        ).fetchone()
        if first is None:
            delivery = Delivery("duplicate")
        elif training_runs.is_training(conn, payload["id"], run_hint):
            applied = training_runs.apply_snapshot(conn, payload, run_id=run_hint)
            trained = applied is not None and applied.status == "succeeded"
            delivery = Delivery("applied" if applied else "unchanged", trained=trained)
        elif generation := generations.find_generation(conn, payload["id"], generation_hint):
            changed, copy = generations.apply_prediction(conn, generation, payload)
            delivery = Delivery("applied" if changed else "unchanged", copy=copy)
        else:
            delivery = Delivery("unknown")
    logger.info(
        "webhook webhook_id=%s object=%s status=%s outcome=%s",
        webhook_id,
        payload["id"],
        payload["status"][:40],
        delivery.outcome,
    )
    return delivery


def follow_up(conn: psycopg.Connection, delivery: Delivery, *, clients: "Clients") -> None:
    """The network work a delivery leaves (copying images or weights), done outside its
    transaction; a failure is logged and left to the polls and the cron."""
    try:
        if delivery.copy:
            generations.copy_outputs(
                conn, delivery.copy, replicate=clients.replicate, storage=clients.storage
            )
        if delivery.trained:
            weights.archive_next(conn, replicate=clients.replicate, storage=clients.storage)
    except ApiError as error:
        logger.warning("webhook follow-up failed code=%s", error.code)
