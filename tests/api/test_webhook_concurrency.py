"""50 concurrent, duplicated and reordered deliveries for one training end in one right state."""

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import deliver, progress, started

CONCURRENCY = 50


@pytest.fixture
def history(api, user, stack):
    """A training walked through Replicate with its webhooks lost: every snapshot it showed."""
    body = started(api, user)
    emulator = stack.replicate
    snapshots = [emulator.get_object(body["trainingId"])]
    emulator.drop_webhooks = True
    try:
        for step in range(0, 1000, 50):
            emulator.advance(body["trainingId"], "processing", step=step)
            snapshots.append(emulator.get_object(body["trainingId"]))
        emulator.advance(body["trainingId"], "succeeded")
        snapshots.append(emulator.get_object(body["trainingId"]))
    finally:
        emulator.drop_webhooks = False
    return body, snapshots


def deliver_all_at_once(api, stack, deliveries):
    """POST (webhook_id, payload) pairs from 50 threads released together; their outcomes."""
    gate = threading.Barrier(CONCURRENCY)

    def one(delivery):
        webhook_id, payload = delivery
        gate.wait()
        response = deliver(api, stack, payload, webhook_id=webhook_id)
        assert response.status_code == 200, response.text
        return response.json()["outcome"]

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return list(pool.map(one, deliveries, timeout=60))


def shuffled(deliveries, seed):
    deliveries = list(deliveries)
    random.Random(seed).shuffle(deliveries)
    assert len(deliveries) == CONCURRENCY
    return deliveries


def test_fifty_concurrent_shuffled_deliveries_end_succeeded(api, user, stack, db, history):
    body, snapshots = history
    unique = [(f"msg_{uuid.uuid4().hex}", s) for s in snapshots]  # 22 states
    repeats = [(f"msg_{uuid.uuid4().hex}", s) for s in snapshots[5:11]]  # same state, new id
    deliveries = shuffled(unique * 2 + repeats, seed=4)  # each unique id twice

    outcomes = deliver_all_at_once(api, stack, deliveries)

    assert outcomes.count("duplicate") == len(unique)
    answer = progress(api, user, body["modelId"])
    assert (answer["status"], answer["progress"]) == ("completed", 100)
    version = snapshots[-1]["output"]["version"].split(":")[1]
    assert answer["model"]["replicateVersionId"] == version
    events = db.execute(
        "SELECT count(*) AS n FROM webhook_events WHERE object_id = %s", (body["trainingId"],)
    ).fetchone()
    assert events["n"] == len(unique) + len(repeats)


def test_fifty_concurrent_progress_deliveries_keep_the_highest_step(api, user, stack, db, history):
    body, snapshots = history
    processing = snapshots[1:-1]  # steps 0..950, no terminal state
    deliveries = shuffled(
        [(f"msg_{uuid.uuid4().hex}", s) for s in processing * 2]
        + [(f"msg_{uuid.uuid4().hex}", s) for s in processing[:10]],
        seed=7,
    )

    outcomes = deliver_all_at_once(api, stack, deliveries)

    assert "duplicate" not in outcomes
    answer = progress(api, user, body["modelId"])
    assert (answer["status"], answer["progress"]) == ("training", 95)
