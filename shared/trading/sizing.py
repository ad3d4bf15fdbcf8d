"""Position sizing under Binance's symbol filters, in ``Decimal`` (quote and base units).

The size of an entry follows the risk settings: of the free quote balance the bot may use
``CAPITAL_ALLOCATION``; of that it risks ``RISK_PER_TRADE`` if the stop-loss
(``STOP_LOSS_PERCENTAGE`` below the price) is hit. The quantity is capped so the order never
costs more than the allocation, then rounded down to the lot step. An order the exchange would
reject (below minQty or minNotional) is skipped with a reason, never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any, NamedTuple

from shared.parameters import StrategyParameters

ZERO = Decimal(0)


def round_down_to_step(quantity: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` not above ``quantity`` (quantity >= 0); ``step`` 0 leaves it unchanged."""
    if step <= ZERO:
        return quantity
    # ``//`` is the exact whole number of steps (a division would first round to 28 digits, up
    # as well as down) and costs a fifth of ``to_integral_value``.
    return quantity // step * step


def format_decimal(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros, as Binance accepts it (``1E-5`` -> ``0.00001``)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


@dataclass(frozen=True)
class SymbolFilters:
    """Trading rules of one symbol (prices in quote units, quantities in base units).

    ``market_*`` come from MARKET_LOT_SIZE (None when absent or 0, which Binance uses for "no
    extra rule"). ``min_notional``/``max_notional`` come from NOTIONAL (or the older
    MIN_NOTIONAL); ``apply_*_to_market`` say whether they bind market orders.
    """

    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal = ZERO
    max_notional: Decimal | None = None
    apply_min_to_market: bool = True
    apply_max_to_market: bool = False
    market_step_size: Decimal | None = None
    market_min_qty: Decimal | None = None
    market_max_qty: Decimal | None = None
    symbol: str = ""

    @classmethod
    def from_exchange_info(cls, symbol_info: dict[str, Any]) -> SymbolFilters:
        """Parse one symbol entry of ``GET /api/v3/exchangeInfo`` (the dict with ``filters``)."""
        filters = {f["filterType"]: f for f in symbol_info.get("filters", [])}
        missing = [name for name in ("PRICE_FILTER", "LOT_SIZE") if name not in filters]
        if missing:
            raise ValueError(f"{symbol_info.get('symbol', '?')}: exchangeInfo lacks {', '.join(missing)}")
        price, lot = filters["PRICE_FILTER"], filters["LOT_SIZE"]
        values: dict[str, Any] = {
            "symbol": symbol_info.get("symbol", ""),
            "tick_size": _decimal(price["tickSize"]),
            "step_size": _decimal(lot["stepSize"]),
            "min_qty": _decimal(lot["minQty"]),
            "max_qty": _decimal(lot["maxQty"]),
        }
        market = filters.get("MARKET_LOT_SIZE")
        if market is not None:
            for key, field in (
                ("stepSize", "market_step_size"),
                ("minQty", "market_min_qty"),
                ("maxQty", "market_max_qty"),
            ):
                amount = _decimal(market.get(key, "0"))
                values[field] = amount if amount > ZERO else None
        if "NOTIONAL" in filters:
            notional = filters["NOTIONAL"]
            values["min_notional"] = _decimal(notional.get("minNotional", "0"))
            values["apply_min_to_market"] = bool(notional.get("applyMinToMarket", True))
            max_notional = _decimal(notional.get("maxNotional", "0"))
            values["max_notional"] = max_notional if max_notional > ZERO else None
            values["apply_max_to_market"] = bool(notional.get("applyMaxToMarket", False))
        elif "MIN_NOTIONAL" in filters:
            legacy = filters["MIN_NOTIONAL"]
            values["min_notional"] = _decimal(legacy.get("minNotional", "0"))
            values["apply_min_to_market"] = bool(legacy.get("applyToMarket", True))
        return cls(**values)

    @cached_property
    def market_step(self) -> Decimal:
        """Step of a market order: the stricter (larger) of LOT_SIZE and MARKET_LOT_SIZE."""
        return max(self.step_size, self.market_step_size or ZERO)

    @cached_property
    def market_min_quantity(self) -> Decimal:
        """Smallest market order quantity allowed by LOT_SIZE and MARKET_LOT_SIZE."""
        return max(self.min_qty, self.market_min_qty or ZERO)

    @cached_property
    def market_max_quantity(self) -> Decimal:
        """Largest market order quantity allowed by LOT_SIZE and MARKET_LOT_SIZE."""
        return min(self.max_qty, self.market_max_qty) if self.market_max_qty else self.max_qty

    @cached_property
    def market_min_notional(self) -> Decimal:
        """Minimum order value (quote) that binds a market order, 0 when none."""
        return self.min_notional if self.apply_min_to_market else ZERO


class SizingResult(NamedTuple):
    """Quantity of a market buy (base units, on the step), or None and the reason it was skipped.

    ``reason`` names the exchange filter that refused the order; it is empty when ``quantity`` is set.
    ``notional`` is quantity x price (quote units) at the price used for sizing. (A named tuple:
    the backtester sizes every trade with this function, and a frozen dataclass costs more to make
    than the arithmetic.)
    """

    quantity: Decimal | None
    reason: str
    allocation: Decimal = ZERO
    risk_amount: Decimal = ZERO
    notional: Decimal = ZERO

    @property
    def ok(self) -> bool:
        """True when an order should be sent."""
        return self.quantity is not None


# A MARKET buy fills at the price of the moment, not the one it was sized at: this share of the
# allocation stays unspent so a small move up between sizing and fill cannot fail with -2010.
MARKET_BUY_HEADROOM = Decimal("0.005")
_SPENDABLE_SHARE = 1 - MARKET_BUY_HEADROOM


def size_entry(free_quote: Decimal, price: Decimal, params: StrategyParameters, filters: SymbolFilters) -> SizingResult:
    """Quantity to buy at ``price`` (quote per base) from ``free_quote`` (quote units).

    allocation = free_quote x CAPITAL_ALLOCATION; risk = allocation x RISK_PER_TRADE;
    quantity = risk / (price x STOP_LOSS_PERCENTAGE), at most allocation x (1 - 0.5 % headroom) / price and maxQty
    (and maxNotional when it applies to market orders), rounded down to the market step.
    """
    if price <= ZERO:
        raise ValueError(f"price must be positive, got {price}")
    allocation = free_quote * params.CAPITAL_ALLOCATION
    if allocation <= ZERO:
        return SizingResult(None, f"no free quote balance to allocate ({format_decimal(free_quote)})")
    risk_amount = allocation * params.RISK_PER_TRADE
    spendable = allocation * _SPENDABLE_SHARE
    quantity = min(risk_amount / (price * params.STOP_LOSS_PERCENTAGE), spendable / price, filters.market_max_quantity)
    if filters.apply_max_to_market and filters.max_notional is not None:
        quantity = min(quantity, filters.max_notional / price)
    step = filters.market_step
    quantity = round_down_to_step(quantity, step)
    notional = quantity * price
    if notional > spendable:  # spendable / price was rounded up in its 28th digit
        quantity -= step
        notional = quantity * price
    if quantity <= ZERO or quantity < filters.market_min_quantity:
        reason = (
            f"LOT_SIZE: quantity {format_decimal(quantity)} is below minQty "
            f"{format_decimal(filters.market_min_quantity)} (step {format_decimal(step)})"
        )
        return SizingResult(None, reason, allocation, risk_amount, notional)
    if notional < filters.market_min_notional:
        reason = (
            f"NOTIONAL: order value {format_decimal(notional)} is below minNotional "
            f"{format_decimal(filters.market_min_notional)}"
        )
        return SizingResult(None, reason, allocation, risk_amount, notional)
    return SizingResult(quantity, "", allocation, risk_amount, notional)


class SellableQuantity(NamedTuple):
    """What can be sold of a position: ``quantity`` on the step, ``remainder`` below one step.

    ``dust`` is True when ``quantity`` itself cannot be sold (below minQty, or below
    minNotional at the given price); then the whole credited amount stays on the account.
    """

    quantity: Decimal
    remainder: Decimal
    dust: bool
    reason: str = ""


def sellable_quantity(credited_base: Decimal, filters: SymbolFilters, price: Decimal | None = None) -> SellableQuantity:
    """Round the base credited by the buy fills (after commission taken in base) down to the step.

    ``price`` (quote per base), when given, also checks the minimum notional of the sell.
    """
    quantity = round_down_to_step(credited_base, filters.market_step)
    remainder = credited_base - quantity
    if quantity <= ZERO or quantity < filters.market_min_quantity:
        reason = f"LOT_SIZE: {format_decimal(quantity)} is below minQty {format_decimal(filters.market_min_quantity)}"
        return SellableQuantity(quantity, remainder, True, reason)
    if price is not None and quantity * price < filters.market_min_notional:
        reason = (
            f"NOTIONAL: {format_decimal(quantity * price)} is below minNotional "
            f"{format_decimal(filters.market_min_notional)}"
        )
        return SellableQuantity(quantity, remainder, True, reason)
    return SellableQuantity(quantity, remainder, False)
