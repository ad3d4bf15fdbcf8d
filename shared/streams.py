"""Every Redis key the services share: stream names, consumer groups, MAXLEN values.

Per-symbol streams carry the work that must stay in order for one symbol (klines for the
strategy; tickers, signals, commands and executions for the executor). A replica owns a symbol
through a lease (``shared.leases``) and is then the only reader of that symbol's streams.
"""

from __future__ import annotations

# Streams read by humans and the dashboard (one per event family, every symbol).
SIGNALS = "strategy:signals"
DECISIONS = "strategy:decisions"
EXECUTOR_EVENTS = "executor:events"
MARKET_STATUS = "market:status"
KLINE_UPDATES = "market:kline_updates"
ACCOUNT_BALANCES = "account:balances"
LOGS = "logs"
CONTROL_COMMANDS = "control:commands"
CONTROL_PARAMETERS = "control:parameters"

# Consumer groups, named after the consuming service.
GROUP_STRATEGY = "strategy"
GROUP_EXECUTOR = "executor"

# Keys holding the latest state (not streams).
MARKET_FRESHNESS = "market:freshness"  # hash: symbol -> wall ms of the last market message
MARKET_LAST_PRICE = "market:last_price"  # hash: symbol -> last price (text)
MARKET_CLOCK = "market:clock"  # hash: symbol -> exchange time (ms) of the last market message
ACCOUNT_SNAPSHOT = "account:snapshot"  # hash: asset -> JSON {"free","locked"}
ACCOUNT_LAST_TRADE = "account:last_trade_id"  # hash: symbol -> last trade id seen
BOT_STATE = "control:bot_state"  # JSON {"state","reason","changed_at_ms"}
PARAMETERS = "control:parameters:current"  # JSON {"version","parameters",...}
POSITIONS = "executor:positions"  # hash: symbol -> JSON position snapshot
ENTRY_SENT = "executor:entry_sent_ms"  # hash: entry client order id -> Redis time (ms) its order was last sent
KLINE_LAST_OPEN = "market:kline_last_open"  # hash: symbol -> open time of the last closed kline published
DASHBOARD_PASSWORD_HASH = "api:password_hash"
LAST_SIGNAL = "strategy:last_signal"  # hash: symbol -> the symbol's newest signal entry (flat fields as JSON)
SYMBOL_INFO = "market:symbols"  # hash: symbol -> JSON {"symbol","base_asset","quote_asset","tick_size","step_size","min_qty","min_notional"}

MAXLEN = {
    "market:kline": 20_000,
    "market:ticker": 2_000,
    KLINE_UPDATES: 5_000,
    MARKET_STATUS: 2_000,
    ACCOUNT_BALANCES: 2_000,
    "account:executions": 10_000,
    SIGNALS: 10_000,
    DECISIONS: 20_000,
    "executor:inbox": 10_000,
    EXECUTOR_EVENTS: 20_000,
    LOGS: 5_000,
    CONTROL_COMMANDS: 1_000,
    CONTROL_PARAMETERS: 1_000,
    "deadletter": 10_000,
}


def kline_stream(symbol: str) -> str:
    """Closed klines of one symbol, consumed in order by the strategy owner of that symbol."""
    return f"market:kline:{symbol}"


def ticker_stream(symbol: str) -> str:
    """Mini-ticker prices of one symbol, consumed by the executor owner (stop-loss/take-profit)."""
    return f"market:ticker:{symbol}"


def executions_stream(symbol: str) -> str:
    """Normalised execution reports of one symbol, from the user-data stream."""
    return f"account:executions:{symbol}"


def executor_inbox(symbol: str) -> str:
    """Signals and commands addressed to the executor owner of one symbol."""
    return f"executor:inbox:{symbol}"


def deadletter_stream(stream: str) -> str:
    """Where entries of ``stream`` that cannot be decoded or keep failing are moved."""
    return f"deadletter:{stream}"


def health_key(service: str, instance: str) -> str:
    """Heartbeat key of one running service process (expires when it stops refreshing)."""
    return f"health:{service}:{instance}"


def lease_key(service: str, symbol: str) -> str:
    """Ownership of one symbol by one replica of ``service``."""
    return f"lease:{service}:{symbol}"


def members_key(service: str) -> str:
    """Sorted set of the live replicas of ``service`` (instance -> Redis time of its last refresh)."""
    return f"members:{service}"


def processed_key(group: str, event_id: str) -> str:
    """Marker that ``group`` already applied the effect of ``event_id``."""
    return f"processed:{group}:{event_id}"


def command_answer_key(command_id: str, outcome: str, symbol: str | None = None) -> str:
    """Marker that one executor replica already gave this answer to this operator command."""
    return f"control:answered:{command_id}:{symbol or '-'}:{outcome}"


def failures_key(group: str, stream: str) -> str:
    """Hash entry id -> handler failures of ``group`` on ``stream`` (cleared with the ack)."""
    return f"bus:failures:{group}:{stream}"


def maxlen_for(stream: str) -> int:
    """MAXLEN for a stream, looked up by its family (the part before the symbol)."""
    if stream in MAXLEN:
        return MAXLEN[stream]
    if stream.startswith("deadletter:"):
        return MAXLEN["deadletter"]
    family = stream.rsplit(":", 1)[0]
    return MAXLEN.get(family, 10_000)
