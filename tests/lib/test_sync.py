"""The sync core's use cases on a real database: applying snapshots, dispatching deliveries,
claiming quiet rows."""

import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

from lib.sync import polling, statuses, training_runs, webhooks
from tests.helpers import go_quiet, started


@pytest.fixture
def conn(stack):
    with psycopg.connect(stack.database_url, row_factory=dict_row, autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize(
    ("status", "error"),
    [("aborted", "aborted"), ("queued-for-mars", "unknown status")],
)
def test_a_status_we_do_not_rank_becomes_failed_with_a_clear_error(status, error):
    snapshot = statuses.ranked({"id": "t1", "status": status, "error": None})

    assert snapshot["status"] == "failed"
    assert error in snapshot["error"]


def test_a_ranked_status_is_left_as_replicate_said():
    snapshot = {"id": "t1", "status": "processing", "error": None}

    assert statuses.ranked(snapshot) is snapshot


def test_a_snapshot_never_moves_a_run_back(api, user, stack, conn):
    training_id = started(api, user)["trainingId"]
    logs = "flux_train_replicate:  30%|███       | 300/1000 [05:00<11:40,  1.00s/it]"

    ahead = training_runs.apply_snapshot(
        conn, {"id": training_id, "status": "processing", "logs": logs}
    )
    behind = training_runs.apply_snapshot(conn, {"id": training_id, "status": "starting"})

    row = conn.execute(
        "SELECT status, progress FROM training_runs WHERE replicate_training_id = %s",
        (training_id,),
    ).fetchone()
    assert ahead is not None and behind is None
    assert row == {"status": "processing", "progress": 30}


def test_a_delivery_is_applied_once_however_often_it_arrives(api, user, stack, conn):
    training_id = started(api, user)["trainingId"]
    payload = {"id": training_id, "status": "processing", "logs": ""}
    webhook_id = f"msg_{uuid.uuid4().hex}"

    first, again = (
        webhooks.record_webhook(
            conn, webhook_id=webhook_id, payload=payload, run_hint=None, generation_hint=None
        )
        for _ in range(2)
    )

    assert (first.outcome, again.outcome) == ("applied", "duplicate")


def test_a_delivery_for_an_object_we_never_made_is_acknowledged_as_unknown(conn, stack):
    payload = {"id": f"unknown{uuid.uuid4().hex[:12]}", "status": "succeeded"}

    delivery = webhooks.record_webhook(
        conn,
        webhook_id=f"msg_{uuid.uuid4().hex}",
        payload=payload,
        run_hint=None,
        generation_hint=None,
    )

    assert delivery.outcome == "unknown" and not delivery.has_follow_up


def test_a_quiet_run_is_claimed_by_one_poller_only(api, user, stack, db, conn):
    body = started(api, user)
    go_quiet(db, body["trainingId"])
    run_id = db.execute(
        "SELECT id FROM training_runs WHERE replicate_training_id = %s", (body["trainingId"],)
    ).fetchone()["id"]

    with psycopg.connect(stack.database_url, row_factory=dict_row, autocommit=True) as other:
        claims = [
            polling.claim_quiet(c, "training_runs", ids=[run_id], after_seconds=60)
            for c in (conn, other)
        ]

    assert claims == [[body["trainingId"]], []]
