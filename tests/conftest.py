"""The real stack for every test: PostgreSQL, the Replicate and Blob emulators, the router."""

import base64
import os
import secrets
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from dev.app_receiver import AppReceiver
from dev.server import serve
from dev.stack import LocalStack, embedded_postgres, start_stack
from lib.settings import get_settings
from tests.helpers import User, conforms_to_openapi

# Variables that would make a part real or change behaviour; the suite sets its own.
PROJECT_VARIABLES = (
    "DATABASE_URL",
    "REPLICATE_API_TOKEN",
    "REPLICATE_BASE_URL",
    "REPLICATE_WEBHOOK_SECRET",
    "REPLICATE_TRAINER_VERSION",
    "REPLICATE_DESTINATION_OWNER",
    "BLOB_READ_WRITE_TOKEN",
    "VERCEL_BLOB_API_URL",
    "STORAGE_BACKEND",
    "AUTH_JWT_SECRET",
    "AUTH_JWKS_URL",
    "PUBLIC_BASE_URL",
    "VERCEL",
    "VERCEL_ENV",
    "VERCEL_URL",
    "VERCEL_AUTOMATION_BYPASS_SECRET",
    "TRAINING_INPUT",
    "PROGRESS_POLL_SECONDS",
    "TRAINING_START_TIMEOUT_MINUTES",
    "CRON_SECRET",
    "LOCAL_STORAGE_DIR",
    "S3_BUCKET",
    "S3_PUBLIC_BASE_URL",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "APP_WEBHOOK_URL",
    "APP_WEBHOOK_SECRET",
)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One stack for the session; trainings move only when a test advances them."""
    with pytest.MonkeyPatch.context() as patch:
        for name in PROJECT_VARIABLES:
            patch.delenv(name, raising=False)
        data_dir = tmp_path_factory.mktemp("data")
        url = os.environ.get("TEST_DATABASE_URL") or embedded_postgres(_shared_temp_dir())
        patch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        local = start_stack(
            os.environ, data_dir=data_dir, walk_trainings=False, receive_app_events=False
        )
        yield local
        local.close()
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def s3_env() -> Iterator[dict[str, str]]:
    """A moto S3 server on a free loopback port, and the variables that select it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": "sselfie-test",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "moto-key",
        "AWS_SECRET_ACCESS_KEY": "moto-secret-key",
        "AWS_REGION": "us-east-1",
    }
    boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="moto-key",
        aws_secret_access_key="moto-secret-key",
    ).create_bucket(Bucket=env["S3_BUCKET"])
    yield env
    server.stop()


@pytest.fixture
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    """An HTTP client for the functions, as the frontend calls them; every answer is checked
    against openapi.json."""
    hooks = {"response": [conforms_to_openapi]}
    with httpx.Client(base_url=stack.url, timeout=30, event_hooks=hooks) as client:
        yield client


@pytest.fixture
def db(stack: LocalStack) -> Iterator[psycopg.Connection]:
    """A connection to the suite's database, for asserting rows."""
    with psycopg.connect(stack.database_url, row_factory=dict_row, autocommit=True) as conn:
        yield conn


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder where this test's temporary files go (tempfile's own setting)."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def user() -> User:
    """A fresh user with a valid token."""
    return User(f"user-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def configure(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Change settings for one test: configure(NAME="value") or NAME=None to unset."""

    def apply(**variables: str | None) -> None:
        for name, value in variables.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def app_receiver(configure):
    """The app: a real HTTP server on loopback that verifies and keeps our events."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    app = AppReceiver(secret)
    server = serve(app)
    configure(
        APP_WEBHOOK_URL=f"http://127.0.0.1:{server.port}/events",
        APP_WEBHOOK_SECRET=secret,
    )
    yield app
    server.shutdown()


def _shared_temp_dir() -> Path:
    # pgserver runs postgres as its own system user, which cannot enter pytest's 0700 folders.
    folder = Path(tempfile.mkdtemp(prefix="sselfie-test-pg-"))
    folder.chmod(0o755)
    return folder / "postgres"
