"""Applying what Replicate tells us about a prediction: webhooks, polls and the cron share it.

The rules are the trainings' (lib/sync/training_runs.py): the state only moves forward and a
terminal state is never overwritten. A generation counts as succeeded only once its images are
in our storage, because Replicate deletes API outputs after an hour. The copy is network work,
so it never runs inside a transaction: applying a succeeded snapshot only moves the row to
`processing` and hands back a `PendingCopy`; `copy_outputs` then claims the row, copies, and
commits the result. A copy that fails or dies leaves the row `processing`, and the next poll of
the quiet generation (the gallery's or the cron's) copies again.
"""

import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psycopg

from lib.accounts import spend
from lib.adapters.database import atomic, atomically
from lib.adapters.storage.keys import user_prefix
from lib.app_events import state_changes
from lib.errors import ApiError
from lib.sync.statuses import STATUS_RANK, TERMINAL_RANK, ranked
from lib.sync.training_runs import uuid_or_none

if TYPE_CHECKING:  # both pull in httpx; the webhook answers most deliveries without them
    from lib.adapters.replicate import Replicate
    from lib.adapters.storage.base import Storage

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({"webp", "jpg", "jpeg", "png"})
OUTPUTS_GONE = "Replicate returned no images (it removes outputs an hour after a prediction)"
CANCELED_ERROR = "Generation was canceled"
# A claimed copy not finished after this long died with its function; it may be claimed again.
COPY_RECLAIM_MINUTES = 5
PROCESSING_RANK = STATUS_RANK["processing"]


@dataclass(frozen=True)
class PendingCopy:
    """A succeeded prediction whose images are still only on Replicate."""

    generation_id: str
    user_id: str
    output_urls: list[str]
    output_format: str


def find_generation(
    conn: psycopg.Connection, prediction_id: str, generation_hint: str | None
) -> dict[str, Any] | None:
    """The generation of a prediction, or the one named in the webhook URL not yet linked."""
    return conn.execute(
        "SELECT id, user_id, input, status_rank FROM generations"
        " WHERE replicate_prediction_id = %s OR (id = %s AND replicate_prediction_id IS NULL)",
        (prediction_id, uuid_or_none(generation_hint)),
    ).fetchone()


@atomically  # the state change and what follows it are written together
def apply_prediction(
    conn: psycopg.Connection, generation: dict[str, Any], snapshot: dict[str, Any]
) -> tuple[bool, PendingCopy | None]:
    """Move the generation toward what the snapshot says: whether the row changed, and the
    images to copy (outside any transaction) when the prediction succeeded."""
    snapshot = ranked(snapshot)
    status, error = snapshot["status"], _error_text(snapshot)
    copy = None
    if status == "succeeded":
        outputs = _output_urls(snapshot.get("output"))
        if outputs:
            output_format = generation["input"].get("output_format", "webp")
            copy = PendingCopy(str(generation["id"]), generation["user_id"], outputs, output_format)
            status = "processing"  # succeeded once the images are ours
        else:
            status, error = "failed", OUTPUTS_GONE
    rank = STATUS_RANK[status]
    row = conn.execute(
        """
        UPDATE generations g SET
            replicate_prediction_id = coalesce(g.replicate_prediction_id, %(rid)s),
            status = CASE WHEN %(rank)s > g.status_rank THEN %(status)s ELSE g.status END,
            status_rank = GREATEST(g.status_rank, %(rank)s),
            error = CASE WHEN %(rank)s = %(terminal)s THEN %(error)s ELSE g.error END,
            completed_at = CASE WHEN %(rank)s = %(terminal)s
                                THEN coalesce(%(completed_at)s, now()) END,
            last_event_at = now()
        WHERE g.id = %(id)s AND g.status_rank < %(terminal)s
        RETURNING (%(rank)s > %(old_rank)s) AS moved
        """,
        {
            "id": generation["id"],
            "rid": snapshot["id"],
            "status": status,
            "rank": rank,
            "old_rank": generation["status_rank"],
            "terminal": TERMINAL_RANK,
            "error": error,
            "completed_at": snapshot.get("completed_at"),
        },
    ).fetchone()
    if row is None:
        return False, None
    if STATUS_RANK[snapshot["status"]] == TERMINAL_RANK:  # Replicate's final state: billed
        spend.settle_generation(conn, generation["id"], snapshot.get("metrics"))
    if rank == TERMINAL_RANK:
        state_changes.generation_ended(conn, generation["id"])
    return row["moved"], copy


