"""What each function weighs as Vercel's builder counts it, and what it is made of.

Builds a commit (default HEAD) with Vercel's own CLI (dev/vercel_build.py) and prints each
function's unzipped size (its `.vc-config.json` file map plus the `.func` folder; above 225 MiB
the builder installs packages at cold start instead) as a ratio of the 180 MiB line, then the
parts of one function: each installed package (a top folder of `_vendor/`) and project folder.

    .venv/bin/python -m bench.bundle
    .venv/bin/python -m bench.bundle --parts-of api/training/progress
"""

import argparse
import sys
import tempfile
from pathlib import Path

from dev import vercel_build
from dev.server import PROJECT_ROOT

MIB = 1024 * 1024
LINE = 180 * MIB


def main() -> None:
    """Build and print the two tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--ref", default="HEAD", help="the commit to build (default HEAD)")
    parser.add_argument("--parts-of", default="api/training/start", help="function to break down")
    parser.add_argument("--top", type=int, default=20, help="parts to list")
    args = parser.parse_args()
    reason = vercel_build.missing_tools()
    if reason:
        sys.exit(reason)
    with tempfile.TemporaryDirectory(prefix="bundle-") as scratch:
        project = vercel_build.committed_tree(PROJECT_ROOT, Path(scratch) / "p", args.ref)
        functions = vercel_build.functions(vercel_build.build(project))
        print(f"{'function':<28}{'MiB':>8}{'files':>7}{'vs 180 MiB':>12}")
        for function in functions:
            size, files = function.size_bytes(), len(function.files)
            print(f"{function.name:<28}{size / MIB:>8.1f}{files:>7}{size / LINE:>12.2f}")
        chosen = next(f for f in functions if f.name == args.parts_of)
        parts = sorted(chosen.sizes_by_part().items(), key=lambda item: -item[1])
        print(f"\nparts of {chosen.name} (MB on disk)")
        for part, size in parts[: args.top]:
            print(f"  {part:<44}{size / 1e6:>7.2f}")
        print(f"  {'the other ' + str(len(parts) - args.top):<44}", end="")
        print(f"{sum(size for _, size in parts[args.top :]) / 1e6:>7.2f}")


if __name__ == "__main__":
    main()
