"""Fixtures shared by every test tier: a private redis-server per test session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from redis.asyncio import Redis

from shared import signing
from tests.support.redis_server import RedisServer, start_redis

# One bus key for the test session: this process seals what it writes as the services do, and
# every service started by a test (in-process or as a subprocess) inherits it.
os.environ.setdefault("BUS_SIGNING_KEY", signing.new_key())
signing.install(signing.parse_key(os.environ["BUS_SIGNING_KEY"]))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server, emptied before each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def _is_replay(item: pytest.Item) -> bool:
    """A test that runs whole stacks (every service on the simulator) against the replay clock."""
    module = getattr(item, "module", None)
    return hasattr(module, "start_stack") or "chaos" in item.path.parts


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # `make test` runs two pytest-xdist workers (--dist loadgroup). The replays wait on the
    # replay clock more than they compute, so they share the run with the CPU-bound tests, but
    # never more than one per worker: they alternate between two groups, one per worker.
    replays = [item for item in items if _is_replay(item)]
    for index, item in enumerate(replays):
        item.add_marker(pytest.mark.xdist_group(f"replays-{index % 2}"))
