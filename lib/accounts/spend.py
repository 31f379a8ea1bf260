"""What each user spends on Replicate per calendar month (UTC), and the cap on it.

A job reserves its estimated cost in `spend_ledger` inside the transaction that writes its row,
under a per-user advisory lock, so concurrent requests are counted one after another and a
rollback gives the reservation back (as lib/quotas.py does for the daily limits). When the job
ends, whichever path delivered its final state (webhook, poll, cron, our own ending), the
ledger takes Replicate's billed cost in place of the estimate; a cost Replicate never reported
keeps the estimate.

Estimates are steps x seconds per step x the hardware's price. The seconds per step are those
Replicate billed for this deployment's recent successful jobs, or the defaults below before any.
"""

from datetime import UTC, datetime
from decimal import ROUND_UP, Decimal
from typing import Any

import psycopg
from psycopg import pq
from psycopg.types.json import Jsonb

from lib.accounts import costs
from lib.errors import TooManyRequests
from lib.settings import Settings

# A 1,000-step Flux LoRA training runs 20-40 minutes on an H100: 1.5 s a step is ~25 minutes.
DEFAULT_TRAINING_SECONDS_PER_STEP = 1.5
# A Flux dev picture of 28 steps takes a few seconds on an H100.
DEFAULT_IMAGE_SECONDS_PER_STEP = 0.15
# The fine-tuned versions' default num_inference_steps.
DEFAULT_IMAGE_STEPS = 28
MEASURED_JOBS = 20

TRAINING_SECONDS_PER_STEP = """
    SELECT sum(seconds) / nullif(sum(steps), 0) AS per_step FROM (
        SELECT (metrics->>'predict_time')::float8 AS seconds,
               coalesce(total_steps, (parameters->>'steps')::numeric) AS steps
        FROM training_runs
        WHERE status = 'succeeded' AND jsonb_typeof(metrics->'predict_time') = 'number'
        ORDER BY completed_at DESC LIMIT %s
    ) recent
"""
IMAGE_SECONDS_PER_STEP = """
    SELECT sum(seconds) / nullif(sum(steps), 0) AS per_step FROM (
        SELECT (metrics->>'predict_time')::float8 AS seconds,
               coalesce((input->>'num_outputs')::numeric, 1)
               * coalesce((input->>'num_inference_steps')::numeric, %s) AS steps
        FROM generations
        WHERE status = 'succeeded' AND jsonb_typeof(metrics->'predict_time') = 'number'
        ORDER BY completed_at DESC LIMIT %s
    ) recent
"""
MONTH_START = "date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"


def reserve_training(
    conn: psycopg.Connection, *, user_id: str, run_id: Any, steps: int, settings: Settings
) -> None:
    """Reserve a training run's estimated cost, or raise 429 spend_limit."""
    price = costs.price_per_second(
        settings.trainer_hardware, settings.replicate_prices, settings.trainer_hardware
    )
    estimate = _usd(steps * Decimal(str(training_seconds_per_step(conn))) * price)
    _check(conn, user_id, estimate, settings.monthly_spend_limit_usd)
    conn.execute(
        "UPDATE training_runs SET hardware = %s, usd_per_second = %s WHERE id = %s",
        (settings.trainer_hardware, price, run_id),
    )
    conn.execute(
        "INSERT INTO spend_ledger (user_id, kind, training_run_id, estimated_usd, usd_per_second)"
        " VALUES (%s, 'training', %s, %s, %s)",
        (user_id, run_id, estimate, price),
    )


