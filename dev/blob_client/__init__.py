"""The real `@vercel/blob/client` for the dev console: npm's package, bundled by esbuild.

`package.json` and `package-lock.json` here pin it; `build()` installs them (dev/npm.py: `npm ci`
into a cache outside the repository) and bundles `entry.js` there into one ES module, once per
content. `make dev` builds it when Node.js and npm are present; without them the console uploads
every photo as multipart (which Vercel refuses over 4.5 MB) and says so.
`python -m dev.blob_client` builds it and prints where.
"""

from pathlib import Path

from dev import npm

HERE = Path(__file__).parent
BUNDLE_NAME = "blob-client.js"


def build() -> Path | None:
    """The bundle's path, built on first use; None (logged) when npm is missing or fails."""
    folder = npm.install(HERE, "blob-client", extra_files=("entry.js",))
    if folder is None:
        return None
    bundle = folder / BUNDLE_NAME
    if bundle.exists():
        return bundle
    esbuild = str(folder / "node_modules" / ".bin" / "esbuild")
    options = ["--bundle", "--format=esm", "--platform=browser", "--minify"]
    if npm.run([esbuild, "entry.js", *options, f"--outfile={BUNDLE_NAME}"], cwd=folder) is None:
        return None
    return bundle
