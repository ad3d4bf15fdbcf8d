"""The words the ledger, the events, the executor and the api share, one enum each.

They are ``StrEnum`` so that a member compares equal to its stored or transmitted string: the
database columns, the event payloads and the exchange's answers keep their spelling.
"""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """An order's side, in the exchange's spelling."""

    BUY = "BUY"
    SELL = "SELL"


class OrderStatus(StrEnum):
    """An order's status in the ledger: ours before the exchange answered, then the exchange's."""

    # Ours: written before the request is sent, so a crash cannot lose the intent.
    INTENT = "INTENT"
    SUBMITTED = "SUBMITTED"
    # The request's outcome is unknown (timeout, 5xx): reconciliation must ask the exchange.
    UNKNOWN = "UNKNOWN"
    # The exchange's (Binance's ``orderStatus``).
    NEW = "NEW"
    PENDING_NEW = "PENDING_NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    PENDING_CANCEL = "PENDING_CANCEL"  # listed by Binance as unused; named so that no status of theirs is unknown
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"


class PositionStatus(StrEnum):
    """A position's life: entry sent, held, exit sent, done; FAILED = the entry never filled."""

    OPENING = "OPENING"
    OPEN = "OPEN"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"
    FAILED = "FAILED"


class OrderPurpose(StrEnum):
    """Why an order was placed."""

    ENTRY = "entry"
    EXIT = "exit"
    PROTECT = "protect"  # a leg of the OCO resting on the exchange (stop-loss below, take-profit above)


class ProtectionMode(StrEnum):
    """Where an open position's stop-loss and take-profit are watched (``PROTECTION``)."""

    BOT = "bot"  # the executor watches every tick and sells at market
    EXCHANGE = "exchange"  # an OCO rests on the exchange; the bot watches only if placing it failed


class Guard(StrEnum):
    """Who watches an open position's levels right now, as its snapshot and the dashboard say."""

    EXCHANGE = "exchange"  # both legs of an OCO rest on the exchange
    # The stop rests alone (a trailing stop moved it with cancelReplace, which replaces one
    # order): the take-profit is the bot's, so it fires only while the executor runs.
    EXCHANGE_STOP = "exchange_stop"
    BOT = "bot"  # the executor watches every tick and sells at market


class StopMode(StrEnum):
    """How a stop-loss distance is measured (``shared.trading.stops``)."""

    PERCENT = "percent"  # a fraction of the entry price
    ATR = "atr"  # a multiple of the entry candle's average true range


class EntryOrder(StrEnum):
    """How an entry buys (``ENTRY_ORDER``)."""

    MARKET = "market"  # a MARKET order: taker, fills at once
    LIMIT_MAKER = "limit_maker"  # a LIMIT_MAKER below the best bid: maker, rests until filled or timed out


class BotState(StrEnum):
    """The bot's trading state (``error`` is set by the executor itself)."""

    RUNNING = "running"
    ENTRIES_PAUSED = "entries_paused"
    STOPPED = "stopped"
    ERROR = "error"


class IndicatorKind(StrEnum):
    """The indicators a strategy may ask for, each computed both vectorised and incrementally."""

    EMA = "ema"  # exponential average of a source column, seeded with the simple average of its first n values
    SMA = "sma"  # simple average of a source column over n candles
    RSI = "rsi"  # Wilder's RSI of the close over n price changes
    ATR = "atr"  # Wilder's average true range over n candles, seeded with the simple average
    HIGHEST = "highest"  # highest high of the last n candles (upper Donchian channel)
    LOWEST = "lowest"  # lowest low of the last n candles (lower Donchian channel)


class OverlayPane(StrEnum):
    """Where the chart draws a strategy's indicator line."""

    PRICE = "price"  # over the candles, on the price scale
    OSCILLATOR = "oscillator"  # in the pane below (0-100 scale: the RSI)


class BreakerLimit(StrEnum):
    """The account circuit breaker's limits (``shared.trading.breaker``)."""

    DAILY_LOSS = "daily_loss"
    DRAWDOWN = "drawdown"
    LOSING_STREAK = "losing_streak"
