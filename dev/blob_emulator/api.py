"""Handler routes of the Blob API: put, copy, rename, head, list and delete."""

from __future__ import annotations

import json
from typing import Any

from dev.blob_emulator.client_tokens import check_client_upload
from dev.blob_emulator.protocol import (
    _EXISTS_MESSAGE,
    DEFAULT_CACHE_MAX_AGE,
    MAX_LIST_LIMIT,
    MIN_CACHE_MAX_AGE,
    _ApiError,
    _bad_request,
    _decode_cursor,
    _encode_cursor,
    _guess_content_type,
    _header_bool,
    _parse_max_age,
    _strip_etag,
    _validate_pathname,
    _with_random_suffix,
)


class _ApiRoutes:
    """The JSON API routes (mixed into the HTTP handler)."""

    # -- API ------------------------------------------------------------------------------

    def _api(self, path: str, query: dict[str, str]) -> None:
        path = path.removeprefix("/api/blob")
        route = path.rstrip("/")
        method = self.command
        if route not in ("", "/delete", "/mpu", "/rename"):
            raise _ApiError(404, "not_found", f"Unknown endpoint: {method} {path}")
        client = self._authenticate()
        if client is not None and not (
            (route == "" and method == "PUT" and "fromUrl" not in query) or route == "/mpu"
        ):
            raise _ApiError(
                403, "client_token_not_allowed", "Client tokens can only be used to upload"
            )
        if route == "" and method == "PUT":
            if "fromUrl" in query:
                self._copy(query)
            else:
                self._put(query, client)
        elif route == "" and method in ("GET", "HEAD"):
            if "url" in query:
                self._head(query)
            else:
                self._list(query)
        elif route == "/delete" and method == "POST":
            self._delete()
        elif route == "/rename" and method == "POST":
            self._rename(query)
        elif route == "/mpu" and method == "POST":
            self._mpu(query, client)
        else:
            raise _ApiError(405, "bad_request", f"Method {method} not allowed on {path or '/'}")

    def _access(self) -> str:
        access = (self.headers.get("x-vercel-blob-access") or "public").strip()
        if access not in ("public", "private"):
            raise _bad_request('access must be "public" or "private"')
        return access

    def _put_options(
        self, raw_pathname: str | None, client: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Options shared by put, copy and multipart create (token values win)."""
        h = self.headers
        pathname = _validate_pathname(raw_pathname)
        opts: dict[str, Any] = {
            "pathname": pathname,
            "access": self._access(),
            "content_type": h.get("x-content-type") or None,
            "if_match": h.get("x-if-match") or None,
        }
        if client is None:
            opts["random_suffix"] = _header_bool(h.get("x-add-random-suffix"), False)
            opts["allow_overwrite"] = _header_bool(h.get("x-allow-overwrite"), False)
            opts["max_age"] = _parse_max_age(h.get("x-cache-control-max-age"))
        else:
            opts["random_suffix"] = bool(client.get("addRandomSuffix"))
            opts["allow_overwrite"] = bool(client.get("allowOverwrite"))
            age = client.get("cacheControlMaxAge")
            opts["max_age"] = max(age, MIN_CACHE_MAX_AGE) if isinstance(age, int) else None
            opts["if_match"] = client.get("ifMatch") or None
        return opts

    def _final_pathname(self, opts: dict[str, Any]) -> str:
        """Apply the random suffix and the overwrite / if-match rules (lock held)."""
        emu = self.emulator
        pathname = opts["pathname"]
        if opts["random_suffix"]:
            pathname = _with_random_suffix(pathname)
        existing = emu._index.get(pathname)
        if opts["if_match"] is not None:
            if existing is None or _strip_etag(existing["etag"]) != _strip_etag(opts["if_match"]):
                raise _ApiError(412, "precondition_failed", "The blob was modified (ETag mismatch)")
        elif existing is not None and not opts["allow_overwrite"]:
            raise _bad_request(_EXISTS_MESSAGE)
        return pathname

    def _put(self, query: dict[str, str], client: dict[str, Any] | None) -> None:
        emu = self.emulator
        opts = self._put_options(query.get("pathname"), client)
        content_type = opts["content_type"] or _guess_content_type(opts["pathname"])
        if client is not None:
            check_client_upload(
                client, pathname=opts["pathname"], content_type=content_type, size=None
            )
            declared = self.headers.get("content-length")
            if declared and declared.isdigit():
                check_client_upload(
                    client, pathname=opts["pathname"], content_type=None, size=int(declared)
                )
        data = self._read_body()
        if client is not None:
            size = len(data)
            check_client_upload(client, pathname=opts["pathname"], content_type=None, size=size)
        with emu._lock:
            pathname = self._final_pathname(opts)
            meta = emu._write_blob(
                pathname,
                access=opts["access"],
                content_type=content_type,
                max_age=opts["max_age"] or DEFAULT_CACHE_MAX_AGE,
                data=data,
            )
            result = emu._put_result(meta)
        if client is not None:  # registered before answering, so wait_for_callbacks sees it
            emu._schedule_callback(client, result)
        self._json(200, result)

    def _copy(self, query: dict[str, str]) -> None:
        emu = self.emulator
        self._read_body()
        opts = self._put_options(query.get("pathname"), None)
        with emu._lock:
            source = emu._lookup(query["fromUrl"])
            if opts["if_match"] is not None and _strip_etag(source["etag"]) != _strip_etag(
                opts["if_match"]
            ):
                raise _ApiError(
                    412, "precondition_failed", "The source blob was modified (ETag mismatch)"
                )
            opts["if_match"] = None
            pathname = self._final_pathname(opts)
            meta = emu._write_blob(
                pathname,
                access=opts["access"],
                content_type=opts["content_type"] or source["contentType"],
                max_age=opts["max_age"] or source["cacheControlMaxAge"],
                source_file=emu._content_path(source["pathname"]),
            )
            result = emu._put_result(meta)
        self._json(200, result)

    def _rename(self, query: dict[str, str]) -> None:
        emu = self.emulator
        self._read_body()
        opts = self._put_options(query.get("pathname"), None)
        with emu._lock:
            source = emu._lookup(query.get("fromUrl", ""))
            pathname = self._final_pathname(opts | {"if_match": None})
            if pathname == source["pathname"]:
                result = emu._put_result(source)
            else:
                meta = emu._write_blob(
                    pathname,
                    access=source["access"],
                    content_type=opts["content_type"] or source["contentType"],
                    max_age=opts["max_age"] or source["cacheControlMaxAge"],
                    source_file=emu._content_path(source["pathname"]),
                )
                emu._delete_blob(source["pathname"])
                result = emu._put_result(meta)
        self._json(200, result)

    def _head(self, query: dict[str, str]) -> None:
        emu = self.emulator
        with emu._lock:
            meta = emu._lookup(query["url"])
            result = emu._head_result(meta)
        self._json(200, result)

    def _list(self, query: dict[str, str]) -> None:
        emu = self.emulator
        try:
            limit = int(query.get("limit") or MAX_LIST_LIMIT)
        except ValueError:
            raise _bad_request("limit must be an integer") from None
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise _bad_request(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        prefix = query.get("prefix") or ""
        folded = query.get("mode") == "folded"
        after = _decode_cursor(query["cursor"]) if query.get("cursor") else None
        with emu._lock:
            entries: dict[str, dict[str, Any] | None] = {}  # key -> meta, or None for folders
            for pathname, meta in emu._index.items():
                if not pathname.startswith(prefix):
                    continue
                rest = pathname[len(prefix) :]
                if folded and "/" in rest:
                    entries[prefix + rest.split("/", 1)[0] + "/"] = None
                else:
                    entries[pathname] = meta
            keys = sorted(k for k in entries if after is None or k > after)
            page, more = keys[:limit], len(keys) > limit
            body: dict[str, Any] = {
                "blobs": [emu._list_entry(entries[k]) for k in page if entries[k] is not None],
                "hasMore": more,
                "cursor": _encode_cursor(page[-1]) if more else None,
            }
            if folded:
                body["folders"] = [k for k in page if entries[k] is None]
        self._json(200, body)

    def _delete(self) -> None:
        emu = self.emulator
        try:
            payload = json.loads(self._read_body() or b"{}")
            urls = payload["urls"]
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise _bad_request('body must be JSON {"urls": [...]}') from None
        if_match = self.headers.get("x-if-match")
        with emu._lock:
            pathnames = []
            for url in urls:
                try:
                    pathnames.append(emu._lookup(url)["pathname"])
                except _ApiError as err:
                    if err.status != 404:
                        raise
            if if_match and len(urls) == 1 and pathnames:
                meta = emu._index[pathnames[0]]
                if _strip_etag(meta["etag"]) != _strip_etag(if_match):
                    raise _ApiError(
                        412, "precondition_failed", "The blob was modified (ETag mismatch)"
                    )
            for pathname in pathnames:
                emu._delete_blob(pathname)
        self._json(200, {})
