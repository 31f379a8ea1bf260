"""Where Replicate's webhooks go, for trainings and generations alike, and what is said when none
can arrive."""

import logging

import pytest

from lib.settings import load_settings
from lib.sync import callbacks


@pytest.fixture(autouse=True)
def fresh_process():
    """The warning is once per process: start each test as a new process would."""
    callbacks._warn_no_webhooks.cache_clear()
    yield
    callbacks._warn_no_webhooks.cache_clear()


def test_a_deployment_gets_a_webhook_url_naming_the_run():
    settings = load_settings({"VERCEL_ENV": "preview", "VERCEL_URL": "app-git-x.vercel.app"})

    url = callbacks.replicate_webhook_url(settings, run="run-1")

    assert url == "https://app-git-x.vercel.app/api/webhooks/replicate?run=run-1"


@pytest.mark.parametrize("row", [{"run": "run-1"}, {"generation": "generation-1"}])
def test_the_real_replicate_gets_no_webhook_pointing_at_this_machine(row):
    settings = load_settings(
        {"REPLICATE_API_TOKEN": "r8_real", "PUBLIC_BASE_URL": "http://127.0.0.1:8000"}
    )

    assert callbacks.replicate_webhook_url(settings, **row) is None


def test_the_local_replicate_emulator_gets_a_loopback_webhook():
    settings = load_settings(
        {"REPLICATE_BASE_URL": "http://127.0.0.1:9100", "PUBLIC_BASE_URL": "http://127.0.0.1:8000"}
    )

    assert callbacks.replicate_webhook_url(settings, run="r").startswith(
        "http://127.0.0.1:8000/api/webhooks/"
    )


def test_no_reachable_url_is_said_once_per_process(caplog):
    settings = load_settings({"REPLICATE_API_TOKEN": "r8_real"})

    with caplog.at_level(logging.WARNING, logger="lib.sync.callbacks"):
        assert callbacks.replicate_webhook_url(settings, run="run-1") is None
        assert callbacks.replicate_webhook_url(settings, run="run-2") is None

    warnings = [r.getMessage() for r in caplog.records if r.name == "lib.sync.callbacks"]
    assert len(warnings) == 1
    assert "PUBLIC_BASE_URL" in warnings[0] and "reconcile" in warnings[0]
