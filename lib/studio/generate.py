"""Studio: generating pictures with a trained model, and the gallery of what was generated."""

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from lib.accounts import quotas, spend, user_models
from lib.adapters import database
from lib.adapters.clients import Clients
from lib.errors import ApiError, BadRequest, Conflict, Unprocessable
from lib.settings import Settings
from lib.studio.gallery import generation_json
from lib.sync import generations, polling, snapshots
from lib.sync.callbacks import replicate_webhook_url
from lib.sync.statuses import TERMINAL_RANK
from lib.training.start_failures import UNANSWERED_CODES, answer_for

if TYPE_CHECKING:  # pulls in httpx; the generations function must not pay for it
    from lib.adapters.replicate import Replicate

logger = logging.getLogger(__name__)

PROMPT_LIMIT = 2000
GALLERY_LIMIT = 100
ASPECT_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
OUTPUT_FORMATS = ("webp", "jpg", "png")
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class GenerateRequest:
    model_id: str
    prompt: str
    options: dict[str, Any]  # by Replicate's input names, defaults applied

    @classmethod
    def parse(cls, body: dict[str, Any]) -> "GenerateRequest":
        """Validate the generate body; 400 for missing parts, 422 for values out of range."""
        model_id, prompt = body.get("modelId"), body.get("prompt")
        if not isinstance(model_id, str) or not model_id.strip():
            raise BadRequest("modelId is required", code="invalid_body")
        if not isinstance(prompt, str) or not prompt.strip():
            raise BadRequest("prompt is required", code="invalid_body")
        if len(prompt) > PROMPT_LIMIT:
            raise Unprocessable(f"prompt must be at most {PROMPT_LIMIT} characters")
        options = {
            "num_outputs": _number(body, "numOutputs", 1, 4, default=1, whole=True),
            "aspect_ratio": _choice(body, "aspectRatio", ASPECT_RATIOS),
            "output_format": _choice(body, "outputFormat", OUTPUT_FORMATS),
            "lora_scale": _number(body, "loraScale", -1, 3, default=1, whole=False),
        }
        seed = _number(body, "seed", 0, MAX_SEED, default=None, whole=True)
        if seed is not None:
            options["seed"] = seed
        return cls(model_id.strip(), prompt.strip(), options)


def with_trigger_word(prompt: str, trigger_word: str) -> str:
    """The prompt with the trigger word in it once: left where the user wrote it, else first."""
    if re.search(rf"\b{re.escape(trigger_word)}\b", prompt):
        return prompt
    return f"{trigger_word} {prompt}"


def generate(
    conn: psycopg.Connection,
    *,
    user_id: str,
    request: GenerateRequest,
    replicate: "Replicate",
    settings: Settings,
) -> dict[str, Any]:
    """Record the generation, then start a prediction on the model's own trained version."""
    model = ready_model(conn, user_id=user_id, model_id=request.model_id)
    prediction_input = with_model(model, request.prompt, request.options)
    hardware = _reported_hardware(replicate, model["replicate_model_id"])
    with conn.transaction():
        # In the same transaction: a reservation and its generation are written together or not.
        quotas.reserve_generation(
            conn, user_id, settings.generation_daily_limit, prediction_input["num_outputs"]
        )
        generation = insert_pending(conn, model, prediction_input)
        spend.reserve_generation(
            conn,
            user_id=user_id,
            generation_id=generation["id"],
            prediction_input=prediction_input,
            hardware=hardware,
            settings=settings,
        )
    start_prediction(conn, generation, model, replicate=replicate, settings=settings)
    return generation_json(_generation(conn, generation["id"]))


def _reported_hardware(replicate: "Replicate", model_ref: str) -> str | None:
    """The hardware Replicate reports for the trained model; None (the configured default)
    when it reports none or cannot be asked now."""
    try:
        return replicate.model_hardware(model_ref)
    except ApiError as error:
        logger.warning("model hardware unknown model=%s code=%s", model_ref, error.code)
        return None


def ready_model(conn: psycopg.Connection, *, user_id: str, model_id: str) -> dict[str, Any]:
    """The caller's model with its trained version; 404 as any other, 409 until trained."""
    model = user_models.find_model(conn, user_id=user_id, model_id=model_id)
    if model["run_status"] != "succeeded" or not model["replicate_version_id"]:
        raise Conflict("The model has not finished training", code="model_not_ready")
    return model


