"""How many decimals a symbol's numbers are read with, and their text in that precision.

Prices take the decimals of the tick size, quantities those of the step size (rounded down, as
the exchange would), quote amounts 2 decimals for USD-like quote assets and 8 otherwise,
percentages and ratios 2. Pure: the filters come from ``exchangeInfo`` (published by the
executor in ``market:symbols``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

USD_LIKE = frozenset({"USDT", "USDC", "FDUSD", "TUSD", "BUSD", "USD", "DAI", "EUR", "TRY", "BRL"})
DEFAULT_DECIMALS = 8
PERCENT_DECIMALS = 2


# Longest first, so FDUSD wins over USD-like suffixes.
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "EUR", "TRY", "BRL", "BTC", "ETH", "BNB")


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) of a symbol such as BTCUSDT, when the exchange's own answer is not at hand."""
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-4], symbol[-4:]


def decimals_of(step: Decimal) -> int:
    """Decimals of a tick or step size: ``0.01`` -> 2, ``0.00001000`` -> 5, ``1`` -> 0."""
    if step <= 0:
        return DEFAULT_DECIMALS
    exponent = step.normalize().as_tuple().exponent
    return max(0, -int(exponent))


def quote_decimals_for(quote_asset: str) -> int:
    return 2 if quote_asset.upper() in USD_LIKE else DEFAULT_DECIMALS


def fixed(value: Decimal | None, places: int, rounding: str = ROUND_HALF_EVEN) -> str | None:
    """``value`` with exactly ``places`` decimals (never an exponent); None stays None."""
    if value is None:
        return None
    try:
        quantum = Decimal(1).scaleb(-places)
        text = format(Decimal(value).quantize(quantum, rounding=rounding), "f")
    except (InvalidOperation, ValueError):
        return None
    return "0" + text[2:] if text.startswith("-0") and not any(c in "123456789" for c in text) else text


@dataclass(frozen=True)
class Precision:
    """Display precision of one symbol (``tick_size``/``step_size`` as the exchange gives them)."""

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal | None = None
    step_size: Decimal | None = None
    min_qty: Decimal | None = None
    min_notional: Decimal | None = None

    @property
    def price_decimals(self) -> int:
        return decimals_of(self.tick_size) if self.tick_size else DEFAULT_DECIMALS

    @property
    def quantity_decimals(self) -> int:
        return decimals_of(self.step_size) if self.step_size else DEFAULT_DECIMALS

    @property
    def quote_decimals(self) -> int:
        return quote_decimals_for(self.quote_asset)

    def price(self, value: Decimal | None) -> str | None:
        if self.tick_size is None:
            return _trimmed(fixed(value, DEFAULT_DECIMALS))
        return fixed(value, self.price_decimals)

    def quantity(self, value: Decimal | None) -> str | None:
        if self.step_size is None:
            return _trimmed(fixed(value, DEFAULT_DECIMALS, ROUND_DOWN))
        return fixed(value, self.quantity_decimals, ROUND_DOWN)

    def quote(self, value: Decimal | None) -> str | None:
        return fixed(value, self.quote_decimals)

    def dust(self, value: Decimal | None) -> str | None:
        """Dust is below one step: it keeps the base asset's full 8 decimals, else it would read 0."""
        return fixed(value, max(DEFAULT_DECIMALS, self.quantity_decimals), ROUND_DOWN)

    def to_dict(self) -> dict[str, Any]:
        body = {
            k: (None if v is None else format(v, "f") if isinstance(v, Decimal) else v) for k, v in asdict(self).items()
        }
        body.update(
            price_decimals=self.price_decimals,
            quantity_decimals=self.quantity_decimals,
            quote_decimals=self.quote_decimals,
        )
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Precision:
        def number(key: str) -> Decimal | None:
            try:
                return None if body.get(key) in (None, "") else Decimal(str(body[key]))
            except InvalidOperation:
                return None

        return cls(
            str(body.get("symbol", "")),
            str(body.get("base_asset", "")),
            str(body.get("quote_asset", "")),
            number("tick_size"),
            number("step_size"),
            number("min_qty"),
            number("min_notional"),
        )


def _trimmed(text: str | None) -> str | None:
    """Without the symbol's filters the number of decimals is unknown: no padding zeros then."""
    if text is None or "." not in text:
        return text
    return text.rstrip("0").rstrip(".")


def pct(value: Decimal | None) -> str | None:
    """A percentage or a ratio, 2 decimals."""
    return fixed(value, PERCENT_DECIMALS)


def short_pct(value: Decimal | None) -> str | None:
    """A percentage rounded to 2 decimals without padding zeros (``6.8``): the ledger's ``return_pct``."""
    return _trimmed(pct(value))
