"""Applying what Replicate tells us about a prediction: webhooks and polls share one path.

The rules are the trainings' (lib/sync/training_runs.py): the state only moves forward and a
terminal state is never overwritten. A generation counts as succeeded only once its images are
in our storage, because Replicate deletes API outputs after an hour. When copying fails nothing
is written: the webhook answers 502 so Replicate retries it, and the generations endpoint polls
the prediction again once it has been quiet for a while.
"""

import logging
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import psycopg

from lib.accounts import spend
from lib.adapters.storage.keys import user_prefix
from lib.settings import Settings
from lib.sync.training_runs import STATUS_RANK, TERMINAL_RANK, uuid_or_none

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({"webp", "jpg", "jpeg", "png"})
OUTPUTS_GONE = "Replicate returned no images (it removes outputs an hour after a prediction)"


def find_generation(
    conn: psycopg.Connection, prediction_id: str, generation_hint: str | None
) -> dict[str, Any] | None:
    """The generation of a prediction, or the one named in the webhook URL not yet linked."""
    return conn.execute(
        "SELECT id, user_id, input, status_rank FROM generations"
        " WHERE replicate_prediction_id = %s OR (id = %s AND replicate_prediction_id IS NULL)",
        (prediction_id, uuid_or_none(generation_hint)),
    ).fetchone()


def apply_prediction(
    conn: psycopg.Connection,
    generation: dict[str, Any],
    snapshot: dict[str, Any],
    *,
    settings: Settings,
) -> bool:
    """Move the generation forward to what the snapshot says; False when nothing changed."""
    status = snapshot["status"]
    rank = STATUS_RANK[status]
    if rank <= generation["status_rank"]:
        return False
    keys: list[str] = []
    urls: list[str] = []
    error = _error_text(snapshot)
    if status == "succeeded":
        outputs = _output_urls(snapshot.get("output"))
        if outputs:
            keys, urls = _copy_outputs(generation, outputs, settings)
        else:
            status, error = "failed", OUTPUTS_GONE
    row = conn.execute(
        """
        UPDATE generations g SET
            replicate_prediction_id = coalesce(g.replicate_prediction_id, %(rid)s),
            status = %(status)s,
            status_rank = %(rank)s,
            error = %(error)s,
            output_keys = %(keys)s,
            output_urls = %(urls)s,
            completed_at = CASE WHEN %(rank)s = %(terminal)s
                                THEN coalesce(%(completed_at)s, now()) END,
            last_event_at = now()
        WHERE g.id = %(id)s AND g.status_rank < %(rank)s
        RETURNING g.id
        """,
        {
            "id": generation["id"],
            "rid": snapshot["id"],
            "status": status,
            "rank": rank,
            "terminal": TERMINAL_RANK,
            "error": error,
            "keys": keys,
            "urls": urls,
            "completed_at": snapshot.get("completed_at"),
        },
    ).fetchone()
    if row is not None and rank == TERMINAL_RANK:
        spend.settle_generation(conn, generation["id"], snapshot.get("metrics"), settings=settings)
    return row is not None


def _copy_outputs(
    generation: dict[str, Any], urls: list[str], settings: Settings
) -> tuple[list[str], list[str]]:
    """Download each output from Replicate and store it as `<i>.<ext>` under the user's folder."""
    from lib.adapters.clients import get_storage
    from lib.adapters.replicate import Replicate

    replicate, storage = Replicate(settings), get_storage(settings)
    folder = f"{user_prefix(generation['user_id'])}/generations/{generation['id']}"
    stored = []
    for index, url in enumerate(urls):
        download = replicate.download(url)
        key = f"{folder}/{index}.{_extension(url, generation['input'])}"
        stored.append(storage.put(key, download.content, download.content_type))
    logger.info("generation outputs copied generation=%s count=%d", generation["id"], len(stored))
    return [s.key for s in stored], [s.url for s in stored]


def _output_urls(output: Any) -> list[str]:
    if isinstance(output, str):
        return [output]
    if isinstance(output, list):
        return [url for url in output if isinstance(url, str) and url]
    return []


def _extension(url: str, prediction_input: dict[str, Any]) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix.lstrip(".").lower()
    return suffix if suffix in IMAGE_EXTENSIONS else prediction_input.get("output_format", "webp")


def _error_text(snapshot: dict[str, Any]) -> str | None:
    if snapshot["status"] == "canceled":
        return snapshot.get("error") or "Generation was canceled"
    error = snapshot.get("error")
    return str(error)[:2000] if error is not None else None
