"""Fixtures of the executor tests: ledger databases (SQLite file and PostgreSQL) and a simulator.

PostgreSQL: one database named ``executor_test_<random>`` is created per test session on the
server at ``EXECUTOR_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``) and
dropped at the end; each test empties only that database's tables. When no server answers,
the PostgreSQL cases are skipped with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from shared.store.database import migrate, open_engine, session_factory
from tests.executor.harness import ExecutorProcess
from tests.support.simulator import SimulatorProcess, start_simulator

PG_SERVER = os.environ.get("EXECUTOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_connect(url: str):
    import psycopg

    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        dbname=parsed.database or "postgres",
        autocommit=True,
        connect_timeout=3,
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to the latest schema."""
    try:
        admin = _pg_connect(PG_SERVER)
    except Exception as e:  # noqa: BLE001 - whatever the driver raises, the message says how to fix it
        pytest.fail(
            f"PostgreSQL not reachable at {PG_SERVER} (make test starts it; set EXECUTOR_TEST_PG to use another): {e}"
        )
    name = f"executor_test_{secrets.token_hex(6)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    migrate(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The ledger on each back-end in turn, empty at the start of the test."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    url = request.getfixturevalue("postgres_url")
    with _pg_connect(url) as connection:
        connection.execute("TRUNCATE fills, orders, positions RESTART IDENTITY CASCADE")
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = open_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker:
    return session_factory(engine)


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    """One simulator per test module, at 1x: its exchange time is the wall clock the tests'
    candles and prices are stamped with (``harness.candle``); tests reset balances and faults."""
    with start_simulator(tmp_path_factory.mktemp("exchange_sim"), speed=1, history=50) as sim:
        yield sim


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def processes() -> Iterator[list[ExecutorProcess]]:
    """Executor processes a test started; each is stopped at the end of the test."""
    started: list[ExecutorProcess] = []
    yield started
    for process in started:
        process.stop()
