"""The profit read model: what the trader reads about results, computed once from ledger rows.

Pure functions over ``TradeRecord`` rows (one per position, built from the executor's ledger by
the api, or from the backtester's trades): realised and unrealised P&L, fees in the quote asset,
win rate, profit factor, expectancy, durations, drawdown of the realised equity, best and worst
trade, the bot's fee dust, the equity curve and the per-period breakdown. Money stays ``Decimal``
until it is formatted (``shared.precision``). Times are market time (epoch ms).

Realised P&L of a trade is what it did to the quote balance: ``quote_received - quote_spent``
(both after commissions). The base dust an exit leaves (below one step) is the bot's and is
sold with the next exit of the symbol, so it is realised there; until then it is valued at the
last price as ``dust_quote``.

The package: ``records`` (one trade), ``stats`` (the figures of a set), ``series`` (periods, the
equity curve, the text form); every name is importable from ``shared.trading.profit``.
"""

from shared.trading.profit.records import (
    ACTIVE,
    CLOSED,
    HUNDRED,
    ZERO,
    PeriodUnit,
    TradeRecord,
    TradeRef,
    bot_dust,
    closed_in_order,
    order_fee_quote,
)
from shared.trading.profit.series import (
    EquityPoint,
    Period,
    equity_curve,
    equity_point_dict,
    figures_dict,
    period_bounds,
    period_dict,
    periods,
    summary_dict,
)
from shared.trading.profit.stats import (
    Drawdown,
    Figures,
    Summary,
    figures,
    realised_drawdown,
    starting_equity_from,
    summarise,
)

__all__ = [
    "ACTIVE",
    "CLOSED",
    "HUNDRED",
    "ZERO",
    "Drawdown",
    "EquityPoint",
    "Figures",
    "Period",
    "PeriodUnit",
    "Summary",
    "TradeRecord",
    "TradeRef",
    "bot_dust",
    "closed_in_order",
    "equity_curve",
    "equity_point_dict",
    "figures",
    "figures_dict",
    "order_fee_quote",
    "period_bounds",
    "period_dict",
    "periods",
    "realised_drawdown",
    "starting_equity_from",
    "summarise",
    "summary_dict",
]
