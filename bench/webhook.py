"""Replicate webhooks through the local server while a training's logs grow to 2 MB.

For each of --trainings trainings, --events signed `logs` deliveries are POSTed one after the
other (as Replicate sends one object's webhooks), their logs growing evenly to --max-log-mb,
then the `completed` one. Reported:

  1. deliveries per second by log size, through the router against real PostgreSQL
     (median and min over the trainings);
  2. the trainer-progress parse per event against log size (median and min of --repeats),
     against a baseline that scans the whole log with the same pattern, measured in the same run;
  3. database writes per training: training_runs UPDATEs (pg_stat_user_tables.n_tup_upd)
     against deliveries -- a delivery that moves neither status nor progress writes nothing.

    TEST_DATABASE_URL=postgresql://... .venv/bin/python -m bench.webhook --trainings 3
"""

import argparse
import statistics
import time
import timeit
from datetime import UTC, datetime

import httpx
import psycopg

from bench.local import new_training, start_local_stack
from dev.replicate_emulator import fixtures as fx
from lib.adapters.database import close_pools
from lib.sync.trainer_logs import _TRAINER_LINE, parse_progress
from tests.helpers import deliver, signed_delivery

TOTAL_STEPS = 1000
SIZE_BUCKETS_MB = (0.5, 1.0, 1.5, 2.0)
PARSE_SIZES_KB = (16, 128, 512, 1024, 2048)


def trainer_log(size: int, seed: str) -> str:
    """A trainer-like log of about `size` bytes: warnings and samples between step lines."""
    head = "".join(fx.training_log_head({}, datetime(2026, 1, 1, tzinfo=UTC)))
    per_step = max(0, size - len(head)) // TOTAL_STEPS
    warning = "W1123 torch/_dynamo: recompiling, guard failed on a tensor's shape. "
    noise = (warning * (per_step // len(warning) + 1))[: max(0, per_step - 110)]
    lines = [head]
    for step in range(TOTAL_STEPS + 1):
        lines.append(noise + "\n" + fx.training_progress_line(step, TOTAL_STEPS, seed))
    return "".join(lines)


def step_boundaries(log: str) -> list[int]:
    """Where each step's line ends in the log: the log an event at step N carries."""
    ends, position = [], 0
    for _ in range(TOTAL_STEPS + 1):
        position = log.index(f"/{TOTAL_STEPS} [", position)
        position = log.index("\n", position) + 1
        ends.append(position)
    return ends


def one_training(api: httpx.Client, stack, db, events: int, max_bytes: int) -> dict:
    """Deliver one training's events; per-delivery seconds by log size and the UPDATE count."""
    _, body = new_training(api)
    snapshot = stack.replicate.get_object(body["trainingId"])
    log = trainer_log(max_bytes, body["trainingId"])
    ends = step_boundaries(log)
    updates_before = _updates(db)
    timings: list[tuple[int, float]] = []
    for index in range(1, events + 1):
        logs = log[: ends[index * TOTAL_STEPS // events]]
        raw, headers = signed_delivery(stack, {**snapshot, "status": "processing", "logs": logs})
        began = time.perf_counter()
        response = api.post("/api/webhooks/replicate", content=raw, headers=headers)
        timings.append((len(logs), time.perf_counter() - began))
        assert response.status_code == 200, response.text
    final = {**snapshot, "status": "succeeded", "logs": log, "output": {"version": "o/m:v"}}
    assert deliver(api, stack, final).status_code == 200
    return {"timings": timings, "updates": _updates(db) - updates_before, "deliveries": events + 1}


def _updates(db: psycopg.Connection) -> int:
    # A backend reports its statistics when it exits: close the pool's, give them a moment,
    # read afresh.
    close_pools()
    time.sleep(1.0)
    db.execute("SELECT pg_stat_clear_snapshot()")
    row = db.execute(
        "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'training_runs'"
    ).fetchone()
    return row[0]


def by_size(timings: list[tuple[int, float]]) -> list[float]:
    """Median seconds per delivery in each log-size bucket."""
    buckets: list[list[float]] = [[] for _ in SIZE_BUCKETS_MB]
    for size, seconds in timings:
        index = next(
            (i for i, mb in enumerate(SIZE_BUCKETS_MB) if size <= mb * 1024 * 1024),
            len(SIZE_BUCKETS_MB) - 1,
        )
        buckets[index].append(seconds)
    return [statistics.median(b) if b else float("nan") for b in buckets]


def parse_times(repeats: int, max_bytes: int) -> list[tuple[int, list[float], list[float]]]:
    """Per log size: seconds of parse_progress and of a whole-log scan, `repeats` samples each."""
    full = trainer_log(max_bytes, "parse")
    ends = step_boundaries(full)
    results = []
    for kb in PARSE_SIZES_KB:
        # The log as an event carries it when it has grown to `kb`: a prefix of the final one.
        log = full[: max([end for end in ends if end <= kb * 1024], default=ends[0])]
        ours = timeit.repeat(lambda log=log: parse_progress(log), number=20, repeat=repeats)
        whole = timeit.repeat(lambda log=log: _TRAINER_LINE.findall(log), number=20, repeat=repeats)
        results.append((kb, [t / 20 for t in ours], [t / 20 for t in whole]))
    return results


def main() -> None:
    """Measure and print the three tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trainings", type=int, default=3, help="trainings (samples)")
    parser.add_argument("--events", type=int, default=400, help="logs deliveries per training")
    parser.add_argument("--max-log-mb", type=float, default=2.0, help="log size at the end")
    parser.add_argument("--repeats", type=int, default=15, help="samples per parse size")
    args = parser.parse_args()

    stack = start_local_stack()
    try:
        with (
            httpx.Client(base_url=stack.url, timeout=60) as api,
            psycopg.connect(stack.database_url, autocommit=True) as db,
        ):
            runs = [
                one_training(api, stack, db, args.events, int(args.max_log_mb * 1024 * 1024))
                for _ in range(args.trainings)
            ]
    finally:
        stack.close()

    print(f"webhook deliveries through the local server, {args.trainings} trainings")
    print(f"{'log size up to':<16}{'median/s':>10}{'min/s':>9}{'median ms':>11}")
    per_run = [by_size(run["timings"]) for run in runs]
    for index, mb in enumerate(SIZE_BUCKETS_MB):
        seconds = [bucket[index] for bucket in per_run]
        print(
            f"{f'{mb} MB':<16}{1 / statistics.median(seconds):>10.1f}"
            f"{1 / max(seconds):>9.1f}{statistics.median(seconds) * 1000:>11.1f}"
        )

    print(f"\nprogress parse per event, {args.repeats} samples (whole-log scan = baseline)")
    print(f"{'log KB':<8}{'ours µs':>9}{'min µs':>8}{'whole µs':>10}{'ours/whole':>12}")
    for kb, ours, whole in parse_times(args.repeats, int(args.max_log_mb * 1024 * 1024)):
        mine, theirs = statistics.median(ours), statistics.median(whole)
        print(
            f"{kb:<8}{mine * 1e6:>9.1f}{min(ours) * 1e6:>8.1f}{theirs * 1e6:>10.1f}"
            f"{mine / theirs:>12.3f}"
        )

    print("\ndatabase writes per training (training_runs UPDATEs)")
    updates = [run["updates"] for run in runs]
    median = statistics.median(updates)
    print(f"deliveries {runs[0]['deliveries']}, UPDATEs median {median}, min {min(updates)}")


if __name__ == "__main__":
    main()
