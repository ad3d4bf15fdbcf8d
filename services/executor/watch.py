"""Which owned symbols' tick streams the executor reads: only those a price can act on.

A price acts only on a position (``core.ticks``: nothing from before the entry acts), so the
ticker stream of a symbol is consumed while its book holds a position (opening, open or
closing) and left unread otherwise: ticks of flat symbols are neither read nor decoded. The
consumer group of an unread ticker stream is moved to the stream's newest entry about once a
second (one script call for all of them, for the symbols this replica still holds), so its
backlog stays near zero and a position opened later is watched from then on; ticks a dead owner
had read and not acknowledged there are acknowledged unread (they act on nothing either). A
symbol taken (a start, a takeover) is read from its ticker stream only if its reconciled book
holds a position. A stream read with entries delivered and not yet acknowledged (a takeover's
claimed ticks, a failed tick) is read until they are done, so nothing stays pending; a group that
another replica's owner reads (a symbol with a position, taken over after a crash) is never
moved, so a level crossed while the executor was away still fires in the candle where it was
crossed.

An entry on a flat symbol sizes with the newest tick before its signal (one ``XREVRANGE``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal
from typing import cast

from redis.asyncio import Redis

from services.executor.book import SymbolBook
from shared import streams
from shared.bus import Consumer

ADVANCE_EVERY_S = 1.0
# Move each unread ticker group to the newest entry, for the symbols whose lease ARGV[1] holds:
# KEYS are the lease keys, ARGV[3..] the matching ticker streams. The streams are arguments, not
# keys: the executor's ACL grants scripts its own keys, and group commands (XGROUP SETID among
# them) on the streams it consumes, which Redis checks for each command the script runs.
# Ticks delivered to a consumer and not acknowledged (a dead owner's, read before it died) are
# acknowledged too, unread: on a flat symbol they act on nothing, and left pending they would stay
# so for good (nobody reads the stream while the symbol is flat).
_ADVANCE = """
local moved = 0
for index, lease in ipairs(KEYS) do
  local stream = ARGV[index + 2]
  if redis.call('get', lease) == ARGV[1] then
    local reply = redis.pcall('xgroup', 'setid', stream, ARGV[2], '$')  -- an error: no group (yet)
    if type(reply) == 'table' and reply.ok then
      moved = moved + 1
      local pending = redis.call('xpending', stream, ARGV[2], '-', '+', 1000)
      for _, entry in ipairs(pending) do redis.call('xack', stream, ARGV[2], entry[1]) end
    end
  end
end
return moved
"""


def watched(book: SymbolBook) -> bool:
    """Whether a price can act on ``book``: it holds a position in any status."""
    return book.position is not None


class TickWatch:
    """Adds and removes ticker streams of the consumer as positions come and go."""

    def __init__(self, redis: Redis, consumer: Consumer, service: str, instance: str) -> None:
        self.redis = redis
        self.consumer = consumer
        self.service = service
        self.instance = instance
        self._advance = redis.register_script(_ADVANCE)
        self._last_advance = 0.0

    async def sync(self, books: dict[str, SymbolBook]) -> None:
        """Read the ticker streams of watched books, stop reading the others, advance those."""
        unread = []
        busy = self.consumer.unfinished()
        # One copy of the read set per round, not one per book: at 500 symbols the set holds
        # some 1,500 streams and this runs after every poll. Each book adds or removes only its
        # own stream, so the copy stays right for the books still to come.
        read = self.consumer.streams
        for symbol, book in books.items():
            stream = streams.ticker_stream(symbol)
            reading = stream in read
            if watched(book):
                if not reading:
                    self.consumer.add_stream(stream)
            elif reading and busy is not None and stream not in busy:
                self.consumer.remove_stream(stream)
                # the price it showed is no longer followed: sizing reads the stream instead
                book.market = replace(book.market, last_price=None, last_tick_market_ms=0)
            elif not reading:
                unread.append(symbol)
        if unread and time.monotonic() - self._last_advance >= ADVANCE_EVERY_S:
            self._last_advance = time.monotonic()
            keys = [streams.lease_key(self.service, s) for s in unread]
            names = [streams.ticker_stream(s) for s in unread]
            await self._advance(keys=keys, args=[self.instance, streams.GROUP_EXECUTOR, *names])


async def tick_before(redis: Redis, symbol: str, before_ms: int | None) -> tuple[Decimal, int] | None:
    """Price and exchange time of the newest tick appended no later than ``before_ms`` (Redis ms)."""
    reply = await redis.xrevrange(
        streams.ticker_stream(symbol), max="+" if before_ms is None else str(before_ms), count=1
    )
    if not reply:
        return None
    fields = cast(dict[str, str], reply[0][1] or {})  # the clients decode responses (shared/redis_conn.py)
    try:
        return Decimal(fields["price"]), int(fields["ts_event_ms"])
    except (KeyError, ArithmeticError, ValueError):
        return None
