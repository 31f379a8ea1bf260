"""Every function loads through Vercel's own Python bootstrap and answers through it."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from dev.server import PROJECT_ROOT, discover_routes

# What vercel_runtime's trampoline does on the platform: env names the entrypoint, the bundle
# root is on sys.path, then vc_init imports the file by path and serves it.
BOOTSTRAP = """
import json, sys
sys.path.insert(0, sys.argv[1])
from vercel_runtime import vc_init
request = json.loads(sys.argv[2])
print(json.dumps(vc_init.vc_handler({"body": json.dumps(request)}, None)))
"""
ROUTES = discover_routes()


def through_vercel_runtime(route, method: str, path: str) -> dict:
    relative = route.path.relative_to(PROJECT_ROOT).as_posix()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "REPLICATE"))},
        "__VC_HANDLER_ENTRYPOINT": relative,
        "__VC_HANDLER_ENTRYPOINT_ABS": str(route.path),
        "__VC_HANDLER_MODULE_NAME": route.module_name,
        "__VC_HANDLER_VARIABLE_NAME": "app",
        "AUTH_JWT_SECRET": "a-secret-for-the-loader-test-only-32b",
        "REPLICATE_WEBHOOK_SECRET": "whsec_" + "QUJD" * 8,
        "CRON_SECRET": "cron-secret-for-the-loader-test",
    }
    env.pop("VERCEL_IPC_PATH", None)
    request = {
        "method": method,
        "path": path,
        "headers": {"host": "example.vercel.app"},
        "body": "",
    }
    result = subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, str(PROJECT_ROOT), json.dumps(request)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def example_path(route) -> str:
    path = route.pattern.pattern.strip("^$")
    for index in range(len(route.params)):
        path = path.replace(f"(?P<p{index}>[^/]+)", "00000000-0000-0000-0000-000000000000")
    return path.split("(?:")[0].replace("\\", "").rstrip("/") or "/"


def test_every_function_is_found():
    found = {route.module_name for route in ROUTES}

    assert {
        "api.training.upload",
        "api.training.start",
        "api.training.progress",
        "api.webhooks.replicate",
        "api.training.cancel",
        "api.training.retry",
        "api.cron.reconcile",
    } <= found


@pytest.fixture(scope="module")
def answers():
    """One anonymous request to each function, each in a fresh interpreter, in parallel."""
    from dev.server import _load_entrypoint

    def one(route):
        method = sorted(_load_entrypoint(route.module_name, route.path).methods)[0]
        return route.module_name, through_vercel_runtime(route, method, example_path(route))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, ROUTES))


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.module_name)
def test_a_function_refuses_an_anonymous_request_through_the_vercel_runtime(route, answers):
    answer = answers[route.module_name]

    assert answer["statusCode"] == (200 if route.module_name == "api.openapi.json" else 401), answer
    assert "code" in json.loads(answer["body"]) or route.module_name == "api.openapi.json"
    headers = {name.lower(): values for name, values in answer["headers"].items()}
    assert headers["content-type"] == ["application/json"]
