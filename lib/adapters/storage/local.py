"""A local folder as storage, served by the dev server (make dev and tests)."""

import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from lib.adapters.storage.base import CHUNK_SIZE, StoredObject
from lib.errors import NotFound


class LocalStorage:
    """Files under a folder, served by the dev server at `<public base>/_local_storage/<key>`."""

    backend = "local"

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self.base_url = base_url.rstrip("/")

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return StoredObject(key, f"{self.base_url}/{quote(key)}", len(data), content_type)

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with path.open("wb") as file:
            for chunk in chunks:
                file.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        url = f"{self.base_url}/{quote(key)}"
        return StoredObject(key, url, size, content_type, digest.hexdigest())

    def read(self, key: str) -> bytes:
        return b"".join(self.stream(key))

    def stream(self, key: str) -> Iterator[bytes]:
        try:
            file = self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(f"Stored object {key} does not exist", code="object_missing") from None
        with file:
            while chunk := file.read(CHUNK_SIZE):
                yield chunk

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def list_uploads(self, prefix: str) -> list[tuple[str, datetime]]:
        """(key, time written) of each file whose key starts with `prefix`."""
        folder = self._path(prefix.rpartition("/")[0] or ".")
        if not folder.is_dir():
            return []
        root = self.root.resolve()
        return [
            (key, datetime.fromtimestamp(path.stat().st_mtime, UTC))
            for path in folder.iterdir()
            if path.is_file() and (key := path.relative_to(root).as_posix()).startswith(prefix)
        ]

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key escapes the storage root: {key}")
        return path
