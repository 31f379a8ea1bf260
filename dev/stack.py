"""The local stack: each outside part is real when its variable is set, else simulated.

`make dev` and the test suite both start it, so the tests exercise what a newcomer runs.
"""

import base64
import os
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.serving import BaseWSGIServer

from dev.app_receiver import AppReceiver
from dev.server import APP_EVENTS_PATH, PROJECT_ROOT, VercelRouter, discover_routes, serve
from lib.settings import public_base_url

DEV_JWT_SECRET = "sselfie-dev-secret-not-for-production"


@dataclass
class LocalStack:
    url: str
    database_url: str
    parts: dict[str, str]  # part -> "real" or a description of its simulator
    server: BaseWSGIServer
    replicate: object | None = None  # dev.replicate_emulator.ReplicateEmulator when simulated
    blob: object | None = None  # dev.blob_emulator.BlobEmulator when simulated
    app_receiver: AppReceiver | None = None  # when the stack receives its own app events
    _closers: list = field(default_factory=list)

    def close(self) -> None:
        """Stop the server and every simulator."""
        from lib.adapters.database import close_pools

        self.server.shutdown()
        close_pools()
        for close in reversed(self._closers):
            close()


def embedded_postgres(data_dir: Path) -> str:
    """A PostgreSQL server of our own under data_dir (pgserver), for machines without one."""
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(data_dir, cleanup_mode="stop").get_uri()


def start_stack(
    env: MutableMapping[str, str] = os.environ,
    *,
    port: int = 0,
    data_dir: Path = PROJECT_ROOT / ".data",
    walk_trainings: bool = True,
    training_seconds: tuple[float, float] = (2.0, 20.0),
    receive_app_events: bool = True,
) -> LocalStack:
    """Start simulators for what `env` leaves unset, write their settings into env, serve api/.

    `training_seconds` is how long a simulated training stays starting, then processing. With
    `receive_app_events` and APP_WEBHOOK_URL unset, the stack is its own app: events go to
    /_dev/app-events, which the dev console shows.
    """
    parts: dict[str, str] = {}
    closers: list = []
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = embedded_postgres(data_dir / "postgres")
        parts["PostgreSQL"] = f"embedded (pgserver, {data_dir / 'postgres'})"
    else:
        parts["PostgreSQL"] = "real (DATABASE_URL)"
    replicate = _replicate(env, parts, closers, walk_trainings, training_seconds)
    blob = _blob(env, parts, closers, data_dir)
    if not env.get("AUTH_JWT_SECRET") and not env.get("AUTH_JWKS_URL"):
        env["AUTH_JWT_SECRET"] = DEV_JWT_SECRET
        parts["Auth"] = "dev HS256 secret (tokens from /_dev/token)"
    router = VercelRouter(
        discover_routes(),
        storage_dir=Path(env.get("LOCAL_STORAGE_DIR", data_dir / "storage")),
        token_secret=env["AUTH_JWT_SECRET"] if parts.get("Auth") else None,
        parts=parts,
        blob_emulator_url=blob.url if blob else None,
    )
    server = serve(router, port)
    if replicate is not None:
        replicate.receiver_idle = router.wait_idle
    url = f"http://127.0.0.1:{server.port}"
    if not public_base_url(env):  # with Vercel's variables set, callbacks go where they say
        env["PUBLIC_BASE_URL"] = url
    if receive_app_events and not env.get("APP_WEBHOOK_URL"):
        router.app_receiver = _app_receiver(env, parts, url)
    return LocalStack(
        url, env["DATABASE_URL"], parts, server, replicate, blob, router.app_receiver, closers
    )


def _app_receiver(env, parts, url: str) -> AppReceiver:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    env["APP_WEBHOOK_URL"] = url + APP_EVENTS_PATH
    env["APP_WEBHOOK_SECRET"] = secret
    parts["App events"] = f"received here at {APP_EVENTS_PATH} (shown in the dev console)"
    return AppReceiver(secret)


def _replicate(env, parts, closers, walk_trainings: bool, training_seconds: tuple[float, float]):
    if env.get("REPLICATE_API_TOKEN"):
        parts["Replicate"] = "real (REPLICATE_API_TOKEN)"
        return None
    from dev.replicate_emulator import ReplicateEmulator

    token = "r8_dev_" + secrets.token_hex(8)
    starting, processing = training_seconds
    emulator = ReplicateEmulator(
        token=token,
        auto_walk=walk_trainings,
        starting_seconds=starting,
        processing_seconds=processing,
    ).start()
    closers.append(emulator.stop)
    env["REPLICATE_API_TOKEN"] = token
    env["REPLICATE_BASE_URL"] = emulator.url
    parts["Replicate"] = f"simulated at {emulator.url} (trains nothing, sends signed webhooks)"
    return emulator


def _blob(env, parts, closers, data_dir: Path):
    if env.get("BLOB_READ_WRITE_TOKEN") or env.get("STORAGE_BACKEND"):
        parts["Storage"] = f"real ({env.get('STORAGE_BACKEND') or 'blob'})"
        return None
    from dev.blob_emulator import BlobEmulator

    emulator = BlobEmulator(root=data_dir / "blob").start()
    closers.append(emulator.stop)
    env["BLOB_READ_WRITE_TOKEN"] = emulator.token
    env["VERCEL_BLOB_API_URL"] = emulator.url
    parts["Storage"] = f"simulated Vercel Blob at {emulator.url}"
    return emulator
