"""Every Redis key the services share: stream names, consumer groups, MAXLEN values.

Per-symbol streams carry the work that must stay in order for one symbol (klines for the
strategy; tickers, signals, commands and executions for the executor). A replica owns a symbol
through a lease (``shared.leases``) and is then the only reader of that symbol's streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

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
GROUP_NOTIFIER = "notifier"

# Keys holding the latest state (not streams).
MARKET_FRESHNESS = "market:freshness"  # hash: symbol -> wall ms of the last market message
MARKET_LAST_PRICE = "market:last_price"  # hash: symbol -> last price (text)
MARKET_CLOCK = "market:clock"  # hash: symbol -> exchange time (ms) of the last market message
ACCOUNT_SNAPSHOT = "account:snapshot"  # hash: asset -> JSON {"free","locked"}
ACCOUNT_LAST_TRADE = "account:last_trade_id"  # hash: symbol -> last trade id seen
BOT_STATE = "control:bot_state"  # JSON {"state","reason","changed_at_ms"}
PARAMETERS = "control:parameters:current"  # JSON {"version","parameters",...}: the shared ema_cross_rsi set
PARAMETERS_OF = "control:parameters:current:*"  # one per symbol: JSON {"version","strategy","parameters",...}
POSITIONS = "executor:positions"  # hash: symbol -> JSON position snapshot
BREAKER = "executor:breaker"  # JSON: the account circuit breaker's state (shared.trading.breaker)
KLINE_LAST_OPEN = "market:kline_last_open"  # hash: symbol -> open time of the last closed kline published
DASHBOARD_PASSWORD_HASH = "api:password_hash"
SESSION_PREFIX = "api:session:"  # + SHA-256 of a session id: one dashboard session (make reset-password ends them)
LOGIN_DEVICE_PREFIX = "api:device:"  # + SHA-256 of a device cookie: a browser that signed in before
LOGIN_FAILURES_PREFIX = "api:login:failures:"  # + client: failed sign-ins in the current window
LOGIN_BLOCK_PREFIX = "api:login:block:"  # + client: sign-in refused until this key expires
LOGIN_UNTRUSTED = "api:login:untrusted"  # sorted set: sign-ins from unknown devices (global budget)
LAST_SIGNAL = "strategy:last_signal"  # hash: symbol -> the symbol's newest signal entry (flat fields as JSON)
NOTIFIER_SUMMARY = "notifier:summary"  # market ms at which the last summarised market day ended
# hash: symbol -> JSON {"symbol","base_asset","quote_asset","tick_size","step_size","min_qty","min_notional"}
SYMBOL_INFO = "market:symbols"


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
    """Signals addressed to the executor owner of one symbol (written by the strategy)."""
    return f"executor:inbox:{symbol}"


def parameters_key(symbol: str) -> str:
    """One symbol's own parameter set (its strategy, version and values), written by the api."""
    return f"control:parameters:current:{symbol}"


def symbol_commands(symbol: str) -> str:
    """Operator commands for one symbol (close_position), read by the executor owner of it.

    Not the executor inbox: the api may write control keys only, so it can never append a
    signal to an inbox, whatever it is made to do.
    """
    return f"control:commands:{symbol}"


DEADLETTER = "deadletter"


def deadletter_stream(stream: str) -> str:
    """Where entries of ``stream`` that cannot be decoded or keep failing are moved."""
    return f"{DEADLETTER}:{stream}"


def family(stream: str) -> str:
    """The family of a per-symbol stream (``market:kline`` of ``market:kline:BTCUSDT``)."""
    return stream.rsplit(":", 1)[0]


def is_kline_stream(stream: str) -> bool:
    return family(stream) == family(kline_stream("-"))


def is_ticker_stream(stream: str) -> bool:
    return family(stream) == family(ticker_stream("-"))


def health_key(service: str, instance: str) -> str:
    """Heartbeat key of one running service process (expires when it stops refreshing);
    ``"*"`` for either part makes the pattern of every such key."""
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


COMMAND_ANSWERS = "control:answered:"  # prefix of command_answer_key: written by the executor only


def command_answer_key(command_id: str, outcome: str, symbol: str | None = None) -> str:
    """Marker that one executor replica already gave this answer to this operator command."""
    return f"{COMMAND_ANSWERS}{command_id}:{symbol or '-'}:{outcome}"


def notifier_sent_key(key: str) -> str:
    """Hash target id -> wall ms of the notification ``key`` delivered to that target."""
    return f"notifier:sent:{key}"


def failures_key(group: str, stream: str) -> str:
    """Hash entry id -> handler failures of ``group`` on ``stream`` (cleared with the ack)."""
    return f"bus:failures:{group}:{stream}"


