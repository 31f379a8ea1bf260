"""Vercel's own build of the committed tree, offline, and its functions started as Vercel does.

The CLI (pinned, from npm) and `uv` (from PyPI; the builder needs it on PATH) are installed once
into a cache outside the repository (`$SSELFIE_VERCEL_CACHE`, default ~/.cache/sselfie-vercel).
`vercel build` runs with no account: a hand-written `.vercel/project.json` links nothing.

A built function is `.vercel/output/functions/<path>.func/`: its `.vc-config.json` maps each
bundle path to a project or installed file (`filePathMap`), beside the launcher
`vc__handler__python.py`. `lay_out` makes that bundle a real folder (hard links); `launch` starts
it in an empty Python 3.12 whose only packages are the bundle's `_vendor`, and sends one request
through the launcher's `vc_handler`, as the platform's Lambda-style entry does.
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

CLI_VERSION = "64.0.2"
UV_VERSION = "0.13.10"
# sandbox@4.4.0 (a dependency of this CLI that `build` never loads) is missing from some npm
# registries; 4.5.0 stands in for it.
CLI_PACKAGE = {
    "name": "sselfie-vercel-cli",
    "private": True,
    "dependencies": {"vercel": CLI_VERSION},
    "overrides": {"sandbox": "4.5.0"},
}
PROJECT_LINK = {"projectId": "prj_local", "orgId": "team_local", "settings": {"framework": None}}
LAUNCHER = "vc__handler__python"
# One request through the launcher; prints the answer and which heavy packages got imported.
REQUEST_PROBE = """
import json, sys, time
started = time.perf_counter()
import vc__handler__python as launcher
answer = launcher.vc_handler({"body": sys.argv[1]}, None)
heavy = sorted({"numpy", "ai_edge_litert", "PIL", "boto3", "dlib"} & set(sys.modules))
print(json.dumps({"answer": answer, "heavy": heavy, "seconds": time.perf_counter() - started}))
"""


def cache_dir() -> Path:
    """Where the CLI and uv live between runs (outside the repository)."""
    default = Path.home() / ".cache" / "sselfie-vercel"
    return Path(os.environ.get("SSELFIE_VERCEL_CACHE", default))


def missing_tools() -> str | None:
    """Why the build cannot run here, or None."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (.ci/run installs Node.js and npm)"
    if not python312():
        return "no python3.12 to start the built functions with"
    return None


def python312() -> str | None:
    """A Python 3.12 interpreter outside any venv (the functions' runtime)."""
    base = Path(sys.base_prefix) / "bin" / "python3.12"
    return str(base) if base.exists() else shutil.which("python3.12")


def install_tools() -> tuple[Path, Path]:
    """(the vercel executable, a folder holding `uv`), installed once into the cache."""
    cli = cache_dir() / f"cli-{CLI_VERSION}"
    vercel = cli / "node_modules" / ".bin" / "vercel"
    if not vercel.exists():
        cli.mkdir(parents=True, exist_ok=True)
        (cli / "package.json").write_text(json.dumps(CLI_PACKAGE))
        npm = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"]
        subprocess.run(npm, cwd=cli, check=True, capture_output=True)
    uv_env = cache_dir() / f"uv-{UV_VERSION}"
    if not (uv_env / "bin" / "uv").exists():
        subprocess.run([python312(), "-m", "venv", str(uv_env)], check=True)
        pip = [uv_env / "bin" / "pip", "install", "--quiet", f"uv=={UV_VERSION}"]
        subprocess.run(pip, check=True, capture_output=True)
    return vercel, uv_env / "bin"


def committed_tree(repository: Path, dest: Path, ref: str = "HEAD") -> Path:
    """A clean copy of what a commit holds (no venv, no local data, no uncommitted file)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(repository), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def build(project: Path) -> Path:
    """Run `vercel build` in `project`; the output folder (.vercel/output)."""
    vercel, uv_bin = install_tools()
    (project / ".vercel").mkdir(exist_ok=True)
    (project / ".vercel" / "project.json").write_text(json.dumps(PROJECT_LINK))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERCEL")}
    env |= {"PATH": f"{uv_bin}:{env['PATH']}", "VERCEL_TELEMETRY_DISABLED": "1"}
    result = subprocess.run(
        [str(vercel), "build", "--yes"], cwd=project, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"vercel build failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return project / ".vercel" / "output"


@dataclass(frozen=True)
class Function:
    """One built function: `name` is its entrypoint without .py, e.g. api/training/start."""

    name: str
    folder: Path  # the .func folder
    project: Path

    @cached_property
    def config(self) -> dict:
        return json.loads((self.folder / ".vc-config.json").read_text())

    @cached_property
    def files(self) -> dict[str, Path]:
        """Bundle path → source file, as the file map says, plus the .func folder's own."""
        files = {
            bundle: self.project / source for bundle, source in self.config["filePathMap"].items()
        }
        for path in self.folder.iterdir():
            if path.name != ".vc-config.json":
                files[path.name] = path
        return files

    def size_bytes(self) -> int:
        """Unzipped size as the builder counts it: the mapped files and the .func folder's."""
        own = (self.folder / ".vc-config.json").stat().st_size
        return own + sum(path.stat().st_size for path in self.files.values())

    def sizes_by_part(self) -> dict[str, int]:
        """Bytes per installed package (top folder under _vendor) or project folder."""
        parts: dict[str, int] = {}
        for bundle, source in self.files.items():
            segments = bundle.split("/")
            if segments[0] == "_vendor":
                part = segments[1].split("-")[0] if ".dist-info" in segments[1] else segments[1]
            elif segments[0] == "lib" and len(segments) > 2:
                part = f"lib/{segments[1]}"
            else:
                part = segments[0] if len(segments) > 1 else "(project files)"
            parts[part] = parts.get(part, 0) + source.stat().st_size
        return parts

    def lay_out(self, dest: Path) -> Path:
        """The bundle as a folder (hard links where possible), as the platform unpacks it."""
        for bundle, source in self.files.items():
            target = dest / bundle
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
        return dest


def functions(output: Path) -> list[Function]:
    """Every built function, by entrypoint name."""
    root = output / "functions"
    project = output.parent.parent
    return [
        Function(folder.relative_to(root).as_posix().removesuffix(".func"), folder, project)
        for folder in sorted(root.rglob("*.func"))
    ]


def empty_python(dest: Path) -> Path:
    """A Python 3.12 with no packages at all (no pip either): the bundle brings everything."""
    subprocess.run([python312(), "-m", "venv", "--without-pip", str(dest)], check=True)
    return dest / "bin" / "python"


def launch(
    bundle: Path,
    python: Path,
    request: dict,
    env: dict[str, str],
    config: dict,
) -> dict:
    """Start the bundle's launcher in a fresh process and send one request; returns
    {"answer": {"statusCode", "headers", "body"}, "heavy": [...], "seconds": ...}."""
    body = json.dumps({"headers": {"host": "example.vercel.app"}, "body": "", **request})
    result = subprocess.run(
        [str(python), "-c", REQUEST_PROBE, body],
        cwd=bundle,
        env={"PATH": "/usr/bin:/bin", "HOME": str(bundle), **config["environment"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{bundle.name} failed to answer:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
