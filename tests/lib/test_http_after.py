"""Work meant for after the answer runs once the client has the answer, under real servers."""

import threading

import httpx
import pytest

from bench.progress import SERVERS
from lib.web.http import endpoint, json_response
from tests.helpers import eventually


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_work_after_the_answer_never_delays_it(server):
    release, ran = threading.Event(), threading.Event()

    def deliver_later() -> None:
        release.wait(10)
        ran.set()

    url = SERVERS[server](
        endpoint(lambda request: json_response({"ok": True}), "GET", after=deliver_later)
    )

    response = httpx.get(url, timeout=5)  # times out if the answer waited for the work

    assert response.json() == {"ok": True} and not ran.is_set()
    release.set()
    assert ran.wait(5)


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_work_that_fails_after_the_answer_changes_nothing_the_client_saw(server, caplog):
    def broken() -> None:
        raise RuntimeError("the app is down")

    view = endpoint(lambda request: json_response({"ok": True}), "GET", after=broken)
    url = SERVERS[server](view)

    first, second = httpx.get(url, timeout=5), httpx.get(url, timeout=5)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == {"ok": True}
    assert eventually(lambda: "work after the answer failed work=" in caplog.text)
