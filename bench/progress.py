"""The progress endpoint under 50 concurrent pollers, against asking Replicate on every poll.

Both endpoints answer the same JSON for the same mid-training model on real PostgreSQL. Ours
(through the Vercel-style router) reads the database, asking Replicate only for quiet runs; the
baseline, the usual poll-only design, asks the Replicate emulator (--latency, default 150 ms,
like api.replicate.com from a function) on every request and applies the answer. A third endpoint
only takes a pooled connection and runs `SELECT 1`: the ceiling of any database-backed endpoint.

Each endpoint is served by waitress (a production WSGI server: keep-alive, one worker thread per
pooled connection) or, with `--server dev`, by `make dev`'s werkzeug server (a connection and a
thread per request). wrk (C; `apt-get install wrk`) holds --pollers keep-alive connections for
--seconds per phase; phases alternate --runs times, so drift in load hits every endpoint alike.
Reported: requests per second (median and min of the runs), p50 and p99 latency (medians of the
runs), Replicate calls per poll, and the ratio of our median throughput to the baseline's.

    TEST_DATABASE_URL=postgresql://... .venv/bin/python -m bench.progress --runs 3
"""

import argparse
import json
import logging
import shutil
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.local import new_training, start_local_stack
from dev.server import serve
from lib.accounts import user_models
from lib.adapters import database
from lib.adapters.replicate import Replicate
from lib.settings import get_settings
from lib.sync.training_runs import apply_snapshot
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response, query_param

WRK_SUMMARY = Path(__file__).with_name("wrk_summary.lua")
_replicate: list[Replicate] = []  # one client for the process, built on the first request


def ask_replicate_every_time(request: Request) -> Response:
    """The baseline: progress as a poll-only backend serves it (one reused Replicate client)."""
    settings = get_settings()
    if not _replicate:
        _replicate.append(Replicate(settings))
    user_id = authenticate(request, settings)
    model_id = query_param(request, "modelId")
    with database.connect(settings) as conn:
        row = user_models.find_model(conn, user_id=user_id, model_id=model_id)
        apply_snapshot(conn, _replicate[0].get_training(row["replicate_training_id"]))
        row = user_models.find_model(conn, user_id=user_id, model_id=model_id)
    model = user_models.model_json(row)
    return json_response({"status": model["status"], "progress": model["progress"], "model": model})


def connect_only(request: Request) -> Response:
    """The ceiling: authenticate, open the request's connection, SELECT 1 -- nothing else."""
    settings = get_settings()
    authenticate(request, settings)
    with database.connect(settings) as conn:
        conn.execute("SELECT 1")
    return json_response({})


def serve_with_waitress(app: Callable) -> str:
    """Serve `app` with waitress on a daemon thread; its base URL."""
    import waitress

    logging.getLogger("waitress").setLevel(logging.ERROR)  # no "task queue depth" warnings
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=database.POOL_MAX_SIZE)
    threading.Thread(target=server.run, daemon=True, name="waitress").start()
    return f"http://127.0.0.1:{server.effective_port}"


def serve_with_dev_server(app: Callable) -> str:
    """Serve `app` with make dev's werkzeug server; its base URL."""
    return f"http://127.0.0.1:{serve(app).port}"


SERVERS = {"waitress": serve_with_waitress, "dev": serve_with_dev_server}


def poll(url: str, headers: dict[str, str], pollers: int, seconds: int) -> dict:
    """wrk's summary of `pollers` keep-alive connections polling `url` for `seconds`."""
    command = ["wrk", f"-t{min(pollers, 2)}", f"-c{pollers}", f"-d{seconds}s", "-s", WRK_SUMMARY]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    summary = json.loads(output.strip().splitlines()[-1])
    if summary["non_2xx"] or summary["socket_errors"]:
        sys.exit(f"errors while polling {url}: {summary}")
    return summary


def main() -> None:
    """Measure the three endpoints in alternating phases and print the comparison."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pollers", type=int, default=50, help="concurrent pollers")
    parser.add_argument("--seconds", type=int, default=8, help="length of each phase")
    parser.add_argument("--runs", type=int, default=3, help="phases per endpoint")
    parser.add_argument("--latency", type=float, default=0.15, help="Replicate latency (s)")
    parser.add_argument("--server", choices=SERVERS, default="waitress", help="WSGI server")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench.progress drives the pollers with wrk: apt-get install wrk")

    stack = start_local_stack(PROGRESS_POLL_SECONDS="3600")  # a live run, never quiet here
    try:
        with httpx.Client(base_url=stack.url, timeout=30) as api:
            user, body = new_training(api)
        stack.replicate.advance(body["trainingId"], "processing", step=500)
        stack.replicate.wait_for_deliveries()
        stack.replicate.latency = args.latency
        serve_app = SERVERS[args.server]
        query = f"?modelId={body['modelId']}"
        urls = {
            "ours": f"{serve_app(stack.server.app)}/api/training/progress{query}",
            "baseline": f"{serve_app(endpoint(ask_replicate_every_time, 'GET'))}/{query}",
            "ceiling": f"{serve_app(endpoint(connect_only, 'GET'))}/",
        }
        phases: dict[str, list[dict]] = {name: [] for name in urls}
        calls = dict.fromkeys(urls, 0)
        for _ in range(args.runs):
            for name, url in urls.items():
                before = len(stack.replicate.requests)
                phases[name].append(poll(url, user.headers, args.pollers, args.seconds))
                calls[name] += len(stack.replicate.requests) - before
    finally:
        stack.close()
    report(phases, calls, args)


def report(phases: dict[str, list[dict]], calls: dict[str, int], args: argparse.Namespace) -> None:
    """The table of throughput, latency and Replicate calls, and ours ÷ baseline."""
    print(f"progress under {args.pollers} pollers, {args.runs} x {args.seconds} s phases,")
    print(f"Replicate latency {args.latency * 1000:.0f} ms, served by {args.server}")
    print(
        f"{'endpoint':<10}{'median rps':>11}{'min rps':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'Replicate calls/poll':>22}"
    )
    throughput = {}
    for name, runs in phases.items():
        rates = [run["requests"] / run["seconds"] for run in runs]
        throughput[name] = statistics.median(rates)
        p50 = statistics.median(run["p50_us"] for run in runs) / 1000
        p99 = statistics.median(run["p99_us"] for run in runs) / 1000
        polls = sum(run["requests"] for run in runs)
        print(
            f"{name:<10}{throughput[name]:>11.0f}{min(rates):>9.0f}{p50:>8.1f}{p99:>8.1f}"
            f"{calls[name] / polls:>22.2f}"
        )
    print(f"ours / baseline throughput: {throughput['ours'] / throughput['baseline']:.1f}x")


if __name__ == "__main__":
    main()
