"""A database outage and its end: how long a request waits for its answer, ours against
psycopg_pool as this project configured it before (10 s wait, 10 s reconnect backoff, the pool's
own check of connections idle for a second), measured in the same run.

Each run, for each pool: three connections are used and left idle for a second (so both pools
check them before use); the database then refuses connections and loses its open ones
(`ALTER DATABASE … ALLOW_CONNECTIONS false` + `pg_terminate_backend`, from the server's
`postgres` database). Reported, median and max of --runs:

  1. down:      one request (take a connection, `SELECT 1`) until it fails;
  2. recovered: a request is left waiting during a --outage-second outage; once the database is
     back, the next request until it succeeds.

    TEST_DATABASE_URL=postgresql://... .venv/bin/python -m bench.outage --runs 3
"""

import argparse
import logging
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from lib.adapters import database
from lib.settings import load_settings

WARM_CONNECTIONS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--outage", type=float, default=3.5, help="seconds (default 3.5)")
    args = parser.parse_args()
    url = os.environ.get("TEST_DATABASE_URL") or sys.exit("set TEST_DATABASE_URL")
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    logging.getLogger("lib.adapters.database").setLevel(logging.CRITICAL)
    results: dict[str, dict[str, list[float]]] = {}
    for _ in range(args.runs):
        for name, make in (("ours", lambda: ours(url)), ("before", lambda: before(url))):
            request, close = make()
            timings = results.setdefault(name, {"down": [], "recovered": []})
            timings["down"].append(measure_down(url, request))
            timings["recovered"].append(measure_recovery(url, request, args.outage))
            close()
    for phase in ("down", "recovered"):
        ours_median = statistics.median(results["ours"][phase])
        before_median = statistics.median(results["before"][phase])
        for name in ("ours", "before"):
            values = results[name][phase]
            print(
                f"{phase:9} {name:6} median {statistics.median(values):5.2f} s"
                f"  max {max(values):5.2f} s"
            )
        print(f"{phase:9} ours/before {ours_median / before_median:.2f}x")


def ours(url: str) -> tuple[Callable[[], bool], Callable[[], None]]:
    settings = load_settings({"DATABASE_URL": url})

    def request() -> bool:
        try:
            with database.connect(settings) as conn:
                conn.execute("SELECT 1")
        except Exception:
            return False
        return True

    return request, database.close_pools


def before(url: str) -> tuple[Callable[[], bool], Callable[[], None]]:
    last_used: dict[int, float] = {}

    def check(conn: psycopg.Connection) -> None:
        if time.time() - last_used.get(id(conn), 0.0) > 1.0:
            ConnectionPool.check_connection(conn)

    pool = ConnectionPool(
        url,
        min_size=0,
        max_size=10,
        timeout=10,
        reconnect_timeout=10,
        check=check,
        kwargs={"row_factory": dict_row, "autocommit": True, "connect_timeout": 10},
        open=True,
    )

    def request() -> bool:
        try:
            with pool.connection() as conn:
                conn.execute("SELECT 1")
                last_used[id(conn)] = time.time()
        except Exception:
            return False
        return True

    return request, pool.close


def measure_down(url: str, request: Callable[[], bool]) -> float:
    warm(request)
    with locked_out(url):
        began = time.monotonic()
        request()
        return time.monotonic() - began


def measure_recovery(url: str, request: Callable[[], bool], outage: float) -> float:
    warm(request)
    with locked_out(url):
        waiting = threading.Thread(target=request)
        waiting.start()
        time.sleep(outage)
    began = time.monotonic()
    while not request():
        pass
    waited = time.monotonic() - began
    waiting.join()
    return waited


def warm(request: Callable[[], bool]) -> None:
    threads = [threading.Thread(target=request) for _ in range(WARM_CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(1.2)


@contextmanager
def locked_out(url: str):
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as server:
        server.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            server.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            yield
        finally:
            server.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


if __name__ == "__main__":
    main()
