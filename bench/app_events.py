"""What sending events to the app costs the Replicate webhook that causes them.

For each mode, --runs trainings are started and their `succeeded` webhook is POSTed, signed as
Replicate signs it; the time until that answer is measured (median and min), as a ratio to the
same measure with events off in the same run. With events on, the app is a real HTTP server on
loopback that answers at once, or after --slow-app seconds: the answer must not wait for it.
Also reported: the time until the app has the event.

    TEST_DATABASE_URL=postgresql://... .venv/bin/python -m bench.app_events --runs 7
"""

import argparse
import base64
import os
import secrets
import statistics
import time
from collections.abc import Callable

import httpx

from bench.local import new_training, start_local_stack
from dev.app_receiver import AppReceiver
from dev.server import serve
from lib.settings import get_settings
from tests.helpers import signed_delivery


def slowly(app: Callable, seconds: float) -> Callable:
    """The WSGI app, answering `seconds` late."""

    def late(environ: dict, start_response: Callable):
        time.sleep(seconds)
        return app(environ, start_response)

    return late


def use_app(url: str | None, secret: str | None) -> None:
    """Point the stack's functions at an app (or at none)."""
    for name, value in (("APP_WEBHOOK_URL", url), ("APP_WEBHOOK_SECRET", secret)):
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


def one_run(api: httpx.Client, stack, receiver: AppReceiver | None) -> tuple[float, float | None]:
    """Seconds until the webhook's answer, and until the app had the event (None when off)."""
    _, body = new_training(api)
    snapshot = {**stack.replicate.get_object(body["trainingId"]), "status": "succeeded"}
    raw, headers = signed_delivery(stack, {**snapshot, "output": {"version": "o/m:v"}})
    began = time.perf_counter()
    response = api.post("/api/webhooks/replicate", content=raw, headers=headers)
    answered = time.perf_counter() - began
    assert response.status_code == 200, response.text
    if receiver is None:
        return answered, None
    receiver.wait_for(lambda ds: any(d.event["data"]["id"] == body["modelId"] for d in ds), 30)
    return answered, time.perf_counter() - began


def main() -> None:
    """Measure each mode and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="trainings per mode (samples)")
    parser.add_argument("--slow-app", type=float, default=3.0, help="the slow app's delay (s)")
    args = parser.parse_args()
    stack = start_local_stack()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    fast, slow = AppReceiver(secret), AppReceiver(secret)
    servers = {"fast": serve(fast), "slow": serve(slowly(slow, args.slow_app))}
    modes = {
        "events off": (None, None),
        "app answers at once": (fast, f"http://127.0.0.1:{servers['fast'].port}/"),
        f"app answers after {args.slow_app:g} s": (
            slow,
            f"http://127.0.0.1:{servers['slow'].port}/",
        ),
    }
    results = {}
    try:
        with httpx.Client(base_url=stack.url, timeout=60) as api:
            for mode, (receiver, url) in modes.items():
                use_app(url, secret if url else None)
                runs = [one_run(api, stack, receiver) for _ in range(args.runs)]
                results[mode] = runs
    finally:
        for server in servers.values():
            server.shutdown()
        stack.close()
    baseline = statistics.median(answered for answered, _ in results["events off"])
    print(f"succeeded webhook, {args.runs} trainings per mode (median / min, ms)")
    print(f"{'mode':<28}{'answer':>16}{'vs off':>9}{'app has it':>16}")
    for mode, runs in results.items():
        answers = [answered for answered, _ in runs]
        arrivals = [arrived for _, arrived in runs if arrived is not None]
        median = statistics.median(answers)
        arrival = (
            f"{statistics.median(arrivals) * 1000:7.1f} / {min(arrivals) * 1000:6.1f}"
            if arrivals
            else "—"
        )
        print(
            f"{mode:<28}{median * 1000:8.1f} / {min(answers) * 1000:5.1f}"
            f"{median / baseline:8.2f}x{arrival:>17}"
        )


if __name__ == "__main__":
    main()
