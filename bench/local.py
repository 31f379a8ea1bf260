"""The local stack for benchmarks: the router and emulators against a real PostgreSQL."""

import logging
import os
import sys
import tempfile
import uuid
from pathlib import Path

import httpx

from dev.stack import LocalStack, start_stack
from lib.settings import get_settings
from tests.conftest import PROJECT_VARIABLES
from tests.helpers import User, started


def start_local_stack(**variables: str) -> LocalStack:
    """Serve api/ with simulated Replicate and Blob on PostgreSQL from TEST_/DATABASE_URL."""
    database_url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not database_url:
        sys.exit("set TEST_DATABASE_URL or DATABASE_URL to a PostgreSQL database to measure")
    for name in PROJECT_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(DATABASE_URL=database_url, **variables)
    get_settings.cache_clear()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    data_dir = Path(tempfile.mkdtemp(prefix="sselfie-bench-"))
    return start_stack(
        os.environ, data_dir=data_dir, walk_trainings=False, receive_app_events=False
    )


def new_training(api: httpx.Client) -> tuple[User, dict]:
    """A fresh user with a started training: (user, start's 201 body)."""
    user = User(f"bench-{uuid.uuid4().hex[:12]}")
    return user, started(api, user)
