"""How bus entries become dashboard events: names, payloads, cursors for resuming.

Every relayed entry keeps its Redis position ``<ms>-<seq>@<stream>`` as the SSE id. Entry ids
are per stream, so two streams can hold the same id in the same millisecond; ordering by
(ms, seq, stream) makes the position total, and a client resuming after position P receives
exactly the entries ordered after P.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared import streams
from shared.codec import DecodeError, decode
from shared.events import Envelope

# At most 19 ASCII digits per part: always below 2**64, the largest id Redis accepts.
ID_PATTERN = r"^([0-9]{1,19})-([0-9]{1,19})(?:@([A-Za-z0-9:_\-]{1,100}))?$"
_ID = re.compile(ID_PATTERN)

# Event name on the dashboard for each event type.
EVENT_NAMES = {
    "log": "log",
    "ticker": "price",
    "kline": "candle",
    "signal": "signal",
    "decision": "decision",
    "order_update": "orders",
    "position_opened": "orders",
    "position_closed": "orders",
    "executor_alert": "alert",
    "bot_state": "status",
    "market_status": "status",
    "balances": "status",
    "bot_command": "status",
    "command_outcome": "command",
    "parameters_changed": "parameters",
    "position_snapshot": "position",
}


@dataclass(frozen=True, order=True)
class StreamCursor:
    """Where an entry sits in the total order of every relayed stream."""

    ms: int
    seq: int
    stream: str

    @property
    def entry_id(self) -> str:
        return f"{self.ms}-{self.seq}"

    def text(self) -> str:
        """The SSE id: ``<ms>-<seq>@<stream>``."""
        return f"{self.entry_id}@{self.stream}"

    @classmethod
    def of(cls, stream: str, entry_id: str) -> StreamCursor:
        ms, seq = entry_id.split("-")
        return cls(int(ms), int(seq), stream)

    @classmethod
    def parse(cls, text: str | None) -> StreamCursor | None:
        """Read a ``Last-Event-ID``; a bare ``<ms>-<seq>`` resumes after that id on every stream."""
        match = _ID.match((text or "").strip())
        if match is None:
            return None
        # "~" sorts after every stream name: the bare id counts as seen on all streams.
        return cls(int(match[1]), int(match[2]), match[3] or "~")

    def start_for(self, stream: str) -> str:
        """XRANGE start on ``stream`` for the entries ordered after this cursor."""
        return self.entry_id if stream > self.stream else f"({self.entry_id}"


@dataclass(frozen=True)
class Relayed:
    """One dashboard event; ``cursor`` is None for throttled, not resumable updates."""

    event: str
    data: dict[str, Any]
    cursor: StreamCursor | None = None
    throttle_key: tuple[str, str] | None = field(default=None, compare=False)
    # ``data`` as JSON text, made once for every client (see ``encoded_data``).
    encoded: str | None = field(default=None, compare=False)


def encoded_data(item: Relayed) -> str:
    """The event's ``data`` as one line of JSON."""
    return item.encoded if item.encoded is not None else orjson.dumps(item.data, default=str).decode()


def relayed_streams(symbols: list[str]) -> list[str]:
    """Every stream whose entries the dashboard receives."""
    shared = [
        streams.LOGS,
        streams.SIGNALS,
        streams.DECISIONS,
        streams.EXECUTOR_EVENTS,
        streams.MARKET_STATUS,
        streams.KLINE_UPDATES,
        streams.ACCOUNT_BALANCES,
        streams.CONTROL_COMMANDS,
        streams.CONTROL_PARAMETERS,
    ]
    per_symbol = [name for symbol in symbols for name in (streams.kline_stream(symbol), streams.ticker_stream(symbol))]
    return shared + per_symbol


def is_ephemeral(stream: str) -> bool:
    """Streams of frequent updates that are throttled and not replayed on resume."""
    return stream == streams.KLINE_UPDATES or streams.is_ticker_stream(stream)


def to_relayed(stream: str, entry_id: str, fields: dict[str, str]) -> Relayed | None:
    """The dashboard event for one entry, or None when it is not for the dashboard."""
    try:
        event = decode(fields)
    except DecodeError:
        return None
    name = EVENT_NAMES.get(event.type)
    if name is None:
        return None
    data = _data(stream, event)
    symbol = str(data.get("symbol") or "")
    if event.type == "ticker":
        # ``ts_ms``, the ticker's event time, is the exchange's market time.
        data = {"type": "ticker", "symbol": symbol, "price": data["price"], "ts_ms": event.ts_event_ms}
        return Relayed(name, data, None, ("price", symbol))
    if event.type == "kline" and not data.get("closed"):
        return Relayed(name, data, None, ("candle", symbol))
    if event.type == "kline" and stream == streams.KLINE_UPDATES:
        # The closed candle also arrives, resumable, from the symbol's kline stream.
        return Relayed(name, data, None, None)
    return Relayed(name, data, StreamCursor.of(stream, entry_id))


def _data(stream: str, event: Envelope) -> dict[str, Any]:
    payload = event.payload.model_dump(mode="json")
    return {**payload, "type": event.type, "source": event.source, "ts_ms": event.ts_event_ms, "stream": stream}
