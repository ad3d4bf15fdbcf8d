"""Symbol ownership among replicas of one service.

A replica owns a symbol while it holds ``lease:<service>:<symbol>`` (SET NX PX, renewed before
it expires). Only the owner reads that symbol's streams, so each symbol's events are handled
in order by one process at a time, and replicas share the symbols evenly: each takes at most
``ceil(symbols / live replicas)`` and gives back what is above that share.

Live replicas are the members of ``members:<service>`` (a sorted set scored by Redis server
time) refreshed within one lease TTL. A replica refreshes its membership just before it renews
its leases, so a dead replica stops counting no later than its leases expire: a replica that
restarts takes its fair share at once, without waiting for the dead one's heartbeat to expire.

The keep-alive survives Redis errors (a restart, a failover): it keeps trying, renews as soon as
Redis answers, and gives up locally a symbol it could not renew for a whole TTL. ``confirm``
renews one lease right before an irreversible action (an order), so the owner holds it for a
full TTL from that moment or does not act.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from shared import metrics, streams
from shared.aio import sleep_or_stop

logger = logging.getLogger(__name__)

_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
# Every owned lease in one round trip: 1 for each key still held by ARGV[1] (renewed), else 0.
_RENEW_ALL = """
local renewed = {}
for index, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[1] then
    renewed[index] = redis.call('pexpire', key, ARGV[2])
  else
    renewed[index] = 0
  end
