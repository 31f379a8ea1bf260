"""The progress endpoint under 50 concurrent pollers, against asking Replicate on every poll.

Both endpoints answer the same JSON for the same mid-training model through the local server
on real PostgreSQL. Ours reads the database (Replicate only for quiet runs); the baseline, the
usual poll-only design, asks the Replicate emulator (--latency, default 150 ms, like
api.replicate.com from a function) on every request and applies the answer. The pollers run in
a separate process (its own GIL), each phase lasts --seconds, phases alternate --runs times.
A third endpoint only opens the per-request database connection and runs `SELECT 1`: the
ceiling any endpoint on a fresh connection per request reaches on this machine.
Reported: requests per second (median and min of the runs), p50 and p99 latency, Replicate
calls per poll, and the ratio of our median throughput to the baseline's.

    TEST_DATABASE_URL=postgresql://... .venv/bin/python -m bench.progress --runs 3
"""

import argparse
import multiprocessing
import statistics
import threading
import time

import httpx

from bench.local import new_training, start_local_stack
from dev.server import serve
from lib import database, models
from lib.auth import authenticate
from lib.http import Request, Response, endpoint, json_response, query_param
from lib.replicate import Replicate
from lib.settings import get_settings
from lib.training_events import apply_snapshot

_replicate: list[Replicate] = []  # one client for the process, built on the first request


def ask_replicate_every_time(request: Request) -> Response:
    """The baseline: progress as a poll-only backend serves it (one reused Replicate client)."""
    settings = get_settings()
    if not _replicate:
        _replicate.append(Replicate(settings))
    user_id = authenticate(request, settings)
    model_id = query_param(request, "modelId")
    with database.connect(settings) as conn:
        row = models.find_model(conn, user_id=user_id, model_id=model_id)
        apply_snapshot(conn, _replicate[0].get_training(row["replicate_training_id"]))
        row = models.find_model(conn, user_id=user_id, model_id=model_id)
    model = models.model_json(row)
    return json_response({"status": model["status"], "progress": model["progress"], "model": model})


def connect_only(request: Request) -> Response:
    """The ceiling: authenticate, open the request's connection, SELECT 1 -- nothing else."""
    settings = get_settings()
    authenticate(request, settings)
    with database.connect(settings) as conn:
        conn.execute("SELECT 1")
    return json_response({})


def poll(url: str, headers: dict[str, str], pollers: int, seconds: float) -> list[float]:
    """Latencies of every answer `pollers` threads got from `url` within `seconds`."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def poller() -> None:
        mine = []
        with httpx.Client(headers=headers, timeout=30) as client:
            while (began := time.perf_counter()) < stop_at:
                response = client.get(url)
                mine.append(time.perf_counter() - began)
                assert response.status_code == 200, response.text
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=poller) for _ in range(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of the sorted values lie."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    """Measure both endpoints in alternating phases and print the comparison."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pollers", type=int, default=50, help="concurrent pollers")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--runs", type=int, default=3, help="phases per endpoint")
    parser.add_argument("--latency", type=float, default=0.15, help="Replicate latency (s)")
    args = parser.parse_args()

    stack = start_local_stack(PROGRESS_POLL_SECONDS="3600")  # a live run, never quiet here
    baseline = serve(endpoint(ask_replicate_every_time, "GET"))
    ceiling = serve(endpoint(connect_only, "GET"))
    try:
        with httpx.Client(base_url=stack.url, timeout=30) as api:
            user, body = new_training(api)
        stack.replicate.advance(body["trainingId"], "processing", step=500)
        stack.replicate.wait_for_deliveries()
        stack.replicate.latency = args.latency
        query = f"?modelId={body['modelId']}"
        urls = {
            "ours": f"{stack.url}/api/training/progress{query}",
            "baseline": f"http://127.0.0.1:{baseline.port}/{query}",
            "ceiling": f"http://127.0.0.1:{ceiling.port}/",
        }
        samples: dict[str, list[list[float]]] = {name: [] for name in urls}
        calls = dict.fromkeys(urls, 0)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            for _ in range(args.runs):  # alternating, so drift in load hits both alike
                for name, url in urls.items():
                    before = len(stack.replicate.requests)
                    latencies = pool.apply(poll, (url, user.headers, args.pollers, args.seconds))
                    samples[name].append(latencies)
                    calls[name] += len(stack.replicate.requests) - before
    finally:
        baseline.shutdown()
        ceiling.shutdown()
        stack.close()

    print(f"progress under {args.pollers} pollers, {args.runs} x {args.seconds:.0f} s phases,")
    print(f"Replicate latency {args.latency * 1000:.0f} ms")
    print(
        f"{'endpoint':<10}{'median rps':>11}{'min rps':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'Replicate calls/poll':>22}"
    )
    throughput = {}
    for name, runs in samples.items():
        rates = [len(latencies) / args.seconds for latencies in runs]
        everything = [value for latencies in runs for value in latencies]
        throughput[name] = statistics.median(rates)
        print(
            f"{name:<10}{throughput[name]:>11.0f}{min(rates):>9.0f}"
            f"{percentile(everything, 0.5) * 1000:>8.1f}{percentile(everything, 0.99) * 1000:>8.1f}"
            f"{calls[name] / len(everything):>22.2f}"
        )
    print(f"ours / baseline throughput: {throughput['ours'] / throughput['baseline']:.1f}x")


if __name__ == "__main__":
    main()
