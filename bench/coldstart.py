"""Cold start of the built functions: process start → first answer, through Vercel's launcher.

Builds a commit (default HEAD) with Vercel's own CLI (dev/vercel_build.py: the pinned CLI and
uv are cached outside the repository), lays out the progress, webhook and start functions from
their file maps, and starts each N times in a fresh empty Python 3.12 whose only packages are the
bundle's `_vendor`: the launcher `vc__handler__python` is imported and answers one request
without credentials (401). The OpenAPI function (the launcher, Python and lib.web.http only, no
database driver, no JWT) shows the floor every function pays. Runs are interleaved, so drift in
machine load hits every function alike. Medians and minimums, as a ratio of the start function's
median in the same run; with --against REF, that commit is built too and measured in the same
runs, and each function is also compared with itself there.

    .venv/bin/python -m bench.coldstart --runs 21
    .venv/bin/python -m bench.coldstart --runs 21 --against main
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
# Function → (request, the status it answers without credentials).
FUNCTIONS = {
    "api/openapi.json": ({"method": "GET", "path": "/api/openapi.json"}, 200),
    "api/training/progress": ({"method": "GET", "path": "/api/training/progress?modelId=1"}, 401),
    "api/webhooks/replicate": ({"method": "POST", "path": "/api/webhooks/replicate"}, 401),
    BASELINE: ({"method": "POST", "path": "/api/training/start"}, 401),
}
ENV = {
    "AUTH_JWT_SECRET": "a-secret-for-the-cold-start-bench-32b",
    "REPLICATE_WEBHOOK_SECRET": "whsec_" + "QUJD" * 8,
}


class Build:
    """One commit's built functions, laid out and ready to start."""

    def __init__(self, ref: str, root: Path) -> None:
        print(f"building {ref} with Vercel's CLI...", file=sys.stderr)
        project = vercel_build.committed_tree(PROJECT_ROOT, root / "project", ref)
        output = vercel_build.build(project)
        self.ref = ref
        self.built = {f.name: f for f in vercel_build.functions(output) if f.name in FUNCTIONS}
        self.bundles = {name: f.lay_out(root / name) for name, f in self.built.items()}

    def first_answer_seconds(self, name: str, python: Path) -> float:
        """Wall time from starting the process to holding the launcher's answer."""
        request, status = FUNCTIONS[name]
        config = self.built[name].config
        started = time.perf_counter()
        answer = vercel_build.launch(self.bundles[name], python, request, ENV, config)["answer"]
        seconds = time.perf_counter() - started
        if answer["statusCode"] != status:
            raise RuntimeError(f"{self.ref} {name}: expected {status}, got {answer}")
        return seconds


def main() -> None:
    """Build, lay out, measure, print a table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=11, help="fresh processes per function")
    parser.add_argument("--ref", default="HEAD", help="the commit to build (default HEAD)")
    parser.add_argument("--against", help="another commit, measured in the same runs")
    args = parser.parse_args()
    reason = vercel_build.missing_tools()
    if reason:
        sys.exit(reason)
    refs = [args.ref, *([args.against] if args.against else [])]
    with tempfile.TemporaryDirectory(prefix="coldstart-") as scratch:
        root = Path(scratch)
        builds = [Build(ref, root / str(index)) for index, ref in enumerate(refs)]
        python = vercel_build.empty_python(root / "python")
        subprocess.run([str(python), "-c", "pass"], check=True)
        samples = {(b.ref, name): [] for b in builds for name in b.built}
        for build in builds:  # one warm-up each: the bundles' files in the page cache
            for name in build.built:
                build.first_answer_seconds(name, python)
        for _ in range(args.runs):
            for build in builds:
                for name in build.built:
                    samples[build.ref, name].append(build.first_answer_seconds(name, python))
    print(f"process start → first answer through the launcher, {args.runs} runs each")
    print(f"{'commit':<10}{'function':<26}{'median ms':>10}{'min ms':>9}{'vs start':>10}", end="")
    print(f"{'vs ' + args.against:>14}" if args.against else "")
    for ref in refs:
        baseline = statistics.median(samples[ref, BASELINE])
        for (sample_ref, name), values in samples.items():
            if sample_ref != ref:
                continue
            median = statistics.median(values)
            line = f"{ref:<10}{name:<26}{median * 1000:>10.1f}{min(values) * 1000:>9.1f}"
            line += f"{median / baseline:>10.2f}"
            if args.against and (args.against, name) in samples:
                line += f"{median / statistics.median(samples[args.against, name]):>14.2f}"
            print(line)


if __name__ == "__main__":
    main()
