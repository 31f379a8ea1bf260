"""Studio packs: curated prompt sets, each image one generation under the generate rules.

The packs are a data file (lib/studio/packs.json) an app edits to add its own. Starting a pack
counts all its images against the daily limit at once, so it starts whole or not at all.
"""

import json
import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from lib.accounts import quotas, spend, user_models
from lib.errors import ApiError, BadRequest, ConfigError, NotFound
from lib.settings import Settings
from lib.studio import generate
from lib.studio.pack_runs import WITH_COST, pack_run_json
from lib.sync import generations

if TYPE_CHECKING:
    from lib.adapters.replicate import Replicate

logger = logging.getLogger(__name__)

PACKS_FILE = Path(__file__).with_name("packs.json")
PACK_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
MIN_IMAGES, MAX_IMAGES = 4, 12
TRIGGER, SUBJECT = "{trigger}", "{subject}"
# The subject class a prompt names, from the model's free-text gender.
SUBJECTS = {"woman": "woman", "female": "woman", "girl": "woman", "man": "man", "male": "man"}
RUNS_LISTED = 50


@dataclass(frozen=True)
class Pack:
    id: str
    name: str
    description: str
    prompts: tuple[str, ...]
    options: dict[str, Any]  # what the generate body would carry besides the prompt

    def summary(self) -> dict[str, Any]:
        """The pack as GET /api/studio/packs lists it."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "imageCount": len(self.prompts),
        }

    def prompt(self, index: int, model: dict[str, Any]) -> str:
        """Prompt `index` for a model: its trigger word (once) and its subject class."""
        subject = SUBJECTS.get((model["gender"] or "").strip().lower(), "person")
        text = self.prompts[index].replace(SUBJECT, subject)
        return text.replace(TRIGGER, model["trigger_word"])


def request_ids(body: dict[str, Any]) -> tuple[str, str]:
    """The (modelId, packId) of a POST body."""
    ids = tuple(body.get(name) for name in ("modelId", "packId"))
    for name, value in zip(("modelId", "packId"), ids, strict=True):
        if not isinstance(value, str) or not value.strip():
            raise BadRequest(f"{name} is required", code="invalid_body")
    return ids[0].strip(), ids[1].strip()


@cache
def all_packs() -> dict[str, Pack]:
    """The packs of the data file, checked once per instance."""
    try:
        entries = json.loads(PACKS_FILE.read_text())["packs"]
        packs = {pack.id: pack for pack in map(_pack, entries)}
        if len(packs) != len(entries):
            raise ValueError("two packs have the same id")
        return packs
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{PACKS_FILE.name} is not a valid pack file: {error}") from None


def find_pack(pack_id: str) -> Pack:
    """A pack by id; 404 pack_not_found."""
    pack = all_packs().get(pack_id)
    if pack is None:
        raise NotFound("No such pack", code="pack_not_found")
    return pack


def start_pack(
    conn: psycopg.Connection,
    *,
    user_id: str,
    model_id: str,
    pack_id: str,
    replicate: "Replicate",
    settings: Settings,
) -> dict[str, Any]:
    """Start one generation per image of the pack with the caller's trained model; the run."""
    pack = find_pack(pack_id)
    model = generate.ready_model(conn, user_id=user_id, model_id=model_id)
    inputs = [
        generate.with_model(model, pack.prompt(index, model), pack.options)
        for index in range(len(pack.prompts))
    ]
    images = sum(prediction_input["num_outputs"] for prediction_input in inputs)
    with conn.transaction():
        # The whole pack is paid for here, at once, or 429 and nothing is written: the daily
        # image quota, and the monthly spend reservation (MONTHLY_SPEND_LIMIT_USD) beside it.
        quotas.reserve_generation(conn, user_id, settings.generation_daily_limit, images)
        spend.reserve_images(conn, user_id=user_id, images=images, settings=settings)
        run = conn.execute(
            "INSERT INTO pack_runs (model_id, user_id, pack_id, total) VALUES (%s, %s, %s, %s)"
            " RETURNING id",
            (model["id"], user_id, pack.id, len(inputs)),
        ).fetchone()
        pending = [generate.insert_pending(conn, model, i, pack_run_id=run["id"]) for i in inputs]
    _start_all(conn, pending, model, replicate=replicate, settings=settings)
    logger.info("pack started run=%s pack=%s images=%d", run["id"], pack.id, len(inputs))
    return pack_run_json(_run(conn, run["id"]))


def list_runs(conn: psycopg.Connection, *, user_id: str, model_id: str) -> list[dict[str, Any]]:
    """The runs of the caller's model, newest first."""
    model = user_models.find_model(conn, user_id=user_id, model_id=model_id)
    rows = conn.execute(
        f"SELECT {WITH_COST} FROM pack_runs WHERE model_id = %s"
        " ORDER BY created_at DESC, id LIMIT %s",
        (model["id"], RUNS_LISTED),
    ).fetchall()
    return [pack_run_json(row) for row in rows]


def _start_all(
    conn: psycopg.Connection,
    pending: list[dict[str, Any]],
    model: dict[str, Any],
    *,
    replicate: "Replicate",
    settings: Settings,
) -> None:
    """Start each prediction; once Replicate refuses one, the rest fail with the same reason
    rather than each waiting on it again (the run still completes, counting them failed)."""
    refused: ApiError | None = None
    for generation in pending:
        if refused is not None:
            generations.end_generation(conn, generation["id"], error=refused.message)
            continue
        try:
            generate.start_prediction(
                conn, generation, model, replicate=replicate, settings=settings
            )
        except ApiError as error:
            logger.warning(
                "pack generation not started generation=%s code=%s", generation["id"], error.code
            )
            refused = error


def _pack(entry: dict[str, Any]) -> Pack:
    pack_id, prompts = entry["id"], entry["prompts"]
    if not (isinstance(pack_id, str) and PACK_ID.fullmatch(pack_id)):
        raise ValueError(f"pack id {pack_id!r} must be lowercase letters, digits and dashes")
    if not (isinstance(prompts, list) and MIN_IMAGES <= len(prompts) <= MAX_IMAGES):
        raise ValueError(f"pack {pack_id} must have {MIN_IMAGES} to {MAX_IMAGES} prompts")
    for prompt in prompts:
        if not isinstance(prompt, str) or prompt.count(TRIGGER) != 1:
            raise ValueError(f"each prompt of pack {pack_id} must hold {TRIGGER} exactly once")
    body = {"modelId": "-", "aspectRatio": entry.get("aspectRatio")}
    try:  # the generate body's rules: the same limits and defaults as one prompt
        parsed = [generate.GenerateRequest.parse({**body, "prompt": p}) for p in prompts]
    except ApiError as error:
        raise ValueError(f"pack {pack_id}: {error.message}") from None
    options = parsed[0].options
    return Pack(pack_id, str(entry["name"]), str(entry["description"]), tuple(prompts), options)


def _run(conn: psycopg.Connection, run_id: Any) -> dict[str, Any]:
    return conn.execute(f"SELECT {WITH_COST} FROM pack_runs WHERE id = %s", (run_id,)).fetchone()
