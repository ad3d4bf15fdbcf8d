"""Symbol ownership among replicas of one service.

A replica owns a symbol while it holds ``lease:<service>:<symbol>`` (SET NX PX, renewed before
it expires). Only the owner reads that symbol's streams, so each symbol's events are handled
in order by one process at a time, and replicas share the symbols evenly: each takes at most
``ceil(symbols / live replicas)`` and gives back what is above that share.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from shared import streams

logger = logging.getLogger(__name__)

_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

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

    async def rebalance(self) -> None:
        """Drop leases lost or above the fair share, then take free symbols up to it."""
        share = math.ceil(len(self.symbols) / max(1, await self._live_replicas()))
        for symbol in sorted(self.owned):
            if not await self._renew(symbol):
                logger.warning("lease lost service=%s symbol=%s", self.service, symbol)
                await self._forget(symbol)
        while len(self.owned) > share:
            symbol = max(self.owned)
            await self._forget(symbol)
            await self.redis.eval(_RELEASE, 1, streams.lease_key(self.service, symbol), self.instance)
            logger.info("lease given back service=%s symbol=%s share=%d", self.service, symbol, share)
        for symbol in self._preferred_order():
            if len(self.owned) >= share:
                break
            if symbol in self.owned:
                continue
            key = streams.lease_key(self.service, symbol)
            if await self.redis.set(key, self.instance, nx=True, px=self.ttl_ms):
                self.owned.add(symbol)
                logger.info("lease taken service=%s symbol=%s", self.service, symbol)
                await self.on_acquired(symbol)

    async def keep_alive(self, stop: asyncio.Event) -> None:
        """Renew owned leases every third of the TTL, independently of slow handlers."""
        while not stop.is_set():
            for symbol in sorted(self.owned):
                if not await self._renew(symbol):
                    logger.warning("lease expired service=%s symbol=%s", self.service, symbol)
                    await self._forget(symbol)
            try:
                await asyncio.wait_for(stop.wait(), self.ttl_ms / 3000)
            except TimeoutError:
                pass

    async def release_all(self) -> None:
        """Give every lease back (clean shutdown) so another replica takes over at once."""
        for symbol in sorted(self.owned):
            await self._forget(symbol)
            await self.redis.eval(_RELEASE, 1, streams.lease_key(self.service, symbol), self.instance)

    async def _renew(self, symbol: str) -> bool:
        key = streams.lease_key(self.service, symbol)
        return bool(await self.redis.eval(_RENEW, 1, key, self.instance, self.ttl_ms))

    async def _forget(self, symbol: str) -> None:
        if symbol in self.owned:
            self.owned.discard(symbol)
            await self.on_lost(symbol)

    async def _live_replicas(self) -> int:
        count = 0
        async for _ in self.redis.scan_iter(match=f"health:{self.service}:*", count=200):
            count += 1
        return count

    def _preferred_order(self) -> list[str]:
        # Replicas start their scan at different symbols so they rarely race for the same lease.
        offset = sum(self.instance.encode()) % max(1, len(self.symbols))
        return self.symbols[offset:] + self.symbols[:offset]
