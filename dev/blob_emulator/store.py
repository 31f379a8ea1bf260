"""On-disk blobs and their metadata, plus the JSON shapes the API returns for them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from dev.blob_emulator.delivery import delivery_url
from dev.blob_emulator.protocol import (
    DELIVERY_DOMAIN,
    _bad_request,
    _content_disposition,
    _not_found,
    _now_iso,
    _validate_pathname,
)

log = logging.getLogger(__name__)


class _DiskStore:
    """Blob files, metadata index and pending uploads under `root` (mixed into `BlobEmulator`)."""

    # ---- storage -----------------------------------------------------------------------

    def _blob_base(self, pathname: str) -> Path:
        digest = hashlib.sha256(pathname.encode("utf-8")).hexdigest()
        return self.root / "blobs" / digest[:2] / digest

    def _content_path(self, pathname: str) -> Path:
        return self._blob_base(pathname).with_suffix(".bin")

    def _meta_path(self, pathname: str) -> Path:
        return self._blob_base(pathname).with_suffix(".json")

    def _load_index(self) -> None:
        blobs = self.root / "blobs"
        if not blobs.is_dir():
            return
        for meta_file in blobs.glob("*/*.json"):
            try:
                meta = json.loads(meta_file.read_text("utf-8"))
                if meta_file.with_suffix(".bin").is_file():
                    self._index[meta["pathname"]] = meta
            except (OSError, ValueError, KeyError):
                log.warning("blob emulator: skipping unreadable %s", meta_file)

    def _write_blob(
        self,
        pathname: str,
        *,
        access: str,
        content_type: str,
        max_age: int,
        data: bytes | None = None,
        source_file: Path | None = None,
        parts: list[Path] | None = None,
    ) -> dict[str, Any]:
        """Store content (caller holds the lock). Exactly one of data/source_file/parts."""
        base = self._blob_base(pathname)
        base.parent.mkdir(parents=True, exist_ok=True)
        tmp = base.with_name(base.name + f".{secrets.token_hex(4)}.tmp")
        digest = hashlib.sha256()
        size = 0
        with open(tmp, "wb") as out:
            if data is not None:
                out.write(data)
                digest.update(data)
                size = len(data)
            else:
                for src in [source_file] if source_file is not None else parts or []:
                    with open(src, "rb") as f:
                        while chunk := f.read(1024 * 1024):
                            out.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
        os.replace(tmp, base.with_suffix(".bin"))
        meta = {
            "pathname": pathname,
            "access": access,
            "size": size,
            "contentType": content_type,
            "cacheControlMaxAge": max_age,
            "uploadedAt": _now_iso(),
            "etag": f'"{digest.hexdigest()}"',
        }
        meta_tmp = base.with_name(base.name + f".{secrets.token_hex(4)}.json.tmp")
        meta_tmp.write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
        os.replace(meta_tmp, base.with_suffix(".json"))
        self._index[pathname] = meta
        return meta

    def _delete_blob(self, pathname: str) -> None:
        self._index.pop(pathname, None)
        for path in (self._content_path(pathname), self._meta_path(pathname)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _drop_upload(self, upload_id: str) -> None:
        self._uploads.pop(upload_id, None)
        shutil.rmtree(self.root / "mpu" / upload_id, ignore_errors=True)

    # ---- JSON shapes -------------------------------------------------------------------

    def _urls(self, meta: dict[str, Any]) -> tuple[str, str]:
        url = delivery_url(self.store_id, meta["access"], meta["pathname"])
        return url, url + "?download=1"

    def _put_result(self, meta: dict[str, Any]) -> dict[str, Any]:
        url, download = self._urls(meta)
        return {
            "url": url,
            "downloadUrl": download,
            "pathname": meta["pathname"],
            "contentType": meta["contentType"],
            "contentDisposition": _content_disposition(meta["pathname"], "attachment"),
            "etag": meta["etag"],
        }

    def _cache_control(self, meta: dict[str, Any]) -> str:
        scope = "private" if meta["access"] == "private" else "public"
        return f"{scope}, max-age={meta['cacheControlMaxAge']}"

    def _head_result(self, meta: dict[str, Any]) -> dict[str, Any]:
        url, download = self._urls(meta)
        return {
            "url": url,
            "downloadUrl": download,
            "pathname": meta["pathname"],
            "size": meta["size"],
            "uploadedAt": meta["uploadedAt"],
            "contentType": meta["contentType"],
            "contentDisposition": _content_disposition(meta["pathname"], "attachment"),
            "cacheControl": self._cache_control(meta),
            "etag": meta["etag"],
        }

    def _list_entry(self, meta: dict[str, Any]) -> dict[str, Any]:
        url, download = self._urls(meta)
        return {
            "url": url,
            "downloadUrl": download,
            "pathname": meta["pathname"],
            "size": meta["size"],
            "uploadedAt": meta["uploadedAt"],
            "etag": meta["etag"],
        }

    # ---- target resolution -------------------------------------------------------------

    def _resolve_target(self, value: str) -> tuple[str, str | None]:
        """pathname or delivery URL -> (pathname, access from the URL or None)."""
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value):
            parts = urlsplit(value)
            host = (parts.hostname or "").lower()
            if not host.endswith(DELIVERY_DOMAIN):
                raise _bad_request(f"Invalid URL: {value}")
            labels = host[: -len(DELIVERY_DOMAIN)].split(".")
            if len(labels) != 2 or labels[1] not in ("public", "private"):
                raise _bad_request(f"Invalid URL: {value}")
            if labels[0] != self.store_id.lower():
                raise _not_found()
            return _validate_pathname(unquote(parts.path)), labels[1]
        return _validate_pathname(value), None

    def _lookup(self, value: str) -> dict[str, Any]:
        pathname, access = self._resolve_target(value)
        meta = self._index.get(pathname)
        if meta is None or (access is not None and meta["access"] != access):
            raise _not_found()
        return meta
