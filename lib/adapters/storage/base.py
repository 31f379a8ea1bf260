"""What every storage backend offers (Vercel Blob, S3 or a local folder), and chunking helpers.

Objects are referred to by key (the Blob pathname); URLs are only handed to browsers and to
Replicate, never fetched from user input.
"""

import hashlib
import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import chain
from typing import IO, Protocol

logger = logging.getLogger(__name__)


CHUNK_SIZE = 64 * 1024
# Multipart parts must be at least 5 MiB (except the last); the minimum keeps the part read
# into memory to be sent small.
PART_SIZE = 5 * 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    key: str
    url: str
    size: int
    content_type: str
    sha256: str | None = None


class Storage(Protocol):
    """What every backend offers; keys are relative paths like `users/<hash>/selfies/x.jpg`."""

    backend: str

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        """Store bytes under key (overwriting)."""
        ...

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        """Store a stream without holding it whole in memory; the result carries its sha256."""
        ...

    def read(self, key: str) -> bytes:
        """The whole object (404 object_missing when absent)."""
        ...

    def stream(self, key: str) -> Iterator[bytes]:
        """The object in chunks (404 object_missing when absent)."""
        ...

    def list_uploads(self, prefix: str) -> list[tuple[str, datetime]]:
        """(key, time stored) of each object whose key starts with `prefix`."""
        ...

    def delete(self, keys: list[str]) -> None:
        """Remove objects; missing ones are ignored."""
        ...


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup a stream into pieces of `size` bytes (the last may be shorter). Bytes wait for
    their piece to fill in a temporary file, not in memory; a piece is read back to be sent."""
    with tempfile.TemporaryFile() as pending:
        for chunk in chunks:
            pending.write(chunk)
            while pending.tell() >= size:
                yield _first(pending, size)
        pending.seek(0)
        if rest := pending.read():
            yield rest


def _first(pending: IO[bytes], size: int) -> bytes:
    """The file's first `size` bytes; what followed them is moved to its start."""
    pending.seek(0)
    piece, rest = pending.read(size), pending.read()
    pending.seek(0)
    pending.truncate()
    pending.write(rest)
    return piece


def put_if_small(
    storage: Storage, key: str, chunks: Iterable[bytes], content_type: str
) -> tuple[StoredObject | None, Iterator[bytes]]:
    """Store a stream that fits in one part with a plain put; else (None, its parts)."""
    pieces = rechunk(chunks, PART_SIZE)
    first = next(pieces, b"")
    if len(first) < PART_SIZE:  # the whole object fits in one request
        stored = storage.put(key, first, content_type)
        return replace(stored, sha256=hashlib.sha256(first).hexdigest()), iter(())
    return None, chain([first], pieces)
