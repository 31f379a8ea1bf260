"""Starting a training and reporting its progress."""

import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from lib.accounts import quotas, spend
from lib.adapters.storage.keys import user_prefix
from lib.errors import BadGateway, BadRequest, Conflict, Unprocessable
from lib.intake import identity
from lib.settings import RECORDED_ONLY_PARAMETERS, TRAINING_INPUT_DEFAULTS, Settings
from lib.sync import snapshots, upstream
from lib.sync.callbacks import replicate_webhook_url
from lib.sync.statuses import TERMINAL_RANK
from lib.sync.training_runs import MAX_URL_LENGTH, apply_snapshot
from lib.training import start_failures, trainer_inputs

if TYPE_CHECKING:  # both pull in httpx; the progress function must not pay for it
    from lib.adapters.replicate import Replicate
    from lib.adapters.storage.base import Storage

logger = logging.getLogger(__name__)

MIN_IMAGES, MAX_IMAGES = 5, 50
IDEMPOTENCY_KEY_PATTERN = r"[!-~]{1,200}"  # printable ASCII, no spaces
TEXT_LIMITS = {"modelName": 100, "modelType": 40, "gender": 40}
# PostgreSQL refuses NUL in text; no control character belongs in a name either.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class StartRequest:
    model_name: str
    model_type: str
    gender: str | None
    image_urls: list[str]

    @classmethod
    def parse(cls, body: dict[str, Any]) -> "StartRequest":
        """Validate the start body; 400 for missing parts, 422 for values out of range."""
        urls = body.get("imageUrls")
        if not isinstance(urls, list) or not all(isinstance(u, str) and u for u in urls):
            raise BadRequest("imageUrls must be a list of image URLs", code="invalid_body")
        if any(len(u) > MAX_URL_LENGTH or CONTROL_CHARACTERS.search(u) for u in urls):
            raise Unprocessable(
                f"Each image URL must be at most {MAX_URL_LENGTH} characters of text",
                code="invalid_image_url",
            )
        urls = list(dict.fromkeys(urls))  # the same picture twice counts once
        if len(urls) < MIN_IMAGES:
            raise BadRequest("At least 5 training images are required", code="not_enough_images")
        if len(urls) > MAX_IMAGES:
            raise Unprocessable(f"At most {MAX_IMAGES} training images", code="too_many_images")
        text = {name: _text(body, name, limit) for name, limit in TEXT_LIMITS.items()}
        if not text["modelName"]:
            raise BadRequest("modelName is required", code="invalid_body")
        return cls(text["modelName"], text["modelType"] or "flux", text["gender"], urls)


@dataclass(frozen=True)
class StartedTraining:
    model_id: str
    training_id: str
    trigger_word: str
    left_out: list[dict[str, str]] = field(default_factory=list)  # url, filename, reason

    def as_json(self) -> dict[str, Any]:
        """The 201 body of POST /api/training/start."""
        return {
            "modelId": self.model_id,
            "trainingId": self.training_id,
            "triggerWord": self.trigger_word,
            "status": "starting",
            "leftOut": self.left_out,
        }


def idempotency_key(value: str | None) -> str | None:
    """The Idempotency-Key header, if sent; 400 unless it is 1–200 printable ASCII characters."""
    if not value:
        return None
    if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, value):
        raise BadRequest(
            "Idempotency-Key must be 1–200 printable ASCII characters",
            code="invalid_idempotency_key",
        )
    return value


def start_training(
    conn: psycopg.Connection,
    *,
    user_id: str,
    request: StartRequest,
    idempotency_key: str | None,
    replicate: "Replicate",
    storage: "Storage",
    settings: Settings,
) -> StartedTraining:
    """Record the run, build and store the ZIP, then start it on Replicate."""
    if idempotency_key:
        earlier = _started_with_key(conn, user_id, idempotency_key)
        if earlier:
            return earlier
    uploads, unusable = _callers_uploads(conn, user_id, request.image_urls)
    # Checked against the trainer's schema before anything is written (503 config_invalid).
    parameters = run_parameters(settings, replicate)
    same = same_person(uploads, storage, unusable=unusable)
    run = _insert_pending_run(
        conn,
        user_id,
        request,
        same.kept,
        parameters,
        idempotency_key,
        settings,
        unusable + same.left_out,
    )
    if isinstance(run, StartedTraining):
        return run
    training_id = launch_run(conn, run, replicate=replicate, storage=storage, settings=settings)
    return StartedTraining(run.model_id, training_id, run.trigger_word, run.left_out)


def same_person(
    uploads: list[dict[str, Any]], storage: "Storage", *, unusable: Sequence[dict[str, str]] = ()
) -> identity.SamePerson:
    """The photos showing the person most of them show (400 when that is not clear, or fewer
    than 5 remain, naming those and the `unusable` ones); run before anything is written."""
    return identity.same_person(uploads, storage=storage, min_images=MIN_IMAGES, unusable=unusable)