def with_model(model: dict[str, Any], prompt: str, options: dict[str, Any]) -> dict[str, Any]:
    """The prediction input for a prompt: the model's trigger word in it once, then options."""
    return {"prompt": with_trigger_word(prompt, model["trigger_word"]), **options}


def insert_pending(
    conn: psycopg.Connection,
    model: dict[str, Any],
    prediction_input: dict[str, Any],
    *,
    pack_run_id: Any = None,
) -> dict[str, Any]:
    """The pending generation (committed, with its reservation, before Replicate is called)."""
    return conn.execute(
        "INSERT INTO generations (model_id, user_id, prompt, input, pack_run_id)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id, user_id, input, status_rank",
        (
            model["id"],
            model["user_id"],
            prediction_input["prompt"],
            Jsonb(prediction_input),
            pack_run_id,
        ),
    ).fetchone()


def start_prediction(
    conn: psycopg.Connection,
    generation: dict[str, Any],
    model: dict[str, Any],
    *,
    replicate: "Replicate",
    settings: Settings,
) -> None:
    """Start the pending generation's prediction on the model's version; on failure the
    generation fails and the error to answer with is raised."""
    snapshot = None
    try:
        snapshot = snapshots.from_object(
            replicate.create_prediction(
                version=f"{model['replicate_model_id']}:{model['replicate_version_id']}",
                prediction_input=generation["input"],
                webhook=replicate_webhook_url(settings, generation=str(generation["id"])),
            )
        )
        generations.apply_prediction(conn, generation, snapshot)
    except Exception as error:
        answer = _end_failed_generate(generation["id"], error, snapshot, settings)
        raise answer from (None if answer is error else error)
    logger.info("generation started generation=%s prediction=%s", generation["id"], snapshot["id"])


def list_generations(
    conn: psycopg.Connection, *, user_id: str, model_id: str, settings: Settings, clients: Clients
) -> list[dict[str, Any]]:
    """The model's generations, newest first; Replicate is asked about live ones gone quiet."""
    model = user_models.find_model(conn, user_id=user_id, model_id=model_id)
    rows = _generations(conn, model["id"])
    live = [row["id"] for row in rows if row["status_rank"] < TERMINAL_RANK]
    claimed = polling.claim_quiet(
        conn, "generations", ids=live, after_seconds=settings.progress_poll_seconds
    )
    if claimed:
        _poll(conn, claimed, clients)
        rows = _generations(conn, model["id"])
    return [generation_json(row) for row in rows]


def _poll(conn: psycopg.Connection, prediction_ids: list[str], clients: Clients) -> None:
    try:
        replicate = clients.replicate
    except ApiError as error:
        # No token here: the stored state is still the best answer; the cron keeps trying.
        logger.warning("quiet generations not polled code=%s", error.code)
        return
    polling.poll_predictions(conn, prediction_ids, replicate=replicate, storage=clients.storage)


def _end_failed_generate(
    generation_id: Any, error: Exception, snapshot: dict[str, Any] | None, settings: Settings
) -> ApiError:
    """Fail a generation whose request broke after its row was written, on a connection of its
    own (the request's may be what died); the error to answer with. A prediction whose answer
    never came may still be created: its webhook or the cron then adopts it."""
    answer = answer_for(error, doing="starting the generation")
    unanswered = snapshot is None and answer.code in UNANSWERED_CODES
    try:
        with database.connect_fresh(settings) as conn:
            generations.end_generation(
                conn, generation_id, error=answer.message, create_unanswered=unanswered
            )
    except (ApiError, psycopg.Error):
        logger.error(
            "failed generation not recorded generation=%s (the cron fails it)", generation_id
        )
    return answer


def _generation(conn: psycopg.Connection, generation_id: Any) -> dict[str, Any]:
    return conn.execute("SELECT * FROM generations WHERE id = %s", (generation_id,)).fetchone()


def _generations(conn: psycopg.Connection, model_id: Any) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT * FROM generations WHERE model_id = %s ORDER BY created_at DESC, id LIMIT %s",
        (model_id, GALLERY_LIMIT),
    ).fetchall()


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = body.get(name)
    if value is None:
        return choices[0]
    if value not in choices:
        raise Unprocessable(f"{name} must be one of {', '.join(choices)}")
    return value


def _number(
    body: dict[str, Any], name: str, low: int, high: int, *, default: Any, whole: bool
) -> Any:
    value = body.get(name)
    if value is None:
        return default
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise Unprocessable(f"{name} must be {kind} from {low} to {high}")
    return value
