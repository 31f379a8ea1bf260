"""clients/typescript: its types are the ones openapi.json generates, it type-checks (tsc), and
its progress loop, compiled and run by Node.js against the functions, stops at the end.

Its npm packages go to a cache outside the repository (dev/npm.py). Without Node.js and npm
these tests are skipped, saying so; `.ci/run` installs them.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from dev import npm
from dev.server import OPENAPI_DOCUMENT, PROJECT_ROOT
from tests.helpers import started

CLIENT = PROJECT_ROOT / "clients" / "typescript"
GENERATE = "cd clients/typescript && npm ci && npm run generate"
# Polls every 100 ms and prints each status; Node.js exits by itself once nothing is scheduled.
POLL_SCRIPT = """
import { createSselfieClient, pollProgress } from "./out/src/index.js";
const [baseUrl, token, modelId] = process.argv.slice(2);
const client = createSselfieClient({ baseUrl, token: () => token });
pollProgress(client, modelId, {
  intervalMs: 100,
  onProgress: (progress) => console.log(progress.status),
  onError: (error) => console.log(`error ${error.code}`),
});
"""


@pytest.fixture(scope="module")
def workspace() -> Path:
    """The client's sources beside its installed packages."""
    if not npm.available():
        pytest.skip("Node.js and npm are not installed (apt-get install -y nodejs npm)")
    folder = npm.install(CLIENT, "typescript-client")
    assert folder, "npm ci failed: see the warning logged by dev.npm"
    for stale in ("src", "examples", "out"):
        shutil.rmtree(folder / stale, ignore_errors=True)
    shutil.copytree(CLIENT / "src", folder / "src")
    shutil.copytree(CLIENT / "examples", folder / "examples")
    shutil.copyfile(CLIENT / "tsconfig.json", folder / "tsconfig.json")
    return folder


def tool(workspace: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    command = [str(workspace / "node_modules" / ".bin" / name), *args]
    return subprocess.run(command, cwd=workspace, capture_output=True, text=True, timeout=300)


def test_the_committed_types_are_the_ones_openapi_json_generates(workspace):
    done = tool(workspace, "openapi-typescript", str(OPENAPI_DOCUMENT), "-o", "generated.d.ts")

    assert done.returncode == 0, done.stderr
    generated = (workspace / "generated.d.ts").read_text()
    assert generated == (CLIENT / "src" / "schema.d.ts").read_text(), f"run: {GENERATE}"


def test_the_client_the_hook_and_the_example_screens_type_check(workspace):
    done = tool(workspace, "tsc", "--noEmit", "-p", "tsconfig.json")

    assert done.returncode == 0, done.stdout


@pytest.fixture
def compiled(workspace: Path) -> Path:
    """The client compiled to JavaScript (out/) beside a script that runs its progress loop."""
    done = tool(workspace, "tsc", "-p", "tsconfig.json", "--noEmit", "false", "--outDir", "out")
    assert done.returncode == 0, done.stdout
    (workspace / "poll.mjs").write_text(POLL_SCRIPT)
    return workspace


def test_the_progress_loop_polls_until_the_training_ends_then_stops(compiled, api, stack, user):
    body = started(api, user)
    token = user.headers["Authorization"].removeprefix("Bearer ")
    process = subprocess.Popen(
        ["node", "poll.mjs", stack.url, token, body["modelId"]],
        cwd=compiled,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "starting"
        stack.replicate.advance(body["trainingId"], "processing", step=10)
        assert wait_for_line(process, "training")
        stack.replicate.advance(body["trainingId"], "succeeded")
        assert wait_for_line(process, "completed")
        assert process.wait(timeout=10) == 0  # no poll scheduled after a terminal status
        assert process.stdout.read() == ""
    finally:
        process.kill()


def wait_for_line(process: subprocess.Popen, expected: str) -> bool:
    """Read the loop's lines until `expected`; only statuses may come before it."""
    for line in process.stdout:
        if line.strip() == expected:
            return True
        assert line.strip() in ("starting", "training"), line
    return False
