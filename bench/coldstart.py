"""Cold start of the built functions: process start → first answer, through Vercel's launcher.

Builds the committed tree with Vercel's own CLI (dev/vercel_build.py: the pinned CLI and uv are
cached outside the repository), lays out the progress, webhook and start functions from their
file maps, and starts each N times in a fresh empty Python 3.12 whose only packages are the
bundle's `_vendor`: the launcher `vc__handler__python` is imported and answers one request
without credentials (401). Runs are interleaved, so drift in machine load hits every function
alike. Medians and minimums, as a ratio of the start function's median in the same run.

    .venv/bin/python -m bench.coldstart --runs 21
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dev import vercel_build
from dev.server import PROJECT_ROOT

BASELINE = "api/training/start"
FUNCTIONS = {
    "api/training/progress": {"method": "GET", "path": "/api/training/progress?modelId=1"},
    "api/webhooks/replicate": {"method": "POST", "path": "/api/webhooks/replicate"},
    BASELINE: {"method": "POST", "path": "/api/training/start"},
}
ENV = {
    "AUTH_JWT_SECRET": "a-secret-for-the-cold-start-bench-32b",
    "REPLICATE_WEBHOOK_SECRET": "whsec_" + "QUJD" * 8,
}


def first_answer_seconds(bundle: Path, python: Path, request: dict, config: dict) -> float:
    """Wall time from starting the process to holding the launcher's answer."""
    started = time.perf_counter()
    answer = vercel_build.launch(bundle, python, request, ENV, config)["answer"]
    seconds = time.perf_counter() - started
    if answer["statusCode"] != 401:
        raise RuntimeError(f"{bundle.name}: expected 401, got {answer}")
    return seconds


def main() -> None:
    """Build, lay out, measure, print a table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=11, help="fresh processes per function")
    args = parser.parse_args()
    reason = vercel_build.missing_tools()
    if reason:
        sys.exit(reason)
    with tempfile.TemporaryDirectory(prefix="coldstart-") as scratch:
        root = Path(scratch)
        print("building the committed tree with Vercel's CLI...", file=sys.stderr)
        output = vercel_build.build(vercel_build.committed_tree(PROJECT_ROOT, root / "project"))
        built = {f.name: f for f in vercel_build.functions(output) if f.name in FUNCTIONS}
        bundles = {name: function.lay_out(root / name) for name, function in built.items()}
        python = vercel_build.empty_python(root / "python")
        subprocess.run([str(python), "-c", "pass"], check=True)  # the interpreter's files cached
        samples: dict[str, list[float]] = {name: [] for name in FUNCTIONS}
        for name in FUNCTIONS:  # one warm-up each: the bundle's files in the page cache
            first_answer_seconds(bundles[name], python, FUNCTIONS[name], built[name].config)
        for _ in range(args.runs):
            for name, request in FUNCTIONS.items():
                config = built[name].config
                samples[name].append(first_answer_seconds(bundles[name], python, request, config))
    baseline = statistics.median(samples[BASELINE])
    print(f"process start → first answer through the launcher, {args.runs} runs each")
    print(f"{'function':<26}{'median ms':>10}{'min ms':>9}{'vs start':>10}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(
            f"{name:<26}{median * 1000:>10.1f}{min(values) * 1000:>9.1f}{median / baseline:>10.2f}"
        )


if __name__ == "__main__":
    main()
