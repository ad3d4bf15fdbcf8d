"""Opening the ledger database and bringing its schema to the latest migration.

``DATABASE_URL`` may be written the usual way (``sqlite:///var/bot.sqlite3``,
``postgresql://user@host/db``); it is mapped to the async drivers (aiosqlite, psycopg 3).
SQLite runs in WAL mode so the api can read while the executor writes.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS = Path(__file__).with_name("migrations")
logger = logging.getLogger(__name__)


class DatabaseUrlError(ValueError):
    """``DATABASE_URL`` names a database this project does not support."""


_DRIVERS = {
    "async": {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"},
    "sync": {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"},
}


def _with_driver(url: str, mode: str) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS[mode]:
        raise DatabaseUrlError(f"DATABASE_URL: unsupported database {backend!r} (use sqlite:/// or postgresql://)")
    return parsed.set(drivername=_DRIVERS[mode][backend]).render_as_string(hide_password=False)


def async_url(url: str) -> str:
    """The async-driver form of ``url`` (``sqlite+aiosqlite``, ``postgresql+psycopg``)."""
    return _with_driver(url, "async")


def sync_url(url: str) -> str:
    """The synchronous-driver form of ``url``, for migrations."""
    return _with_driver(url, "sync")


def _ensure_sqlite_folder(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def open_engine(url: str) -> AsyncEngine:
    """An async engine on ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    _ensure_sqlite_folder(url)
    sqlite = make_url(url).get_backend_name() == "sqlite"
    # A server connection can be dropped while it sits in the pool, so each checkout pings it
    # first; a SQLite connection is a local file handle that cannot be, and the ping was one more
    # statement (a trip to the driver's thread) for every session of every entry.
    engine = create_async_engine(async_url(url), pool_pre_ping=not sqlite)
    if sqlite:

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            # The busy timeout first: switching to WAL itself needs the lock another process may hold.
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def migrate(url: str) -> None:
    """Upgrade the schema at ``url`` to the latest Alembic revision (idempotent)."""
    _ensure_sqlite_folder(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    command.upgrade(config, "head")


async def migrate_with_retries(url: str, attempts: int = 20) -> None:
    """``migrate`` in a worker thread, retried with a growing pause: processes starting together
    on one SQLite file can meet "database is locked" while the first one switches it to WAL."""
    for attempt in range(1, attempts + 1):
        try:
            await asyncio.to_thread(migrate, url)
            return
        except Exception as e:  # any failure but the last is retried
            if attempt == attempts:
                raise
            logger.warning("database migration failed (%s: %s); retrying", type(e).__name__, e)
            await asyncio.sleep(0.25 * attempt)