# Sized for the whole market (500 symbols in about 400 MB of Redis, measured by
# bench/bench_pipeline.py): a closed-kline entry takes about 240 bytes, a ticker entry 175. A
# symbol's closed klines hold the strategy's largest window (STRATEGY_WINDOW_CANDLES, at most
# KLINE_STREAM_CANDLES) for its rebuild after a restart; its ticks about 25 minutes at one a
# second, what a takeover reads back for a level crossed while no executor ran.
KLINE_STREAM_CANDLES = 2_000
MAXLEN = {
    family(kline_stream("-")): KLINE_STREAM_CANDLES,
    family(ticker_stream("-")): 1_500,
    KLINE_UPDATES: 5_000,
    MARKET_STATUS: 2_000,
    ACCOUNT_BALANCES: 2_000,
    family(executions_stream("-")): 10_000,
    SIGNALS: 10_000,
    DECISIONS: 20_000,
    family(executor_inbox("-")): 10_000,
    EXECUTOR_EVENTS: 20_000,
    LOGS: 5_000,
    CONTROL_COMMANDS: 1_000,
    CONTROL_PARAMETERS: 1_000,
    DEADLETTER: 10_000,
}


def maxlen_for(stream: str) -> int:
    """MAXLEN for a stream, looked up by its family (the part before the symbol)."""
    if stream in MAXLEN:
        return MAXLEN[stream]
    if stream.startswith(DEADLETTER + ":"):
        return MAXLEN[DEADLETTER]
    return MAXLEN.get(family(stream), 10_000)


class BusUser(StrEnum):
    """The Redis ACL user each service connects as (the simulator uses no Redis)."""

    MARKET_DATA = "market_data"
    STRATEGY = "strategy"
    EXECUTOR = "executor"
    API = "api"
    NOTIFIER = "notifier"


@dataclass(frozen=True)
class BusGrant:
    """What one service may do on the bus, as key patterns (Redis glob syntax).

    ``writes`` may also be read; ``reads`` are read-only; ``groups`` are streams the service
    consumes through a consumer group (read, acknowledge, claim, create the group) without the
    right to append to them; ``scripts`` allows EVAL/EVALSHA (leases, the kline append).
    """

    writes: tuple[str, ...]
    reads: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    scripts: bool = False


# The one table of who may touch what; ``shared.redis_acl`` turns it into ACL rules for
# ``make run``, docker compose and the test stack, so a missing permission breaks the tests.
ACCESS: dict[BusUser, BusGrant] = {
    BusUser.MARKET_DATA: BusGrant(
        writes=("market:*", "account:*", LOGS, "health:market_data:*"),
        scripts=True,  # the Lua append of closed klines
    ),
    BusUser.STRATEGY: BusGrant(
        writes=(
            DECISIONS,
            SIGNALS,
            LAST_SIGNAL,
            "executor:inbox:*",
            "deadletter:market:kline:*",
            LOGS,
            "health:strategy:*",
            "lease:strategy:*",
            "members:strategy",
            "bus:failures:strategy:*",
        ),
        reads=(MARKET_CLOCK, PARAMETERS, PARAMETERS_OF, CONTROL_PARAMETERS),
        groups=("market:kline:*",),
        scripts=True,  # lease renewal and release
    ),
    BusUser.EXECUTOR: BusGrant(
        writes=(
            EXECUTOR_EVENTS,
            POSITIONS,
            BOT_STATE,
            "deadletter:market:ticker:*",
            "deadletter:executor:inbox:*",
            "deadletter:account:executions:*",
            "deadletter:control:commands:*",
            LOGS,
            "health:executor:*",
            "lease:executor:*",
            f"{COMMAND_ANSWERS}*",
            BREAKER,
            SYMBOL_INFO,
            "members:executor",
            "bus:failures:executor:*",
            DECISIONS,
        ),
        reads=(
            MARKET_FRESHNESS,
            MARKET_LAST_PRICE,
            MARKET_CLOCK,
            PARAMETERS,
            PARAMETERS_OF,
            CONTROL_COMMANDS,
            CONTROL_PARAMETERS,
            "market:kline:*",  # the closed candles that move a trailing or break-even stop
        ),
        groups=("market:ticker:*", "executor:inbox:*", "account:executions:*", "control:commands:*"),
        scripts=True,  # lease renewal and release
    ),
    BusUser.API: BusGrant(
        # Named control keys, not control:*: the answers to commands are the executor's word.
        writes=(
            BOT_STATE,
            PARAMETERS,
            PARAMETERS_OF,
            CONTROL_COMMANDS,
            CONTROL_PARAMETERS,
            "control:commands:*",
            "api:*",
            LOGS,
            "health:api:*",
        ),
        reads=("market:*", "account:*", "strategy:*", "executor:*", "health:*", "deadletter:*", LOGS),
    ),
    BusUser.NOTIFIER: BusGrant(
        writes=("notifier:*", "deadletter:executor:events", "bus:failures:notifier:*", LOGS, "health:notifier:*"),
        reads=(MARKET_CLOCK, MARKET_LAST_PRICE),
        groups=(EXECUTOR_EVENTS,),
    ),
}