end
return renewed
"""
# Take free leases in KEYS order until ARGV[3] are taken (SET NX PX each): the 1-based indexes taken.
_ACQUIRE = """
local taken = {}
local want = tonumber(ARGV[3])
for index, key in ipairs(KEYS) do
  if #taken >= want then break end
  if redis.call('set', key, ARGV[1], 'NX', 'PX', ARGV[2]) then taken[#taken + 1] = index end
end
return taken
"""
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
# Refresh this replica's membership (KEYS[1], ARGV[1] the instance, ARGV[2] the TTL) and leave in
# ``live`` the members refreshed within one TTL (server time): the start of both scripts below.
_MEMBERSHIP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 10)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl * 10)
local live = redis.call('ZCOUNT', KEYS[1], '(' .. (now - ttl), '+inf')
"""
_MEMBERS = _MEMBERSHIP + "return live\n"
# The keep-alive's round: _MEMBERS on KEYS[1] (ARGV[1] the instance, ARGV[2] the TTL), then
# _RENEW_ALL on KEYS[2..], in one round trip: {live members, 1 or 0 per lease}.
_KEEP_ALIVE = (
    _MEMBERSHIP
    + """
local reply = {live}
for index = 2, #KEYS do
  if redis.call('get', KEYS[index]) == ARGV[1] then
    reply[index] = redis.call('pexpire', KEYS[index], ARGV[2])
  else
    reply[index] = 0
  end
end
return reply
"""
)
RETRY_AFTER_ERROR_S = 0.25
# Renewals per TTL: a round may wait behind a busy event loop (a start of 500 symbols on a loaded
# machine) for more than a third of the TTL, so it comes every fifth.
RENEWALS_PER_TTL = 5

SymbolCallback = Callable[[str], Awaitable[None]]


class SymbolLeases:
    """Acquire, renew, rebalance and release the symbol leases of one replica."""

    def __init__(
        self,
        redis: Redis,
        service: str,
        instance: str,
        symbols: list[str],
        on_acquired: SymbolCallback,
        on_lost: SymbolCallback,
        ttl_ms: int = 5_000,
    ) -> None:
        self.redis = redis
        self.service = service
        self.instance = instance
        self.symbols = list(symbols)
        self.on_acquired = on_acquired
        self.on_lost = on_lost
        self.ttl_ms = ttl_ms
        self.owned: set[str] = set()
        self._renewed_at: dict[str, float] = {}

    async def rebalance(self) -> None:
        """Drop leases lost or above the fair share, then take free symbols up to it."""
        share = math.ceil(len(self.symbols) / max(1, await self._live_replicas()))
        await self._renew_owned("lease lost")
        while len(self.owned) > share:
            symbol = max(self.owned)
            await self._forget(symbol)
            await self.redis.eval(_RELEASE, 1, streams.lease_key(self.service, symbol), self.instance)
            logger.info("lease given back service=%s symbol=%s share=%d", self.service, symbol, share)
        wanted = share - len(self.owned)
        candidates = [symbol for symbol in self._preferred_order() if symbol not in self.owned]
        if wanted <= 0 or not candidates:
            return
        # One round trip for all (a start of 500 symbols), in the preferred order.
        keys = [streams.lease_key(self.service, symbol) for symbol in candidates]
        taken = await self.redis.eval(_ACQUIRE, len(keys), *keys, self.instance, self.ttl_ms, wanted)
        now = time.monotonic()
        acquired = [candidates[int(index) - 1] for index in taken]
        for symbol in acquired:
            self.owned.add(symbol)
            metrics.LEASES.labels(self.service, symbol).set(1)
            self._renewed_at[symbol] = now
            logger.info("lease taken service=%s symbol=%s", self.service, symbol)
        for symbol in acquired:
            if symbol in self.owned:
                await self.on_acquired(symbol)

    async def keep_alive(self, stop: asyncio.Event) -> None:
        """Renew owned leases every fifth of the TTL (with the membership, in one round trip),
        independently of slow handlers, through Redis errors (a symbol not renewed for a whole
        TTL is given up locally)."""
        every_s = self.ttl_ms / 1000 / RENEWALS_PER_TTL
        while not stop.is_set():
            try:
                await self._keep_alive_round()
            except Exception as e:  # noqa: BLE001 - Redis restarting or unreachable: keep trying
                logger.warning("lease renewal failed service=%s (%s: %s); retrying", self.service, type(e).__name__, e)
                for symbol in sorted(self.owned):
                    if time.monotonic() - self._renewed_at.get(symbol, 0.0) >= self.ttl_ms / 1000:
                        logger.warning("lease not renewed for a whole TTL service=%s symbol=%s", self.service, symbol)
                        await self._forget(symbol)
                await sleep_or_stop(stop, min(RETRY_AFTER_ERROR_S, every_s))
                continue
            await sleep_or_stop(stop, every_s)

    async def confirm(self, symbol: str) -> bool:
        """Renew ``symbol``'s lease now if this replica still holds it: True means it is held for
        a whole TTL from now (call it after any wait, right before an irreversible action)."""
        return symbol in self.owned and await self._renew(symbol)

    async def release_all(self) -> None:
        """Give every lease back (clean shutdown) so another replica takes over at once."""
        for symbol in sorted(self.owned):
            await self._forget(symbol)
            await self.redis.eval(_RELEASE, 1, streams.lease_key(self.service, symbol), self.instance)
        await self.redis.zrem(streams.members_key(self.service), self.instance)

    async def _renew(self, symbol: str) -> bool:
        key = streams.lease_key(self.service, symbol)
        renewed = bool(await self.redis.eval(_RENEW, 1, key, self.instance, self.ttl_ms))
        if renewed:
            self._renewed_at[symbol] = time.monotonic()
        return renewed

    async def _keep_alive_round(self) -> None:
        """Refresh the membership, then renew every owned lease: one script call."""
        symbols = sorted(self.owned)
        started = time.monotonic()
        keys = [streams.members_key(self.service), *(streams.lease_key(self.service, symbol) for symbol in symbols)]
        replies = await self.redis.eval(_KEEP_ALIVE, len(keys), *keys, self.instance, self.ttl_ms)
        await self._renewed(symbols, replies[1:], started, "lease expired")

    async def _renew_owned(self, what: str) -> None:
        """Renew every owned lease in one script call; give up those another replica holds."""
        symbols = sorted(self.owned)
        if not symbols:
            return
        started = time.monotonic()
        keys = [streams.lease_key(self.service, symbol) for symbol in symbols]
        replies = await self.redis.eval(_RENEW_ALL, len(keys), *keys, self.instance, self.ttl_ms)
        await self._renewed(symbols, replies, started, what)

    async def _renewed(self, symbols: list[str], replies: list[int], started: float, what: str) -> None:
        now = time.monotonic()
        for symbol, renewed in zip(symbols, replies, strict=True):
            if renewed:
                self._renewed_at[symbol] = now
            elif self._not_taken_since(symbol, started):
                logger.warning("%s service=%s symbol=%s", what, self.service, symbol)
                await self._forget(symbol)

    def _not_taken_since(self, symbol: str, started: float) -> bool:
        # The keep-alive and the rebalance run concurrently: a renewal refused while the other
        # took the symbol again (its lease had expired) must not give up the fresh lease.
        return self._renewed_at.get(symbol, 0.0) <= started

    async def _forget(self, symbol: str) -> None:
        if symbol in self.owned:
            self.owned.discard(symbol)
            metrics.LEASES.labels(self.service, symbol).set(0)
            self._renewed_at.pop(symbol, None)
            await self.on_lost(symbol)

    async def _live_replicas(self) -> int:
        return int(await self.redis.eval(_MEMBERS, 1, streams.members_key(self.service), self.instance, self.ttl_ms))

    def _preferred_order(self) -> list[str]:
        # Replicas start their scan at different symbols so they rarely race for the same lease.
        offset = sum(self.instance.encode()) % max(1, len(self.symbols))
        return self.symbols[offset:] + self.symbols[:offset]
