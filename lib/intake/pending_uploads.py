"""Client uploads between their token and Blob's completion callback.

A token names a pathname (`selfie.jpg`, or one under the caller's own folder) and Blob stores
each file uploaded with it as `<stem>-<random><ext>`: only the callback tells which. So every
token is written down first — owner, pathname, validity — before any byte can be stored. A
stored file is then claimable by the live tokens of its pathname whose validity covers its
upload time, and:
- the callback (whose signed tokenPayload names the row) records the file as the row's owner's;
- a start naming a file its caller alone could have uploaded records it the same way;
- deleting the account marks its rows (a late callback deletes its file) and deletes the files
  no live token of anyone else could claim;
- the cron, once a row is past its expiry and the callback's grace, deletes every file made
  from its pathname that no recorded upload owns and no live token could claim.
"""

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg

logger = logging.getLogger(__name__)

# Blob can report an upload that began just before the token's validUntil a while after it.
CALLBACK_GRACE_MINUTES = 60
# Blob's clock (a file's uploadedAt) against PostgreSQL's (a token's validity).
CLOCK_SLACK_MINUTES = 2
ROWS_PER_SWEEP = 100
SWEEP_RECLAIM_MINUTES = 15
# Blob's suffix: a dash and letters or digits, before an extension (`selfie-Xy7.jpg`). Which
# dot of `a.b.jpg` it goes before is not documented, so every dot is allowed.
_RANDOM_SUFFIX = re.compile(r"-[A-Za-z0-9]+(?=\.|$)")
_LIVE = (
    "abandoned_at IS NULL AND expires_at > now() - make_interval(mins => %(grace)s)"
    " AND %(uploaded_at)s BETWEEN created_at - make_interval(mins => %(slack)s)"
    " AND expires_at + make_interval(mins => %(slack)s)"
)


class ListableStorage(Protocol):
    def list_uploads(self, prefix: str) -> list[tuple[str, datetime]]: ...

    def delete(self, keys: list[str]) -> None: ...


@dataclass(frozen=True)
class PendingUpload:
    id: str
    user_id: str
    pathname: str
    abandoned: bool


def record(conn: psycopg.Connection, *, user_id: str, pathname: str, expires_at: datetime) -> str:
    """Write down a token about to be issued; its id rides in the token's payload."""
    row = conn.execute(
        "INSERT INTO pending_uploads (user_id, pathname, expires_at) VALUES (%s, %s, %s)"
        " RETURNING id",
        (user_id, pathname, expires_at),
    ).fetchone()
    return str(row["id"])


def forget(conn: psycopg.Connection, pending_id: str) -> None:
    """A multipart upload is recorded: its row has nothing left to guard."""
    conn.execute("DELETE FROM pending_uploads WHERE id = %s", (pending_id,))


def find(conn: psycopg.Connection, pending_id: str) -> PendingUpload | None:
    """The row a callback's tokenPayload names, until the cron sweeps it."""
    row = conn.execute(
        "SELECT id, user_id, pathname, abandoned_at IS NOT NULL AS abandoned"
        " FROM pending_uploads WHERE id = %s",
        (pending_id,),
    ).fetchone()
    return _pending(row) if row else None


def claimants(
    conn: psycopg.Connection, stored_pathname: str, *, storage: ListableStorage
) -> list[PendingUpload]:
    """The live rows whose token could have stored this file (none when it does not exist)."""
    uploaded = dict(storage.list_uploads(stored_pathname)).get(stored_pathname)
    if uploaded is None:
        return []
    rows = conn.execute(
        "SELECT id, user_id, pathname, abandoned_at IS NOT NULL AS abandoned"
        f" FROM pending_uploads WHERE pathname = ANY(%(pathnames)s) AND {_LIVE}",
        _window(uploaded) | {"pathnames": [stored_pathname, *requested_pathnames(stored_pathname)]},
    ).fetchall()
    return [_pending(row) for row in rows]


def made_from(requested: str, stored: str) -> bool:
    """Whether Blob could have stored `requested` as `stored` (with or without its suffix)."""
    return stored == requested or requested in requested_pathnames(stored)


def requested_pathnames(stored: str) -> set[str]:
    """`a/selfie-Xy7.jpg` -> {`a/selfie.jpg`}: the pathnames Blob could have suffixed."""
    folder, slash, name = stored.rpartition("/")
    return {
        f"{folder}{slash}{name[: m.start()]}{name[m.end() :]}"
        for m in _RANDOM_SUFFIX.finditer(name)
        if m.start() > 0
    }


