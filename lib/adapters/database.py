"""PostgreSQL connections and the project's migrations."""

import functools
import logging
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from weakref import WeakKeyDictionary

import psycopg
from psycopg import pq
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from lib.errors import ConfigError, ServiceUnavailable
from lib.settings import Settings

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parents[1] / "migrations"
# Any constant shared by every instance: concurrent cold starts queue on it while migrating.
_MIGRATION_LOCK_KEY = 7_245_811_093
_migrated: set[str] = set()
_migrate_lock = threading.Lock()
POOL_MAX_SIZE = 10
POOL_MAX_IDLE_SECONDS = 60
# How long a request waits for a connection: a healthy server gives one in milliseconds, so
# waiting longer only delays the 503 while the database is down.
POOL_WAIT_SECONDS = 2.0
# One handshake's limit (Neon may take a second or two to wake a suspended compute).
CONNECT_TIMEOUT_SECONDS = 5
# A connection unused for longer than this is checked (one round trip) before it is handed out;
# one used just now is checked only if the server has written to it since (a terminated
# backend's goodbye), which costs no round trip. (Noted by connect(), not by a pool `reset`
# callback, which would hand every return to a worker thread.)
CHECK_AFTER_IDLE_SECONDS = 1.0
_pools: dict[str, ConnectionPool] = {}
_pools_lock = threading.Lock()
_last_used: WeakKeyDictionary[psycopg.Connection, float] = WeakKeyDictionary()


@contextmanager
def connect(settings: Settings) -> Iterator[psycopg.Connection]:
    """An autocommit connection from this instance's pool (use `conn.transaction()` for units
    of work); returned to the pool when the block ends."""
    if not settings.database_url:
        raise ConfigError("DATABASE_URL environment variable is not set")
    try:
        pool = _pool(settings.database_url)
        conn = _working_connection(pool)
        try:
            _ensure_migrated(conn, settings.database_url)
            yield conn
        finally:
            _last_used[conn] = time.time()
            pool.putconn(conn)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        logger.error("database unreachable error=%s", type(exc).__name__)
        raise ServiceUnavailable(
            "The database is unreachable", code="database_unavailable"
        ) from None


def atomic(conn: psycopg.Connection) -> AbstractContextManager:
    """A transaction around a few statements, or the caller's own when one is open (joining it
    costs no SAVEPOINT round trips on the webhook's hot path)."""
    if conn.info.transaction_status == pq.TransactionStatus.INTRANS:
        return nullcontext()
    return conn.transaction()


def atomically[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """Run `function(conn, ...)` as one unit of work: its statements commit together or not."""

    @functools.wraps(function)
    def in_transaction(*args: P.args, **kwargs: P.kwargs) -> R:
        with atomic(args[0]):  # type: ignore[arg-type]
            return function(*args, **kwargs)

    return in_transaction


@contextmanager
def connect_fresh(settings: Settings) -> Iterator[psycopg.Connection]:
    """A connection of its own, outside the pool, closed after the block: for recording a
    failure when the request's pooled connection has just died."""
    try:
        with psycopg.connect(
            settings.database_url,
            row_factory=dict_row,
            autocommit=True,
            prepare_threshold=None,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        ) as conn:
            yield conn
    except psycopg.OperationalError as exc:
        logger.error("database unreachable error=%s", type(exc).__name__)
        raise ServiceUnavailable(
            "The database is unreachable", code="database_unavailable"
        ) from None


def _pool(url: str) -> ConnectionPool:
    # One pool per instance: Vercel's Fluid compute serves many requests (and threads) from one
    # instance, and a reused connection saves a TCP + TLS + auth handshake per request.
    with _pools_lock:
        if url not in _pools:
            _pools[url] = ConnectionPool(
                url,
                min_size=0,
                max_size=POOL_MAX_SIZE,
                max_idle=POOL_MAX_IDLE_SECONDS,  # give idle server connections back quickly
                timeout=POOL_WAIT_SECONDS,
                # A failed connection attempt is not retried on a backoff timer: the next
                # request asks again, and gets a connection as soon as the server is back.
                reconnect_timeout=0,
                kwargs={
                    "row_factory": dict_row,
                    "autocommit": True,
                    # Transaction poolers (Neon, Supabase) cannot keep server-side prepared
                    # statements.
                    "prepare_threshold": None,
                    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                },
                open=True,
                name="sselfie",
            )
        return _pools[url]


def _working_connection(pool: ConnectionPool) -> psycopg.Connection:
    """A pooled connection that answers. A dead one is handed back at once (the pool replaces
    it in its own thread) and the next one tried: the pool's own check would sleep a growing
    backoff after each dead connection, stalling the request behind every one of them."""
    deadline = time.monotonic() + POOL_WAIT_SECONDS
    while True:
        conn = pool.getconn(timeout=max(deadline - time.monotonic(), 0.001))
        try:
            if _may_be_dead(conn):
                ConnectionPool.check_connection(conn)
            return conn
        except psycopg.Error:
            pool.putconn(conn)


def _may_be_dead(conn: psycopg.Connection) -> bool:
    # Wall-clock time, not monotonic: a frozen instance's connections may have died while it
    # slept, and that sleep must count as idle time. An idle connection the server wrote to is
    # one it closed (we never LISTEN).
    if time.time() - _last_used.get(conn, 0.0) > CHECK_AFTER_IDLE_SECONDS:
        return True
    readable = select.poll()  # not select.select(): it refuses descriptors above 1023
    readable.register(conn.fileno(), select.POLLIN)
    return bool(readable.poll(0))


def close_pools() -> None:
    """Close every pool (the local stack calls this when it stops)."""
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()


def _ensure_migrated(conn: psycopg.Connection, url: str) -> None:
    if url in _migrated:
        return
    with _migrate_lock:
        if url not in _migrated:
            migrate(conn)
            _migrated.add(url)


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply every pending migration in order; safe when several cold starts race."""
    pending = _pending(conn)
    if not pending:
        return []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = _applied_versions(conn)  # read again: another instance may have just migrated
        done = []
        for path in pending:
            if path.stem in applied:
                continue
            conn.execute(path.read_text())
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (path.stem,))
            done.append(path.stem)
    if done:
        logger.info("migrated versions=%s", ",".join(done))
    return done


def _pending(conn: psycopg.Connection) -> list[Path]:
    with conn.transaction():
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS e").fetchone()
        applied = _applied_versions(conn) if exists["e"] else set()
    return [p for p in sorted(MIGRATIONS_DIR.glob("*.sql")) if p.stem not in applied]


def _applied_versions(conn: psycopg.Connection) -> set[str]:
    return {row["version"] for row in conn.execute("SELECT version FROM schema_migrations")}
