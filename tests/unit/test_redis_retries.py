"""Start-up steps against Redis are tried again while it is unreachable (a restart between
connecting and the step), and fail after their attempts, not at the first refusal."""

from __future__ import annotations

import pytest
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.redis_conn import with_redis_retries


async def test_a_step_is_retried_while_redis_is_down_or_loading() -> None:
    failures = [RedisConnectionError("Connection refused"), BusyLoadingError("loading the dataset")]

    async def step() -> str:
        if failures:
            raise failures.pop(0)
        return "seeded"

    assert await with_redis_retries(step, "live state", attempts=3, delay_s=0) == "seeded"


async def test_a_step_fails_after_its_attempts_and_other_errors_at_once() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise RedisConnectionError("Connection refused")

    with pytest.raises(RedisConnectionError):
        await with_redis_retries(down, "live state", attempts=3, delay_s=0)
    assert calls == 3

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not an outage")

    calls = 0
    with pytest.raises(ValueError, match="a bug"):
        await with_redis_retries(broken, "live state", attempts=3, delay_s=0)
    assert calls == 1
