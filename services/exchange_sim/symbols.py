"""Per-symbol trading rules: the filters of exchangeInfo and the assets of a symbol.

BTCUSDT, ETHUSDT and DOGEUSDT use Binance's published values; any other symbol gets rules derived
from its data (tickSize from the decimals of its prices, stepSize from its price level).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from .decimals import floor_to_step, fmt8, step_from_decimals

QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "DAI", "EUR", "TRY", "BRL", "JPY", "BTC", "ETH", "BNB", "USD")
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
ASSET_PRECISION = 8
SYMBOL_STATUSES = ("TRADING", "HALT", "BREAK")
SYMBOL_PERMISSIONS = ("SPOT",)


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """The rules orders on one symbol are checked against."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal = Decimal(5)
    max_notional: Decimal = Decimal(9_000_000)
    avg_price_mins: int = 5
    multiplier_up: Decimal = Decimal(5)
    multiplier_down: Decimal = Decimal("0.2")
    max_num_orders: int = 200
    max_num_algo_orders: int = 5

    def filters(self) -> list[dict[str, object]]:
        """The ``filters`` array of this symbol in exchangeInfo."""
        return [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt8(self.min_price),
                "maxPrice": fmt8(self.max_price),
                "tickSize": fmt8(self.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt8(self.min_qty),
                "maxQty": fmt8(self.max_qty),
                "stepSize": fmt8(self.step_size),
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt8(Decimal(0)),
                "maxQty": fmt8(self.market_max_qty),
                "stepSize": fmt8(Decimal(0)),
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": str(self.multiplier_up),
                "bidMultiplierDown": str(self.multiplier_down),
                "askMultiplierUp": str(self.multiplier_up),
                "askMultiplierDown": str(self.multiplier_down),
                "avgPriceMins": self.avg_price_mins,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt8(self.min_notional),
                "applyMinToMarket": True,
                "maxNotional": fmt8(self.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": self.avg_price_mins,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": self.max_num_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": self.max_num_algo_orders},
        ]

    def exchange_info(self, permission_sets: bool = True) -> dict[str, object]:
        """This symbol's entry in ``exchangeInfo.symbols`` (``permissionSets`` empty when not wanted)."""
        return {
            "symbol": self.symbol,
            "status": "TRADING",
            "baseAsset": self.base,
            "baseAssetPrecision": ASSET_PRECISION,
            "quoteAsset": self.quote,
            "quotePrecision": ASSET_PRECISION,
            "quoteAssetPrecision": ASSET_PRECISION,
            "baseCommissionPrecision": ASSET_PRECISION,
            "quoteCommissionPrecision": ASSET_PRECISION,
            "orderTypes": list(ORDER_TYPES),
            "icebergAllowed": False,
            "ocoAllowed": True,
            "otoAllowed": False,
            "opoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": True,
            "amendAllowed": False,
            "pegInstructionsAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": self.filters(),
            "permissions": [],
            "permissionSets": [list(SYMBOL_PERMISSIONS)] if permission_sets else [],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"BTCUSDT"`` -> ``("BTC", "USDT")`` using the longest known quote-asset suffix."""
    for quote in sorted(QUOTE_ASSETS, key=len, reverse=True):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"{symbol}: cannot tell the quote asset (known: {', '.join(QUOTE_ASSETS)})")


_KNOWN: dict[str, dict[str, str]] = {
    "BTCUSDT": {
        "tick": "0.01",
        "min_price": "0.01",
        "max_price": "1000000",
        "step": "0.00001",
        "max_qty": "9000",
        "market_max_qty": "100",
    },
    "ETHUSDT": {
        "tick": "0.01",
        "min_price": "0.01",
        "max_price": "1000000",
        "step": "0.0001",
        "max_qty": "9000",
        "market_max_qty": "2000",
    },
    "DOGEUSDT": {
        "tick": "0.00001",
        "min_price": "0.00001",
        "max_price": "1000",
        "step": "1",
        "max_qty": "9000000",
        "market_max_qty": "5000000",
    },
}


def make_spec(symbol: str, price_decimals: int, reference_price: Decimal) -> SymbolSpec:
    """Rules for ``symbol``: Binance's values when known, otherwise derived from its data."""
    base, quote = split_symbol(symbol)
    known = _KNOWN.get(symbol)
    if known:
        step = Decimal(known["step"])
        return SymbolSpec(
            symbol=symbol,
            base=base,
            quote=quote,
            tick_size=Decimal(known["tick"]),
            min_price=Decimal(known["min_price"]),
            max_price=Decimal(known["max_price"]),
            step_size=step,
            min_qty=step,
            max_qty=Decimal(known["max_qty"]),
            market_max_qty=Decimal(known["market_max_qty"]),
        )
    tick = step_from_decimals(min(price_decimals, ASSET_PRECISION))
    price = reference_price if reference_price > 0 else Decimal(1)
    step = step_from_decimals(max(0, min(ASSET_PRECISION, math.floor(math.log10(price)))))
    return SymbolSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        tick_size=tick,
        min_price=tick,
        max_price=max(tick, floor_to_step(price * 1000, tick)),
        step_size=step,
        min_qty=step,
        max_qty=max(step, floor_to_step(Decimal(900_000_000) / price, step)),
        market_max_qty=max(step, floor_to_step(Decimal(10_000_000) / price, step)),
    )