def reserve_generation(
    conn: psycopg.Connection,
    *,
    user_id: str,
    generation_id: Any,
    prediction_input: dict[str, Any],
    hardware: str | None,
    settings: Settings,
) -> None:
    """Reserve a generation's estimated cost (each of its images), or raise 429 spend_limit."""
    price = costs.price_per_second(hardware, settings.replicate_prices, settings.model_hardware)
    conn.execute(
        "UPDATE generations SET hardware = %s, usd_per_second = %s WHERE id = %s",
        (hardware or settings.model_hardware, price, generation_id),
    )
    reserve_images(
        conn,
        user_id=user_id,
        images=prediction_input.get("num_outputs", 1),
        steps=prediction_input.get("num_inference_steps", DEFAULT_IMAGE_STEPS),
        hardware=hardware,
        settings=settings,
        generation_id=generation_id,
    )


def reserve_images(
    conn: psycopg.Connection,
    *,
    user_id: str,
    images: int,
    settings: Settings,
    steps: int = DEFAULT_IMAGE_STEPS,
    hardware: str | None = None,
    generation_id: Any = None,
) -> None:
    """Reserve `images` pictures' estimated cost at once (a pack calls this with its image
    count, in the transaction that writes its generations), or raise 429 spend_limit."""
    price = costs.price_per_second(hardware, settings.replicate_prices, settings.model_hardware)
    per_image = _image_estimate(conn, steps, price)
    _check(conn, user_id, per_image * images, settings.monthly_spend_limit_usd)
    conn.execute(
        "INSERT INTO spend_ledger (user_id, kind, generation_id, estimated_usd, usd_per_second)"
        " SELECT %s, 'image', %s, %s, %s FROM generate_series(1, %s)",
        (user_id, generation_id, per_image, price, images),
    )


def image_estimate(
    conn: psycopg.Connection, *, steps: int, hardware: str | None, settings: Settings
) -> Decimal:
    """The estimated cost of one picture of `steps` steps."""
    price = costs.price_per_second(hardware, settings.replicate_prices, settings.model_hardware)
    return _image_estimate(conn, steps, price)


def _image_estimate(conn: psycopg.Connection, steps: int, price: Decimal) -> Decimal:
    return _usd(steps * Decimal(str(image_seconds_per_step(conn))) * price)


def training_seconds_per_step(conn: psycopg.Connection) -> float:
    """Billed seconds per trainer step over this deployment's recent successful runs."""
    row = conn.execute(TRAINING_SECONDS_PER_STEP, (MEASURED_JOBS,)).fetchone()
    measured = row["per_step"] if row else None
    return float(measured) if measured else DEFAULT_TRAINING_SECONDS_PER_STEP


def image_seconds_per_step(conn: psycopg.Connection) -> float:
    """Billed seconds per inference step of one picture over recent successful generations."""
    row = conn.execute(IMAGE_SECONDS_PER_STEP, (DEFAULT_IMAGE_STEPS, MEASURED_JOBS)).fetchone()
    measured = row["per_step"] if row else None
    return float(measured) if measured else DEFAULT_IMAGE_SECONDS_PER_STEP


def settle_training(conn: psycopg.Connection, run_id: Any, metrics: Any) -> None:
    """Record the ended run's metrics and cost, once, and put its cost in the ledger."""
    run = conn.execute(
        "UPDATE training_runs SET metrics = %s, cost_settled_at = now()"
        " WHERE id = %s AND cost_settled_at IS NULL"
        " RETURNING usd_per_second, replicate_training_id",
        (_jsonb(metrics), run_id),
    ).fetchone()
    if run is None:
        return
    cost = _cost(metrics, run["usd_per_second"], reached=run["replicate_training_id"] is not None)
    conn.execute("UPDATE training_runs SET cost_usd = %s WHERE id = %s", (cost, run_id))
    conn.execute(
        "UPDATE spend_ledger SET cost_usd = %s, settled_at = now()"
        " WHERE training_run_id = %s AND settled_at IS NULL",
        (cost, run_id),
    )