def run_parameters(settings: Settings, replicate: "Replicate") -> dict[str, object]:
    """What a new run records as its parameters: the trainer input the trainer version accepts
    (503 config_invalid otherwise) plus recorded-only ones."""
    return {**trainer_inputs.training_input(replicate, settings), **RECORDED_ONLY_PARAMETERS}


@dataclass(frozen=True)
class PendingRun:
    """A training_runs row written but not yet started on Replicate."""

    id: str
    model_id: str
    user_id: str
    trigger_word: str
    gender: str | None  # names the subject in the captions' prefix
    uploads: list[dict[str, Any]]  # selfie_uploads rows: id, url, storage_key, filename
    left_out: list[dict[str, str]] = field(default_factory=list)  # photos sent but not trained on


def launch_run(
    conn: psycopg.Connection,
    run: PendingRun,
    *,
    replicate: "Replicate",
    storage: "Storage",
    settings: Settings,
) -> str:
    """Build and store the ZIP, then start the run on Replicate; any failure ends the run."""
    created = None
    try:
        zip_url = _store_zip(conn, run, storage, settings.face_min_share)
        # Recorded before Replicate is asked to create anything, so no database write sits
        # between creating the destination model and creating the training.
        conn.execute(
            "UPDATE training_runs SET trainer_version = %s WHERE id = %s",
            (replicate.trainer_version(), run.id),
        )
        destination = replicate.ensure_model(f"sselfie-{run.trigger_word}")
        created = snapshots.from_object(
            replicate.create_training(
                destination=destination,
                training_input=trainer_inputs.for_run(
                    trainer_inputs.training_input(replicate, settings),
                    trigger_word=run.trigger_word,
                    gender=run.gender,
                    input_images=zip_url,
                ),
                webhook=replicate_webhook_url(settings, run=run.id),
            )
        )
        conn.execute(
            "UPDATE user_models SET replicate_model_id = %s WHERE id = %s",
            (destination, run.model_id),
        )
        if apply_snapshot(conn, created, run_id=run.id) is None:
            _cancel_if_ended_meanwhile(conn, run.id, created["id"], replicate)
    except Exception as error:
        answer = start_failures.end_failed_start(
            run.id,
            error,
            zip_key=zip_key(run),
            created=created,
            replicate=replicate,
            storage=storage,
            settings=settings,
        )
        raise answer from (None if answer is error else error)
    logger.info("training started run=%s training=%s", run.id, created["id"])
    return created["id"]


def _started_with_key(conn, user_id: str, key: str) -> StartedTraining | None:
    row = conn.execute(
        "SELECT r.model_id, r.replicate_training_id, r.status, r.error, r.left_out,"
        " m.trigger_word"
        " FROM training_runs r"
        " JOIN user_models m ON m.id = r.model_id"
        " WHERE r.user_id = %s AND r.idempotency_key = %s",
        (user_id, key),
    ).fetchone()
    if row is None:
        return None
    if row["status"] == "failed" and row["replicate_training_id"] is None:
        raise Conflict(f"That request failed: {row['error']}", code="request_failed")
    if row["replicate_training_id"] is None:
        raise Conflict("That request is still being processed", code="request_in_progress")
    return StartedTraining(
        str(row["model_id"]), row["replicate_training_id"], row["trigger_word"], row["left_out"]
    )


