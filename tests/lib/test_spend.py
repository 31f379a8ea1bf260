"""The monthly ledger: estimates from this deployment's past jobs, a pack's images settled."""

import secrets
import uuid
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from psycopg.types.json import Jsonb

from lib.accounts import spend
from lib.adapters import database
from lib.settings import get_settings, load_settings

SETTINGS = load_settings({"REPLICATE_PRICES": '{"gpu-h100": 0.002}'})


@pytest.fixture
def conn(stack) -> Iterator[psycopg.Connection]:
    """A transaction that is rolled back: what a test writes or hides is never seen by others."""
    with (
        database.connect(get_settings()) as connection,
        connection.transaction(force_rollback=True),
    ):
        yield connection


@pytest.fixture
def no_history(conn) -> None:
    conn.execute("UPDATE training_runs SET metrics = NULL WHERE metrics IS NOT NULL")
    conn.execute("UPDATE generations SET metrics = NULL WHERE metrics IS NOT NULL")


def add_model(conn, user_id: str) -> uuid.UUID:
    return conn.execute(
        "INSERT INTO user_models (user_id, name, model_type, trigger_word)"
        " VALUES (%s, 'Me', 'flux', %s) RETURNING id",
        (user_id, f"user{secrets.randbelow(10**8):08d}"),
    ).fetchone()["id"]


def add_succeeded_run(conn, user_id: str, seconds: float, steps: int) -> None:
    conn.execute(
        "INSERT INTO training_runs (model_id, user_id, status, status_rank, parameters,"
        " upload_ids, metrics, completed_at) VALUES (%s, %s, 'succeeded', 3, %s, '{}', %s, now())",
        (
            add_model(conn, user_id),
            user_id,
            Jsonb({"steps": steps}),
            Jsonb({"predict_time": seconds}),
        ),
    )


def add_generation(conn, user_id: str, images: int) -> uuid.UUID:
    return conn.execute(
        "INSERT INTO generations (model_id, user_id, prompt, input, replicate_prediction_id)"
        " VALUES (%s, %s, 'p', %s, %s) RETURNING id",
        (add_model(conn, user_id), user_id, Jsonb({"num_outputs": images}), secrets.token_hex(8)),
    ).fetchone()["id"]


def test_before_any_run_the_documented_defaults_estimate(conn, no_history):
    assert spend.training_seconds_per_step(conn) == spend.DEFAULT_TRAINING_SECONDS_PER_STEP
    assert spend.image_seconds_per_step(conn) == spend.DEFAULT_IMAGE_SECONDS_PER_STEP
    one_image = spend.image_estimate(conn, steps=28, hardware=None, settings=SETTINGS)
    assert one_image == Decimal("0.008400")  # 28 steps x 0.15 s x $0.002


def test_the_seconds_per_step_are_those_replicate_billed_for_recent_runs(conn, no_history):
    add_succeeded_run(conn, "measure-a", seconds=600, steps=1000)
    add_succeeded_run(conn, "measure-b", seconds=1800, steps=2000)

    assert spend.training_seconds_per_step(conn) == pytest.approx(2400 / 3000)


def test_a_packs_images_are_reserved_at_once_and_settled_by_its_generations(conn, no_history):
    user_id = f"pack-{uuid.uuid4().hex[:8]}"
    per_image = spend.image_estimate(conn, steps=28, hardware=None, settings=SETTINGS)

    spend.reserve_images(conn, user_id=user_id, images=3, settings=SETTINGS)
    assert spend.month_spend(conn, user_id) == 3 * per_image
    generation_id = add_generation(conn, user_id, images=1)
    spend.settle_generation(conn, generation_id, {"predict_time": 5.0})
    spend.settle_generation(conn, generation_id, {"predict_time": 5.0})  # delivered twice

    assert spend.month_spend(conn, user_id) == 2 * per_image + Decimal("0.010000")
    open_rows = conn.execute(
        "SELECT count(*) AS n FROM spend_ledger WHERE user_id = %s AND settled_at IS NULL",
        (user_id,),
    ).fetchone()
    assert open_rows["n"] == 2


def test_a_cost_replicate_never_reported_keeps_the_estimate(conn, no_history):
    user_id = f"unknown-{uuid.uuid4().hex[:8]}"
    generation_id = add_generation(conn, user_id, images=2)
    spend.reserve_generation(
        conn,
        user_id=user_id,
        generation_id=generation_id,
        prediction_input={"num_outputs": 2},
        hardware=None,
        settings=SETTINGS,
    )
    estimate = spend.month_spend(conn, user_id)

    spend.settle_generation(conn, generation_id, None)

    assert spend.month_spend(conn, user_id) == estimate > 0
    row = conn.execute("SELECT cost_usd FROM generations WHERE id = %s", (generation_id,))
    assert row.fetchone()["cost_usd"] is None
