"""Answers applied after the burst they came in.

At a minute close many symbols' BUY signals arrive at once, and one executor handles them one
after the other. Applying an entry's answer (its fills, the position, the protection) costs
several times what sending it does, so an entry's order is sent at once and the rest of its
flow waits here: the entries of a burst are all sent first, each within a few milliseconds of
its signal, then their answers are applied in the order they were sent.

What waits is only ever the one symbol's: any later event of that symbol (a tick, an execution
report, a command, a signal), its reconciliation and its timers apply the symbol's waiting work
first, under its lock, so each symbol's events are applied in the same order as without the
wait, and a price is never checked against a position whose fill is not applied yet. The
signal's bus entry is acknowledged once its order is sent: a crash before the answer is applied
leaves an order the ledger knows was sent, which reconciliation settles by its client id, as
for a crash during the send. The wait ends once no new entry has been sent for ``QUIET_S``
(the strategy publishes a close's signals over a few hundred milliseconds, in batches), and
never lasts longer than ``MAX_WAIT_S`` of wall time: the exchange-side OCO of a filled entry is
placed at most that much later, plus the time to apply the answers before it; the bot's own
tick watch is not delayed (see above). These waits are wall time because they schedule work,
not decisions: each symbol's events are applied in the same order whatever they are.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from services.executor.book import SymbolBook
from shared.bus import NotMine
from shared.clock import Clock

logger = logging.getLogger(__name__)

Work = Callable[[], Awaitable[None]]

QUIET_S = 0.1
MAX_WAIT_S = 3.0
MAX_WAITING = 500


class Later:
    """The work waiting per symbol, and when it is due."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.work: dict[str, tuple[SymbolBook, list[Work]]] = {}
        self._since: float | None = None  # when the oldest waiting work was added
        self._last = 0.0  # when work was last added

    def __bool__(self) -> bool:
        return bool(self.work)

    def add(self, book: SymbolBook, work: Work) -> None:
        """Keep ``work`` of ``book`` until the symbol's next event or the end of the burst."""
        if not self.work:
            self._since = self.clock.monotonic()
        self.work.setdefault(book.symbol, (book, []))[1].append(work)
        self._last = self.clock.monotonic()

    def quiet(self) -> bool:
        """No entry was sent for ``QUIET_S``: the burst is over."""
        return self.clock.monotonic() - self._last >= QUIET_S

    def block_ms(self) -> int:
        """How long a poll may wait for new entries before the quiet time is over (at least 1 ms)."""
        return max(1, math.ceil((QUIET_S - (self.clock.monotonic() - self._last)) * 1000))

    def overdue(self) -> bool:
        """The wait reached its bounds: everything waiting is applied now."""
        waiting = sum(len(works) for _, works in self.work.values())
        return waiting >= MAX_WAITING or (
            self._since is not None and self.clock.monotonic() - self._since >= MAX_WAIT_S
        )

    def drop(self, symbol: str) -> None:
        """The symbol's lease is gone: its next owner settles the sent orders by their ids."""
        if self.work.pop(symbol, None) is not None:
            logger.info("%s lost with answers not applied yet; the next owner settles its orders", symbol)

    async def finish(self, book: SymbolBook, *, raise_lost: bool = False) -> None:
        """Apply the symbol's waiting work now (the caller holds the book's lock). ``raise_lost``:
        a lease found lost meanwhile is raised once all of it ran (the event about to be
        applied is then left for the next owner)."""
        entry = self.work.pop(book.symbol, None)
        if not self.work:
            self._since = None
        if entry is None:
            return
        lost: NotMine | None = None
        for work in entry[1]:
            try:
                await work()
            except NotMine as e:  # the lease was lost before a send again
                logger.info("%s lease lost while settling an order; the next owner settles it: %s", book.symbol, e)
                lost = e
            except Exception:
                # The order was sent: querying it by its client id settles it (as after a crash).
                logger.exception("%s applying an order's answer failed; it is queried again", book.symbol)
                book.settle_later(self.clock.monotonic())
        if lost is not None and raise_lost:
            raise lost

    async def finish_all(self) -> None:
        """Apply everything waiting, symbol by symbol in the order the work was added."""
        for book, _ in list(self.work.values()):
            async with book.lock:
                await self.finish(book)
