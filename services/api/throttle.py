"""Slowing down password guessing without ever locking the owner out.

Three budgets, checked before the password is compared (a guess is admitted or refused
before anyone learns whether it was right):

* **Per client** (``LOGIN_FREE_ATTEMPTS``, then 1 s, 2 s, 4 s … up to ``LOGIN_MAX_DELAY_S``):
  a client is its trusted device (below) or else its address. The address is the TCP peer;
  ``X-Forwarded-For`` counts only from ``FORWARDED_ALLOW_IPS``, so rotating it changes nothing.
* **Global, for untrusted clients** (``LOGIN_GLOBAL_FAILURES`` admitted attempts per
  ``LOGIN_GLOBAL_WINDOW_S``, 5 per minute by default): every client without a trusted device
  shares it, so many addresses together still get only a handful of guesses a minute. An
  attempt takes a slot before its password is checked (concurrent guesses cannot overrun the
  budget); a failure keeps its slot until it ages out, a success empties the window.
* **Trusted devices**: a successful sign-in leaves an HttpOnly cookie naming the browser
  (``bot_device``, ``LOGIN_DEVICE_TTL_S``, only its SHA-256 kept in Redis). A browser that
  has signed in before is counted on its own and never waits for the global budget, so an
  attacker, who has no such cookie, can exhaust the global budget and slow down only
  browsers that never signed in.
"""

from __future__ import annotations

import hashlib
import secrets

from redis.asyncio import Redis

from services.api.config import ApiSettings
from shared.events import now_ms
from shared.streams import LOGIN_BLOCK_PREFIX, LOGIN_DEVICE_PREFIX, LOGIN_FAILURES_PREFIX, LOGIN_UNTRUSTED

DEVICE_COOKIE = "bot_device"
FAILURE_WINDOW_S = 900


def _device_key(token: str) -> str:
    return LOGIN_DEVICE_PREFIX + hashlib.sha256(token.encode()).hexdigest()


async def trusted_device(redis: Redis, token: str | None) -> str | None:
    """The client name of a known device cookie (``device:<hash prefix>``), else None."""
    if not token or len(token) > 100:
        return None
    key = _device_key(token)
    if not await redis.exists(key):
        return None
    return "device:" + key.removeprefix(LOGIN_DEVICE_PREFIX)[:32]


async def remember_device(redis: Redis, settings: ApiSettings, token: str | None) -> str:
    """Keep (or start) trusting this browser after a successful sign-in; returns its cookie value."""
    if not token or len(token) > 100:
        token = secrets.token_urlsafe(32)
    await redis.set(_device_key(token), "1", ex=settings.login_device_ttl_s)
    return token


async def blocked_for(redis: Redis, client: str) -> int:
    """Seconds this client must still wait before another sign-in attempt (0 = may try)."""
    ttl = await redis.ttl(LOGIN_BLOCK_PREFIX + client)
    return max(int(ttl), 0)


async def record_failure(redis: Redis, settings: ApiSettings, client: str) -> int:
    """Count a wrong password; past the free attempts, block the client for a doubling delay.

    Returns the delay in seconds now imposed (0 while free attempts remain).
    """
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(LOGIN_FAILURES_PREFIX + client)
        pipe.expire(LOGIN_FAILURES_PREFIX + client, FAILURE_WINDOW_S)
        failures = int((await pipe.execute())[0])
    extra = failures - settings.login_free_attempts
    if extra <= 0:
        return 0
    delay = min(2 ** min(extra - 1, 30), settings.login_max_delay_s)
    await redis.set(LOGIN_BLOCK_PREFIX + client, "1", ex=delay)
    return delay


async def clear_failures(redis: Redis, client: str) -> None:
    """Forget a client's failed attempts after a successful sign-in."""
    await redis.delete(LOGIN_FAILURES_PREFIX + client, LOGIN_BLOCK_PREFIX + client)


async def take_global_slot(redis: Redis, settings: ApiSettings) -> int:
    """Admit one untrusted attempt into the global window: 0 when admitted, else seconds to wait.

    The slot is added first and taken back when the window was already full, so attempts
    racing each other can only ever be refused, never all admitted.
    """
    now = now_ms()
    window_ms = settings.login_global_window_s * 1000
    member = f"{now}:{secrets.token_hex(4)}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(LOGIN_UNTRUSTED, "-inf", now - window_ms)
        pipe.zadd(LOGIN_UNTRUSTED, {member: now})
        pipe.zcard(LOGIN_UNTRUSTED)
        pipe.pexpire(LOGIN_UNTRUSTED, window_ms)
        _, _, count, _ = await pipe.execute()
    if int(count) <= settings.login_global_failures:
        return 0
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(LOGIN_UNTRUSTED, member)
        pipe.zrange(LOGIN_UNTRUSTED, 0, 0, withscores=True)
        _, oldest = await pipe.execute()
    oldest_ms = int(oldest[0][1]) if oldest else now
    return max(1, -(-(oldest_ms + window_ms - now) // 1000))


async def reset_global(redis: Redis) -> None:
    """A success empties the global window (the owner is in; nothing is being guessed)."""
    await redis.delete(LOGIN_UNTRUSTED)
