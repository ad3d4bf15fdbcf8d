"""The account reads of ``Exchange``: balances, and one read shared by the entries sized meanwhile.

An entry sizes itself from the free quote balance. Read afresh for every entry (weight 20), a
minute close on which most of 500 symbols enter spends the executor's whole request-weight
share on account reads, and the entries after it wait for the next minute window. So one read
serves the entries of ``RECENT_ACCOUNT_S``: each MARKET buy answered since it (``FULL``: what
it spent and the commission) is taken off the snapshot's quote and added to its base, so the
next entry sizes from what is left. Any other order request (a sell, a LIMIT_MAKER, an OCO, a
cancel) or a buy whose answer is unknown empties it, as does a read made while an order was on
its way (it may not show that order): the next caller reads the account again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from binance import AsyncClient

from services.executor.exchange_limits import CommissionRates
from shared.request_weight import RECENT_ACCOUNT_S

Balances = dict[str, tuple[Decimal, Decimal]]
ZERO = Decimal(0)


def after_buy(rows: Balances, base: str, quote: str, answer: Mapping[str, Any]) -> Balances | None:
    """``rows`` once the MARKET buy of ``answer`` (a ``FULL`` response) is done: its quote spent,
    its base received, each less its commission; None when the answer does not say."""
    try:
        spent = Decimal(str(answer["cummulativeQuoteQty"]))
        received = Decimal(str(answer["executedQty"]))
        fees: dict[str, Decimal] = {}
        for fill in answer.get("fills") or ():
            asset = str(fill["commissionAsset"])
            fees[asset] = fees.get(asset, ZERO) + Decimal(str(fill["commission"]))
    except (KeyError, TypeError, ArithmeticError):
        return None
    updated = dict(rows)
    free_quote, locked_quote = updated.get(quote, (ZERO, ZERO))
    free_base, locked_base = updated.get(base, (ZERO, ZERO))
    updated[quote] = (free_quote - spent - fees.pop(quote, ZERO), locked_quote)
    updated[base] = (free_base + received - fees.pop(base, ZERO), locked_base)
    for asset, fee in fees.items():  # a commission paid in a third asset (BNB)
        free, locked = updated.get(asset, (ZERO, ZERO))
        updated[asset] = (free - fee, locked)
    return updated


class AccountCalls:
    """Balances on ``Exchange``'s client and gate, with the snapshot shared between entries."""

    client: AsyncClient
    _call: Callable[..., Awaitable[Any]]
    _clock: Callable[[], float]
    commission_rates: CommissionRates | None
    _account: tuple[float, Balances] | None = None
    _order_events = 0  # raised when an order request starts and when it ends
    _orders_in_flight = 0

    async def balances(self) -> Balances:
        """Free and locked amount of every asset of the account."""
        events, quiet = self._order_events, self._orders_in_flight == 0
        body = await self._call("account", lambda: self.client.get_account(omitZeroBalances="true"))
        rows = {r["asset"]: (Decimal(r["free"]), Decimal(r["locked"])) for r in body.get("balances", [])}
        # Kept for others only when no order was on its way meanwhile: the read may not show it.
        self._account = (self._clock(), rows) if quiet and events == self._order_events else None
        self.commission_rates = CommissionRates.from_account(body) or self.commission_rates
        return rows

    async def recent_balances(self, max_age_s: float = RECENT_ACCOUNT_S) -> Balances:
        """``balances`` read at most ``max_age_s`` ago, with the MARKET buys answered since: one
        account read (20 weight) serves every symbol of a reconciliation round and the entries
        sized meanwhile."""
        if self._account is not None and self._clock() - self._account[0] <= max_age_s:
            return self._account[1]
        return await self.balances()

    async def free_balance(self, asset: str) -> Decimal:
        """The free amount of ``asset`` (0 when the account has none), from ``recent_balances``."""
        return (await self.recent_balances()).get(asset, (ZERO, ZERO))[0]

    def _order_starts(self) -> None:
        self._order_events += 1
        self._orders_in_flight += 1
        self._account = None

    def _order_ends(self) -> None:
        self._order_events += 1
        self._orders_in_flight -= 1
        self._account = None

    def _before_order(self) -> tuple[tuple[float, Balances] | None, int]:
        """The snapshot a buy about to be sent may update, and the order events so far."""
        return (self._account if self._orders_in_flight == 0 else None), self._order_events

    def _bought(self, snapshot: tuple[float, Balances] | None, events: int, base: str, quote: str, answer: Any) -> None:
        """Keep ``snapshot`` (taken before the buy of ``answer``, ``events`` then) with the buy
        applied, when that buy was the only order request since."""
        if snapshot is None or events + 2 != self._order_events or self._orders_in_flight:
            return
        rows = after_buy(snapshot[1], base, quote, answer) if isinstance(answer, Mapping) else None
        if rows is not None:
            self._account = (snapshot[0], rows)
