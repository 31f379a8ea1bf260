"""The real `@vercel/blob/client` for the dev console: npm's package, bundled by esbuild.

`package.json` and `package-lock.json` here pin it; `build()` installs them with `npm ci` into a
cache folder outside the repository (`$SSELFIE_NODE_CACHE`, default `~/.cache/sselfie`) and
bundles `entry.js` into one ES module there, once per lockfile. `make dev` builds it when
Node.js and npm are present; without them the console uploads every photo as multipart (which
Vercel refuses over 4.5 MB) and says so. `python -m dev.blob_client` builds it and prints where.
"""

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
SOURCES = ("package.json", "package-lock.json", "entry.js")
BUNDLE_NAME = "blob-client.js"


def cache_root() -> Path:
    """Where npm installs and bundles for this project go (never inside the repository)."""
    return Path(os.environ.get("SSELFIE_NODE_CACHE") or Path.home() / ".cache" / "sselfie")


def build() -> Path | None:
    """The bundle's path, built on first use; None (logged) when npm is missing or fails."""
    if shutil.which("npm") is None:
        logger.warning("npm not found: the console uploads photos over 4.5 MB as multipart")
        return None
    digest = hashlib.sha256(b"".join((HERE / name).read_bytes() for name in SOURCES))
    folder = cache_root() / f"blob-client-{digest.hexdigest()[:16]}"
    bundle = folder / BUNDLE_NAME
    if bundle.exists():
        return bundle
    folder.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        shutil.copyfile(HERE / name, folder / name)
    commands = [
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        [
            str(folder / "node_modules" / ".bin" / "esbuild"),
            "entry.js",
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--minify",
            f"--outfile={BUNDLE_NAME}",
        ],
    ]
    for command in commands:
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            logger.warning("%s failed: %s", command[0], done.stderr.strip()[-2000:])
            return None
    return bundle
