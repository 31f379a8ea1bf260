"""PostgreSQL connections and the project's migrations."""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from lib.errors import ConfigError, ServiceUnavailable
from lib.settings import Settings

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant shared by every instance: concurrent cold starts queue on it while migrating.
_MIGRATION_LOCK_KEY = 7_245_811_093
_migrated: set[str] = set()
_migrate_lock = threading.Lock()


@contextmanager
def connect(settings: Settings) -> Iterator[psycopg.Connection]:
    """An autocommit connection (use `conn.transaction()` for units of work), always closed."""
    if not settings.database_url:
        raise ConfigError("DATABASE_URL environment variable is not set")
    try:
        conn = psycopg.connect(
            settings.database_url,
            row_factory=dict_row,
            autocommit=True,  # each statement commits; units of work use conn.transaction()
            # Transaction poolers (Neon, Supabase) cannot keep server-side prepared statements.
            prepare_threshold=None,
            connect_timeout=10,
        )
    except psycopg.OperationalError as exc:
        logger.error("database unreachable error=%s", type(exc).__name__)
        raise ServiceUnavailable(
            "The database is unreachable", code="database_unavailable"
        ) from None
    try:
        with conn:
            _ensure_migrated(conn, settings.database_url)
            yield conn
    finally:
        conn.close()


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
