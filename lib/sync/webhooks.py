"""Replicate's webhook deliveries: parsed, recorded once, applied to a training or a generation."""

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from lib.adapters import database
from lib.errors import ApiError
from lib.settings import Settings
from lib.sync import generations, orphans, training_runs, upstream, weights

if TYPE_CHECKING:
    from lib.adapters.clients import Clients

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """What one delivery did, and the network work it leaves for after its transaction."""

    outcome: str  # applied, adopted, canceled, unchanged, duplicate or unknown
    copy: generations.PendingCopy | None = None  # a succeeded prediction's images
    trained: bool = False  # a training succeeded: its weights wait to be copied
    orphan: tuple[str, str] | None = None  # (kind, id) created after we gave up: to cancel

    @property
    def has_follow_up(self) -> bool:
        return self.copy is not None or self.trained or self.orphan is not None


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
        elif (recorded := training_runs.is_training(conn, payload["id"], run_hint)) is not None:
            outcome, applied = orphans.apply_training(
                conn, payload, run_id=run_hint, recorded=recorded
            )
            trained = applied is not None and applied.status == "succeeded"
            delivery = _delivery(outcome, "training", payload, trained=trained)
        elif generation := generations.find_generation(conn, payload["id"], generation_hint):
            outcome, copy = orphans.apply_prediction(conn, generation, payload)
            delivery = _delivery(outcome, "prediction", payload, copy=copy)
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


def follow_up(delivery: Delivery, *, settings: Settings, clients: "Clients") -> None:
    """The network work a delivery leaves (copying images or weights), done once Replicate has
    its answer; a failure is logged and left to the polls and the cron."""
    with database.connect(settings) as conn:
        _follow_up(conn, delivery, clients)


def _follow_up(conn: psycopg.Connection, delivery: Delivery, clients: "Clients") -> None:
    try:
        if delivery.copy:
            generations.copy_outputs(
                conn, delivery.copy, replicate=clients.replicate, storage=clients.storage
            )
        if delivery.trained:
            weights.archive_next(conn, replicate=clients.replicate, storage=clients.storage)
        if delivery.orphan:
            kind, object_id = delivery.orphan
            upstream.cancel_quietly(clients.replicate, object_id, kind=kind)
    except ApiError as error:
        logger.warning("webhook follow-up failed code=%s", error.code)


def _delivery(outcome: str, kind: str, payload: dict[str, Any], **follow_up: Any) -> Delivery:
    if outcome == "cancel":
        return Delivery("canceled", orphan=(kind, payload["id"]))
    return Delivery(outcome, **follow_up)
