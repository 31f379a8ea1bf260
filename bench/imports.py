"""Cold import time of each function, as a fresh Vercel instance pays it.

Each sample is a new interpreter that imports one `api/**/*.py` file by path (as Vercel's
runtime does) and reports the time of that import alone. Figures are medians of N runs,
reported as a ratio of the start function's time measured in the same run.

    .venv/bin/python -m bench.imports --runs 15
"""

import argparse
import statistics
import subprocess
import sys

from dev.server import PROJECT_ROOT, discover_routes

PROBE = """
import importlib.util, sys, time
sys.path.insert(0, sys.argv[1])
started = time.perf_counter()
spec = importlib.util.spec_from_file_location(sys.argv[2], sys.argv[3])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - started, "numpy" in sys.modules or "ai_edge_litert" in sys.modules)
"""
BASELINE = "api.training.start"


def cold_import_seconds(module_name: str, path: str) -> tuple[float, bool]:
    """One fresh interpreter's import time of one function file, and whether that import
    loaded numpy or LiteRT (only the face check needs them, and only when it runs)."""
    output = subprocess.run(
        [
            sys.executable,
            "-X",
            "frozen_modules=on",
            "-c",
            PROBE,
            str(PROJECT_ROOT),
            module_name,
            path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seconds, heavy = output.split()
    return float(seconds), heavy == "True"


def main() -> None:
    """Measure every function and print a table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=11, help="fresh interpreters per function")
    args = parser.parse_args()
    samples: dict[str, list[float]] = {route.module_name: [] for route in discover_routes()}
    paths = {route.module_name: str(route.path) for route in discover_routes()}
    heavy: set[str] = set()
    for _ in range(args.runs):  # interleaved, so drift in machine load hits every function alike
        for name in samples:
            seconds, loaded = cold_import_seconds(name, paths[name])
            samples[name].append(seconds)
            if loaded:
                heavy.add(name)
    baseline = statistics.median(samples[BASELINE])
    print(f"cold import, {args.runs} fresh interpreters each (Python {sys.version.split()[0]})")
    print(f"{'function':<28}{'median ms':>10}{'min ms':>9}{'vs start':>10}  numpy/litert")
    for name, values in sorted(samples.items()):
        median = statistics.median(values)
        print(
            f"{name:<28}{median * 1000:>10.1f}{min(values) * 1000:>9.1f}{median / baseline:>10.2f}"
            f"  {'LOADED' if name in heavy else 'no'}"
        )


if __name__ == "__main__":
    main()