def _listing_prefixes(requested: str) -> set[str]:
    """Where `requested` itself and Blob's suffixed copies of it start: the name, and the name
    cut at each dot, plus `-`."""
    folder, slash, name = requested.rpartition("/")
    cuts = [i for i, char in enumerate(name) if char == "." and i > 0] + [len(name)]
    return {requested} | {f"{folder}{slash}{name[:cut]}-" for cut in cuts}


def abandon(conn: psycopg.Connection, *, user_id: str, storage: ListableStorage) -> bool:
    """Account deletion: the user's rows are marked (a late callback deletes its file) and
    the files no one else's live token could claim are deleted now; True once none of the
    user's tokens can still be used or reported."""
    marked = conn.execute(
        "UPDATE pending_uploads SET abandoned_at = now() WHERE user_id = %s RETURNING pathname",
        (user_id,),
    ).fetchall()
    for pathname in {row["pathname"] for row in marked}:
        _delete_unclaimed_files(conn, storage, pathname)
    expired = conn.execute(
        "DELETE FROM pending_uploads WHERE user_id = %s"
        " AND expires_at < now() - make_interval(mins => %s) RETURNING id",
        (user_id, CALLBACK_GRACE_MINUTES),
    ).fetchall()
    return len(expired) == len(marked)


def sweep(conn: psycopg.Connection, *, storage: ListableStorage) -> int:
    """The cron: rows past expiry and grace go, with the unreported files made from their
    pathnames that no live token could still claim; returns how many files were deleted."""
    # Claimed first, deleted last: no lock is held while storage answers, and rows whose
    # sweep died with its function are claimed again later.
    expired = conn.execute(
        "UPDATE pending_uploads SET swept_at = now() WHERE id IN ("
        " SELECT id FROM pending_uploads"
        " WHERE expires_at < now() - make_interval(mins => %s)"
        " AND (swept_at IS NULL OR swept_at < now() - make_interval(mins => %s))"
        " ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)"
        " RETURNING id, pathname",
        (CALLBACK_GRACE_MINUTES, SWEEP_RECLAIM_MINUTES, ROWS_PER_SWEEP),
    ).fetchall()
    deleted = sum(
        _delete_unclaimed_files(conn, storage, pathname)
        for pathname in {row["pathname"] for row in expired}
    )
    conn.execute(
        "DELETE FROM pending_uploads WHERE id = ANY(%s)", ([row["id"] for row in expired],)
    )
    if expired:
        logger.info("pending uploads expired rows=%d files=%d", len(expired), deleted)
    return deleted


def _delete_unclaimed_files(
    conn: psycopg.Connection, storage: ListableStorage, pathname: str
) -> int:
    """Delete the files made from `pathname` that no upload owns and no live token could
    claim. Files are listed before tokens are read: one stored after the listing is not
    among them, and the token it was stored with is seen."""
    files = {
        key: uploaded
        for prefix in sorted(_listing_prefixes(pathname))
        for key, uploaded in storage.list_uploads(prefix)
        if made_from(pathname, key)
    }
    if not files:
        return 0
    recorded = conn.execute(
        "SELECT storage_key FROM selfie_uploads WHERE storage_key = ANY(%s)", (list(files),)
    ).fetchall()
    orphans = sorted(
        key
        for key in files.keys() - {row["storage_key"] for row in recorded}
        if not _claimable(conn, pathname, files[key])
    )
    storage.delete(orphans)
    if orphans:
        logger.info("unreported client uploads deleted count=%d", len(orphans))
    return len(orphans)


def _claimable(conn: psycopg.Connection, pathname: str, uploaded_at: datetime) -> bool:
    row = conn.execute(
        f"SELECT 1 FROM pending_uploads WHERE pathname = %(pathname)s AND {_LIVE} LIMIT 1",
        _window(uploaded_at) | {"pathname": pathname},
    ).fetchone()
    return row is not None


def _window(uploaded_at: datetime) -> dict[str, Any]:
    return {
        "uploaded_at": uploaded_at,
        "grace": CALLBACK_GRACE_MINUTES,
        "slack": CLOCK_SLACK_MINUTES,
    }


def _pending(row: dict[str, Any]) -> PendingUpload:
    return PendingUpload(str(row["id"]), row["user_id"], row["pathname"], row["abandoned"])
