"""The npm packages this project pins (a committed package.json + package-lock.json), installed
with `npm ci` into a cache folder outside the repository: `$SSELFIE_NODE_CACHE`, default
`~/.cache/sselfie`, one folder per content of the pinned files, so a change reinstalls."""

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

LOCK_FILES = ("package.json", "package-lock.json")


def available() -> bool:
    return shutil.which("npm") is not None and shutil.which("node") is not None


def install(source: Path, name: str, extra_files: tuple[str, ...] = ()) -> Path | None:
    """A cache folder with `source`'s pinned packages installed (and `extra_files` copied);
    None, logged, when npm is missing or fails."""
    if not available():
        logger.warning("Node.js or npm not found: %s is not installed", name)
        return None
    files = LOCK_FILES + extra_files
    digest = hashlib.sha256(b"".join((source / file).read_bytes() for file in files))
    root = Path(os.environ.get("SSELFIE_NODE_CACHE") or Path.home() / ".cache" / "sselfie")
    folder = root / f"{name}-{digest.hexdigest()[:16]}"
    if (folder / "node_modules" / ".package-lock.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        shutil.copyfile(source / file, folder / file)
    if run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder) is None:
        return None
    return folder


def run(command: list[str], *, cwd: Path) -> str | None:
    """The command's output; None, logged, when it fails."""
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        logger.warning("%s failed: %s", command[0], (done.stdout + done.stderr).strip()[-2000:])
        return None
    return done.stdout