def _callers_uploads(
    conn, user_id: str, urls: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The caller's usable uploads for these URLs, each distinct picture once (by sha256), and
    the photos the face check found unusable (url, filename, reason): those are left out, and
    named when fewer than 5 usable ones remain."""
    rows = conn.execute(
        "SELECT id, url, storage_key, filename, sha256, usable, unusable_reason"
        " FROM selfie_uploads WHERE user_id = %s AND url = ANY(%s)",
        (user_id, urls),
    ).fetchall()
    by_url = {row["url"]: row for row in rows}
    for url in urls:
        if url not in by_url:
            raise BadRequest(f"{url[:200]} is not one of your uploads", code="unknown_image")
    distinct: dict[str, dict[str, Any]] = {}
    duplicates = []
    for row in (by_url[url] for url in urls):
        first = distinct.setdefault(row["sha256"], row)
        if first is not row:
            duplicates.append(f"{row['filename']} is the same picture as {first['filename']}")
    if duplicates:
        logger.info("identical photos counted once user=%s count=%s", user_id, len(duplicates))
    # usable is NULL for uploads older than the face check: the ZIP builder checks those.
    usable = [row for row in distinct.values() if row["usable"] is not False]
    unusable = [
        {"url": row["url"], "filename": row["filename"], "reason": row["unusable_reason"]}
        for row in distinct.values()
        if row["usable"] is False
    ]
    if unusable:
        logger.info("unusable photos left out user=%s count=%s", user_id, len(unusable))
    if len(usable) < MIN_IMAGES:  # the URLs were distinct: duplicates or unusable photos
        named = duplicates + [f"{item['filename']}: {item['reason']}" for item in unusable]
        raise BadRequest(
            f"At least 5 training images are required ({'; '.join(named)})",
            code="not_enough_images",
        )
    return usable, unusable


def _insert_pending_run(
    conn, user_id, request, uploads, parameters, idempotency_key, settings, left_out
):
    """The model and its pending run, committed before anything is called upstream."""
    for _ in range(5):
        trigger_word = f"user{secrets.randbelow(10**8):08d}"
        try:
            with conn.transaction():
                quotas.reserve_training(conn, user_id, settings.training_daily_limit)
                model = conn.execute(
                    "INSERT INTO user_models (user_id, name, model_type, gender, trigger_word)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                    (user_id, request.model_name, request.model_type, request.gender, trigger_word),
                ).fetchone()
                run = conn.execute(
                    "INSERT INTO training_runs"
                    " (model_id, user_id, parameters, upload_ids, idempotency_key, left_out)"
                    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id, model_id",
                    (
                        model["id"],
                        user_id,
                        Jsonb(parameters),
                        [u["id"] for u in uploads],
                        idempotency_key,
                        Jsonb(left_out),
                    ),
                ).fetchone()
                reserve_spend(conn, user_id, run["id"], parameters, settings)
            return PendingRun(
                str(run["id"]),
                str(run["model_id"]),
                user_id,
                trigger_word,
                request.gender,
                uploads,
                left_out,
            )
        except psycopg.errors.UniqueViolation as error:
            # Which invariant held tells us what to answer; the database decided, not a read.
            constraint = error.diag.constraint_name
            if constraint == "training_runs_one_active_per_user":
                raise Conflict(
                    "A training is already in progress", code="training_in_progress"
                ) from None
            if constraint == "training_runs_idempotency":
                return _started_with_key(conn, user_id, idempotency_key)
            if constraint != "user_models_trigger_word_key":
                raise
    raise AssertionError("no free trigger word after 5 tries")


def reserve_spend(
    conn: psycopg.Connection, user_id: str, run_id: Any, parameters: dict, settings: Settings
) -> None:
    """Reserve a new run's estimated cost (429 spend_limit); rolls back with the run."""
    steps = parameters.get("steps", TRAINING_INPUT_DEFAULTS["steps"])
    spend.reserve_training(conn, user_id=user_id, run_id=run_id, steps=steps, settings=settings)


def zip_key(run: PendingRun) -> str:
    """Where a run's training ZIP is stored (its run id in the name: lib/sync/orphans.py)."""
    return f"{user_prefix(run.user_id)}/trainings/{run.id}.zip"


def _store_zip(
    conn: psycopg.Connection, run: PendingRun, storage: "Storage", min_face_share: float
) -> str:
    # Here, not at the top: the progress function imports this module and never builds a ZIP.
    from lib.intake.dataset import DatasetError, SourceImage, zip_chunks

    key = zip_key(run)
    # Recorded before the upload: whatever happens next, the cron can delete what was stored.
    conn.execute("UPDATE training_runs SET zip_key = %s WHERE id = %s", (key, run.id))
    sources = [SourceImage(u["filename"], u["storage_key"]) for u in run.uploads]
    chunks = zip_chunks(sources, storage, min_face_share=min_face_share)
    try:
        stored = storage.put_stream(key, chunks, "application/zip")
    except DatasetError as error:
        storage.delete([key])  # a local backend may hold the part written before the failure
        raise BadGateway(f"Failed to create training ZIP: {error}", code="zip_failed") from error
    conn.execute(
        "UPDATE training_runs SET zip_key = %s, zip_url = %s WHERE id = %s",
        (stored.key, stored.url, run.id),
    )
    return stored.url


def _cancel_if_ended_meanwhile(
    conn: psycopg.Connection, run_id: str, training_id: str, replicate: "Replicate"
) -> None:
    # Canceled (or given up) while Replicate's create call was in flight: the training exists
    # upstream but our run is over, so record its id and stop it before it bills.
    ended = conn.execute(
        "UPDATE training_runs SET replicate_training_id = %s"
        " WHERE id = %s AND status_rank = %s AND replicate_training_id IS NULL RETURNING id",
        (training_id, run_id, TERMINAL_RANK),
    ).fetchone()
    if not ended:
        return
    logger.info("run ended during create, canceling training=%s", training_id)
    upstream.cancel_quietly(replicate, training_id)


def _text(body: dict[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or CONTROL_CHARACTERS.search(value):
        raise Unprocessable(
            f"{name} must be a string of at most {limit} characters, without control characters"
        )
    return value.strip() or None
