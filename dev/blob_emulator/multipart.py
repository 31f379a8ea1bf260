"""Handler routes of multipart uploads: create, upload part, complete."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any
from urllib.parse import unquote

from dev.blob_emulator.client_tokens import check_client_upload
from dev.blob_emulator.protocol import (
    _EXISTS_MESSAGE,
    DEFAULT_CACHE_MAX_AGE,
    MAX_PARTS,
    MIN_PART_SIZE,
    _ApiError,
    _bad_request,
    _guess_content_type,
    _strip_etag,
)


class _MultipartRoutes:
    """The `/mpu` routes (mixed into the HTTP handler)."""

    # -- multipart ------------------------------------------------------------------------

    def _mpu(self, query: dict[str, str], client: dict[str, Any] | None) -> None:
        action = (self.headers.get("x-mpu-action") or "").strip()
        if action == "create":
            self._mpu_create(query, client)
        elif action == "upload":
            self._mpu_upload(client)
        elif action == "complete":
            self._mpu_complete(client)
        else:
            raise _bad_request("x-mpu-action must be create, upload or complete")

    def _mpu_create(self, query: dict[str, str], client: dict[str, Any] | None) -> None:
        emu = self.emulator
        self._read_body()
        opts = self._put_options(query.get("pathname"), client)
        content_type = opts["content_type"] or _guess_content_type(opts["pathname"])
        if client is not None:
            check_client_upload(
                client, pathname=opts["pathname"], content_type=content_type, size=None
            )
        with emu._lock:
            pathname = self._final_pathname(opts)
            upload_id = secrets.token_urlsafe(24)
            (emu.root / "mpu" / upload_id).mkdir(parents=True, exist_ok=True)
            emu._uploads[upload_id] = {
                "key": pathname,
                "opts": opts | {"content_type": content_type},
                "parts": {},
                "client": client,
            }
        self._json(200, {"key": pathname, "uploadId": upload_id})

    def _upload_for(self, client: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        emu = self.emulator
        upload_id = self.headers.get("x-mpu-upload-id") or ""
        key = unquote(self.headers.get("x-mpu-key") or "")
        upload = emu._uploads.get(upload_id)
        if upload is None or upload["key"] != key:
            raise _bad_request("Multipart upload not found (check x-mpu-key and x-mpu-upload-id)")
        if (client is None) != (upload["client"] is None):
            raise _ApiError(403, "forbidden", "Token does not match the multipart upload")
        return upload_id, upload

    def _mpu_upload(self, client: dict[str, Any] | None) -> None:
        emu = self.emulator
        try:
            number = int(self.headers.get("x-mpu-part-number") or "")
        except ValueError:
            raise _bad_request("x-mpu-part-number must be an integer") from None
        if not 1 <= number <= MAX_PARTS:
            raise _bad_request(f"x-mpu-part-number must be between 1 and {MAX_PARTS}")
        with emu._lock:
            upload_id, upload = self._upload_for(client)
        data = self._read_body()
        if not data:
            raise _bad_request("a multipart part cannot be empty")
        etag = hashlib.sha256(data).hexdigest()
        part_file = emu.root / "mpu" / upload_id / f"{number}.part"
        with emu._lock:
            if emu._uploads.get(upload_id) is not upload:
                raise _bad_request("Multipart upload not found")
            if client is not None:
                sizes = {n: s for n, (_, s) in upload["parts"].items()} | {number: len(data)}
                check_client_upload(
                    upload["client"],
                    pathname=upload["opts"]["pathname"],
                    content_type=None,
                    size=sum(sizes.values()),
                )
            part_file.write_bytes(data)
            upload["parts"][number] = (etag, len(data))
        self._json(200, {"etag": etag})

    def _mpu_complete(self, client: dict[str, Any] | None) -> None:
        emu = self.emulator
        try:
            parts = json.loads(self._read_body() or b"[]")
            numbers = [int(p["partNumber"]) for p in parts]
            etags = [str(p["etag"]) for p in parts]
        except (ValueError, KeyError, TypeError):
            raise _bad_request('body must be JSON [{"partNumber": 1, "etag": "..."}]') from None
        if not parts:
            raise _bad_request("a multipart upload needs at least one part")
        if numbers != sorted(set(numbers)):
            raise _bad_request("parts must be listed once each, in ascending partNumber order")
        with emu._lock:
            upload_id, upload = self._upload_for(client)
            files = []
            for i, (number, etag) in enumerate(zip(numbers, etags, strict=True)):
                stored = upload["parts"].get(number)
                if stored is None or _strip_etag(stored[0]) != _strip_etag(etag):
                    raise _bad_request(f"part {number} was not uploaded or its etag differs")
                if i < len(numbers) - 1 and stored[1] < MIN_PART_SIZE:
                    raise _bad_request(
                        f"part {number} is smaller than 5 MiB; only the last part may be"
                    )
                files.append(emu.root / "mpu" / upload_id / f"{number}.part")
            opts = upload["opts"]
            if upload["client"] is not None:
                total = sum(upload["parts"][n][1] for n in numbers)
                check_client_upload(
                    upload["client"], pathname=opts["pathname"], content_type=None, size=total
                )
            pathname = upload["key"]
            existing = emu._index.get(pathname)
            if existing is not None and not opts["allow_overwrite"] and not opts["if_match"]:
                raise _bad_request(_EXISTS_MESSAGE)
            meta = emu._write_blob(
                pathname,
                access=opts["access"],
                content_type=opts["content_type"],
                max_age=opts["max_age"] or DEFAULT_CACHE_MAX_AGE,
                parts=files,
            )
            result = emu._put_result(meta)
            emu._drop_upload(upload_id)
        if upload["client"] is not None:
            emu._schedule_callback(upload["client"], result)
        self._json(200, result)