@atomically
def end_generation(
    conn: psycopg.Connection,
    generation_id: Any,
    *,
    error: str,
    below_rank: int = TERMINAL_RANK,
    create_unanswered: bool = False,
) -> bool:
    """Fail a generation here unless it already reached `below_rank`: the only way we end one
    ourselves. `create_unanswered` when Replicate may yet create its prediction."""
    row = conn.execute(
        "UPDATE generations SET status = 'failed', status_rank = %s, error = %s,"
        " completed_at = now(), create_unanswered = %s"
        " WHERE id = %s AND status_rank < %s RETURNING id",
        (TERMINAL_RANK, error, create_unanswered, generation_id, below_rank),
    ).fetchone()
    if row is not None:
        spend.settle_generation(conn, generation_id, None)
        state_changes.generation_ended(conn, generation_id)
    return row is not None


def copy_outputs(
    conn: psycopg.Connection, copy: PendingCopy, *, replicate: "Replicate", storage: "Storage"
) -> bool:
    """Claim the generation, copy its images into our storage, then mark it succeeded.

    False when another request holds the claim, the generation ended meanwhile, or the copy
    failed (logged; a later poll copies again).
    """
    if not _claim_copy(conn, copy.generation_id):
        return False
    folder = f"{user_prefix(copy.user_id)}/generations/{copy.generation_id}"
    stored = []
    try:
        for index, url in enumerate(copy.output_urls):
            download = replicate.download(url)
            key = f"{folder}/{index}.{_extension(url, copy.output_format)}"
            stored.append(storage.put(key, download.content, download.content_type))
    except ApiError as error:
        conn.execute(
            "UPDATE generations SET copy_claimed_at = NULL WHERE id = %s", (copy.generation_id,)
        )
        logger.warning("copy failed generation=%s code=%s", copy.generation_id, error.code)
        storage.delete([s.key for s in stored])
        return False
    with atomic(conn):  # the state change and what follows it are written together
        done = conn.execute(
            "UPDATE generations SET status = 'succeeded', status_rank = %s, output_keys = %s,"
            " output_urls = %s, completed_at = now(), last_event_at = now(),"
            " copy_claimed_at = NULL"
            " WHERE id = %s AND status_rank < %s RETURNING id",
            (
                TERMINAL_RANK,
                [s.key for s in stored],
                [s.url for s in stored],
                copy.generation_id,
                TERMINAL_RANK,
            ),
        ).fetchone()
        if done is not None:
            state_changes.generation_ended(conn, copy.generation_id)
    if done is None:  # ended (or deleted) while we copied: its images are nobody's
        storage.delete([s.key for s in stored])
        return False
    logger.info("generation outputs copied generation=%s count=%d", copy.generation_id, len(stored))
    return True


def _claim_copy(conn: psycopg.Connection, generation_id: str) -> bool:
    row = conn.execute(
        "UPDATE generations SET copy_claimed_at = now()"
        " WHERE id = %s AND status_rank = %s"
        " AND (copy_claimed_at IS NULL"
        "      OR copy_claimed_at < now() - make_interval(mins => %s)) RETURNING id",
        (generation_id, PROCESSING_RANK, COPY_RECLAIM_MINUTES),
    ).fetchone()
    return row is not None


def _output_urls(output: Any) -> list[str]:
    if isinstance(output, str):
        return [output]
    if isinstance(output, list):
        return [url for url in output if isinstance(url, str) and url]
    return []


def _extension(url: str, output_format: str) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix.lstrip(".").lower()
    return suffix if suffix in IMAGE_EXTENSIONS else output_format


def _error_text(snapshot: dict[str, Any]) -> str | None:
    if snapshot["status"] == "canceled":
        return snapshot.get("error") or CANCELED_ERROR
    error = snapshot.get("error")
    return str(error)[:2000] if error is not None else None
