"""User-data events from the exchange, normalised by market_data."""

from __future__ import annotations

from decimal import Decimal

from shared.events.envelope import Payload
from shared.trading.vocabulary import Side


class ExecutionReport(Payload):
    """One change of one order (Binance executionReport), quantities in base, quote in quote.

    ``last_*`` describe this fill only; ``cumulative_*`` the order so far.
    """

    TYPE = "execution_report"

    symbol: str
    client_order_id: str
    original_client_order_id: str = ""
    order_id: int
    side: Side
    order_type: str
    execution_type: str
    status: str  # the exchange's ``OrderStatus``, as text: a status added by Binance must not lose a fill
    quantity: Decimal
    price: Decimal
    last_quantity: Decimal
    last_price: Decimal
    cumulative_quantity: Decimal
    cumulative_quote: Decimal
    commission: Decimal
    commission_asset: str | None = None
    trade_id: int = -1
    reject_reason: str = ""
    transact_time_ms: int


class Balances(Payload):
    """Free and locked amounts per asset; ``full`` is true for a complete account snapshot."""

    TYPE = "balances"

    balances: dict[str, dict[str, Decimal]]
    full: bool = False
