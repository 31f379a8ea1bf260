"""Run the Replicate emulator standalone: `python -m dev.replicate_emulator --port 8100`."""

from __future__ import annotations

import argparse
import threading

from dev.replicate_emulator.emulator import ReplicateEmulator
from dev.replicate_emulator.protocol import TRAINER_MODEL


def main(argv: list[str] | None = None) -> None:
    """Run the emulator standalone until interrupted."""
    parser = argparse.ArgumentParser(description="Local emulator of Replicate's HTTP API.")
    parser.add_argument("--port", type=int, default=8100, help="port on 127.0.0.1 (0 = any)")
    parser.add_argument("--token", default="r8_dev_token", help="accepted API token")
    parser.add_argument("--owner", default="sselfie-dev", help="account username")
    parser.add_argument("--manual", action="store_true", help="disable automatic state walking")
    parser.add_argument("--starting-seconds", type=float, default=2.0)
    parser.add_argument("--processing-seconds", type=float, default=20.0)
    parser.add_argument("--log-interval", type=float, default=0.5)
    parser.add_argument("--latency", type=float, default=0.0, help="sleep per request (s)")
    args = parser.parse_args(argv)
    emulator = ReplicateEmulator(
        token=args.token,
        owner=args.owner,
        auto_walk=not args.manual,
        starting_seconds=args.starting_seconds,
        processing_seconds=args.processing_seconds,
        log_interval=args.log_interval,
        latency=args.latency,
    ).start(args.port)
    print(f"Replicate emulator on {emulator.url}", flush=True)
    print(f"REPLICATE_BASE_URL={emulator.url}", flush=True)
    print(f"REPLICATE_API_TOKEN={emulator.token}", flush=True)
    print(f"webhook secret: {emulator.webhook_secret}", flush=True)
    print(f"trainer version: {TRAINER_MODEL}:{emulator.trainer_version}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emulator.stop()


if __name__ == "__main__":
    main()