def settle_generation(conn: psycopg.Connection, generation_id: Any, metrics: Any) -> None:
    """Record the ended generation's metrics and cost, once; its images settle their
    reservations (its own, else the oldest a pack left open) at the price they were reserved."""
    generation = conn.execute(
        "UPDATE generations SET metrics = %s, cost_settled_at = now()"
        " WHERE id = %s AND cost_settled_at IS NULL"
        " RETURNING user_id, usd_per_second, replicate_prediction_id, input",
        (_jsonb(metrics), generation_id),
    ).fetchone()
    if generation is None:
        return
    images = max(1, int(generation["input"].get("num_outputs") or 1))
    reserved = conn.execute(
        """
        SELECT id, usd_per_second FROM spend_ledger
        WHERE user_id = %s AND kind = 'image' AND settled_at IS NULL
          AND (generation_id = %s OR generation_id IS NULL)
        ORDER BY generation_id IS NULL, id
        LIMIT %s
        FOR UPDATE SKIP LOCKED  -- a pack's generations ending together settle different rows
        """,
        (generation["user_id"], generation_id, images),
    ).fetchall()
    price = generation["usd_per_second"] or next((r["usd_per_second"] for r in reserved), None)
    reached = generation["replicate_prediction_id"] is not None
    cost = _cost(metrics, price, reached=reached)
    conn.execute("UPDATE generations SET cost_usd = %s WHERE id = %s", (cost, generation_id))
    conn.execute(
        "UPDATE spend_ledger SET cost_usd = %s, settled_at = now() WHERE id = ANY(%s)",
        (None if cost is None else _usd(cost / images), [r["id"] for r in reserved]),
    )


def month_spend(conn: psycopg.Connection, user_id: str) -> Decimal:
    """The user's spend this calendar month (UTC): billed costs, estimates while unknown."""
    row = conn.execute(
        "SELECT coalesce(sum(coalesce(cost_usd, estimated_usd)), 0) AS spent FROM spend_ledger"
        f" WHERE user_id = %s AND created_at >= {MONTH_START}",
        (user_id,),
    ).fetchone()
    return row["spent"]


def month_reset(now: datetime) -> datetime:
    """The start of the next calendar month in UTC, when the monthly spend starts again."""
    now = now.astimezone(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def _check(
    conn: psycopg.Connection, user_id: str, estimate: Decimal, limit: Decimal | None
) -> None:
    if conn.info.transaction_status != pq.TransactionStatus.INTRANS:
        raise RuntimeError("reserve_* must run inside conn.transaction()")
    # Held until commit or rollback: a second request of this user waits here, then counts
    # what the first one reserved. Never check-then-insert without it.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"spend:{user_id}",))
    if limit is None:
        return
    spent = month_spend(conn, user_id)
    if spent + estimate <= limit:
        return
    now = conn.execute("SELECT now() AS now").fetchone()["now"]
    reset = month_reset(now)
    retry_after = max(1, int((reset - now).total_seconds()))
    raise TooManyRequests(
        f"This would take your Replicate spend this month to ${spent + estimate:.2f}, over the"
        f" limit of ${limit:.2f}; the limit resets at {reset.isoformat().replace('+00:00', 'Z')}",
        code="spend_limit",
        headers={"Retry-After": str(retry_after)},
    )


def _cost(metrics: Any, usd_per_second: Decimal | None, *, reached: bool) -> Decimal | None:
    """Replicate's billed cost; 0 for a job that never reached it, or that it ended without
    running (final metrics with no predict_time); None while unknown."""
    seconds = costs.billed_seconds(metrics)
    if seconds is not None:
        return costs.cost_usd(seconds, usd_per_second) if usd_per_second is not None else None
    if not reached or isinstance(metrics, dict):
        return Decimal(0)
    return None


def _usd(amount: Decimal) -> Decimal:
    # Rounded up: an estimate is never 0 for a job that runs at all.
    return amount.quantize(Decimal("0.000001"), rounding=ROUND_UP)


def _jsonb(metrics: Any) -> Jsonb | None:
    return Jsonb(metrics) if isinstance(metrics, dict) else None
