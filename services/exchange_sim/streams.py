"""Market streams: ``/ws/<name>`` (raw), ``/stream?streams=a/b`` (combined) and live SUBSCRIBE.

Served with data at every walk step: ``<symbol>@kline_<interval>`` (the data interval and whole
multiples of it), ``<symbol>@miniTicker``, ``@trade``, ``@aggTrade``, ``@bookTicker``, ``@depth``
(diffs) and ``@depth<5|10|20>`` (with or without ``@100ms``/``@1000ms``); and
``!miniTicker@arr[@1000ms]`` at every step time (once a second at speed 1). Other
well-formed Binance stream names are accepted and stay silent, as Binance does for an unknown
symbol; a malformed name in SUBSCRIBE gets ``{"error":{"code":2,"msg":"Invalid request: invalid stream"}}``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

import orjson
from aiohttp import web

from .book import Book, build_book
from .candles import VALID_INTERVALS
from .faults import Faults
from .market import Market, Tick
from .symbols import SymbolSpec
from .trades import trade_of
from .wsconn import Connection, open_socket

_INTERVALS = "|".join(sorted(VALID_INTERVALS, key=len, reverse=True))
_VALID = [
    re.compile(p)
    for p in (
        rf"^[a-z0-9]+@kline_({_INTERVALS})(@\+08:00)?$",
        r"^[a-z0-9]+@(miniTicker|ticker|bookTicker|trade|aggTrade|blockTrade|avgPrice|referencePrice)$",
        r"^[a-z0-9]+@ticker_(1h|4h|1d)$",
        r"^[a-z0-9]+@depth(5|10|20)?(@100ms|@1000ms)?$",
        r"^!miniTicker@arr(@1000ms)?$",
        r"^!ticker_(1h|4h|1d)@arr$",
    )
]
ARRAY_STREAMS = ("!miniTicker@arr", "!miniTicker@arr@1000ms")
METHODS = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
_ID = re.compile(r"^[A-Za-z0-9]{1,36}$")
KLINE_EVERY_MS = 2000  # Binance's update speed of a kline stream (1s klines aside); the close always goes out


def is_valid_stream(name: str) -> bool:
    """True for a well-formed Binance stream name (lowercase symbol)."""
    return any(p.match(name) for p in _VALID)


class StreamClient:
    """One market-stream connection and its subscriptions."""

    def __init__(self, conn: Connection, combined: bool) -> None:
        self.conn, self.combined = conn, combined
        self.streams: list[str] = []


class StreamHub:
    """All market-stream clients; ``publish`` fans walk steps out to subscribers."""

    def __init__(
        self, market: Market, faults: Faults, ping_interval: float, specs: dict[str, SymbolSpec], level_quote: Decimal
    ) -> None:
        self.market, self.faults, self.ping_interval = market, faults, ping_interval
        self.specs, self.level_quote = specs, level_quote
        self._books: dict[str, Book] = {}  # the last book sent per symbol, for @depth diffs
        self.clients: set[StreamClient] = set()
        self.by_stream: dict[str, set[StreamClient]] = defaultdict(set)
        self.by_symbol: dict[str, set[str]] = defaultdict(set)
        self._kline_sent: dict[str, int] = {}  # market time of the last forming kline sent per stream
        self.connections_total = 0

    async def handle_raw(self, request: web.Request) -> web.WebSocketResponse:
        """``/ws/<name>``: any name is accepted (ccxt opens ``/ws/0`` then subscribes)."""
        name = request.match_info.get("name", "")
        return await self._serve(request, False, [name] if is_valid_stream(name) else [])

    async def handle_combined(self, request: web.Request) -> web.WebSocketResponse:
        names = [n for n in request.query.get("streams", "").split("/") if is_valid_stream(n)]
        return await self._serve(request, True, names)

    async def _serve(self, request: web.Request, combined: bool, names: list[str]) -> web.WebSocketResponse:
        ws = await open_socket(request)
        client = StreamClient(Connection(request, ws, self.ping_interval, self.faults.stalled), combined)
        self.clients.add(client)
        self.connections_total += 1
        for name in names:
            self._subscribe(client, name)

        async def on_text(text: str) -> None:
            self._control(client, text)

        try:
            await client.conn.serve(on_text)
        finally:
            self.clients.discard(client)
            for name in list(client.streams):
                self._unsubscribe(client, name)
        return ws

    def _subscribe(self, client: StreamClient, name: str) -> None:
        if name not in client.streams:
            client.streams.append(name)
        self.by_stream[name].add(client)
        if not name.startswith("!"):
            self.by_symbol[name.split("@", 1)[0]].add(name)

    def _unsubscribe(self, client: StreamClient, name: str) -> None:
        if name in client.streams:
            client.streams.remove(name)
        subscribers = self.by_stream.get(name)
        if subscribers is not None:
            subscribers.discard(client)
            if not subscribers:
                del self.by_stream[name]
                self.by_symbol[name.split("@", 1)[0]].discard(name)

    def _control(self, client: StreamClient, text: str) -> None:
        """Answer SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY."""
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return self._reply(client, None, error=(3, "Invalid JSON: expected value at line 1 column 1"))
        if not isinstance(request, dict):
            return self._reply(client, None, error=(2, "Invalid request: expected an object"))
        request_id = request.get("id")
        if isinstance(request_id, bool) or not (
            request_id is None or isinstance(request_id, int) or (isinstance(request_id, str) and _ID.match(request_id))
        ):
            return self._reply(client, None, error=(2, "Invalid request: request ID must be an unsigned integer"))
        method, params = request.get("method"), request.get("params", [])
        if method is None:
            return self._reply(client, request_id, error=(2, "Invalid request: missing field `method`"))
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) and is_valid_stream(p) for p in params):
                return self._reply(client, request_id, error=(2, "Invalid request: invalid stream"))
            for name in params:
                (self._subscribe if method == "SUBSCRIBE" else self._unsubscribe)(client, name)
            return self._reply(client, request_id, result=None)
        if method == "LIST_SUBSCRIPTIONS":
            return self._reply(client, request_id, result=list(client.streams))
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return self._property(client, request_id, method, params)
        return self._reply(
            client, request_id, error=(2, f"Invalid request: unknown variant `{method}`, expected one of {METHODS}")
        )

    def _property(self, client: StreamClient, request_id: object, method: str, params: object) -> None:
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            return self._reply(client, request_id, error=(2, "Invalid request: property name must be a string"))
        if params[0] != "combined":
            return self._reply(client, request_id, error=(0, "Unknown property"))
        if method == "GET_PROPERTY":
            return self._reply(client, request_id, result=client.combined)
        if len(params) != 2 or not isinstance(params[1], bool):
            return self._reply(client, request_id, error=(1, "Invalid value type: expected Boolean"))
        client.combined = params[1]
        return self._reply(client, request_id, result=None)

    @staticmethod
    def _reply(
        client: StreamClient, request_id: object, result: object = None, error: tuple[int, str] | None = None
    ) -> None:
        body = (
            {"error": {"code": error[0], "msg": error[1]}, "id": request_id}
            if error
            else {"result": result, "id": request_id}
        )
        client.conn.send(orjson.dumps(body))

    def publish(self, ticks: list[Tick]) -> None:
        """Send the events of each walk step to their subscribers."""
        self._publish_arrays(ticks)
        for tick in ticks:
            names = self.by_symbol.get(tick.symbol.lower())
            if not names:
                continue
            trade, book, before = trade_of(tick), None, self._books.get(tick.symbol)
            for name in list(names):
                kind = name.split("@", 1)[1]
                base = kind.split("@", 1)[0]
                payload: dict[str, object] | None = None
                if kind == "miniTicker":
                    payload = tick.mini_ticker()
                elif kind.startswith("kline_") and "@" not in kind and self._kline_due(name, tick):
                    payload = self.market.kline_event(tick, kind[len("kline_") :])
                elif kind in ("trade", "aggTrade") and trade is not None:
                    payload = trade.trade_event(tick.symbol) if kind == "trade" else trade.agg_event(tick.symbol)
                elif kind == "bookTicker" or base.startswith("depth"):
                    book = book or build_book(self.specs[tick.symbol], tick.price, self.level_quote, tick.sequence)
                    if kind == "bookTicker":
                        payload = book.book_ticker_event()
                    elif base == "depth":
                        payload = book.diff_event(before, tick.market_time)
                    else:
                        payload = book.depth(int(base[len("depth") :]))
                if payload is not None:
                    self._send(name, orjson.dumps(payload))
            if book is not None:
                self._books[tick.symbol] = book

    def _kline_due(self, name: str, tick: Tick) -> bool:
        """A forming kline goes out at most every ``KLINE_EVERY_MS`` of market time per stream."""
        if tick.values.closed or name.endswith("_1s"):
            return True
        if tick.market_time - self._kline_sent.get(name, -KLINE_EVERY_MS) < KLINE_EVERY_MS:
            return False
        self._kline_sent[name] = tick.market_time
        return True

    def _send(self, name: str, raw: bytes) -> None:
        wrapped = b'{"stream":"' + name.encode() + b'","data":' + raw + b"}"
        for client in self.by_stream.get(name, ()):
            client.conn.send(wrapped if client.combined else raw)

    def _publish_arrays(self, ticks: list[Tick]) -> None:
        """``!miniTicker@arr``: one array per market time at which symbols stepped, each symbol's
        latest ticker of that time (at speed 1 every symbol steps once a second, Binance's
        update speed; faster replays send every step, as the per-symbol streams do)."""
        if not any(self.by_stream.get(n) for n in ARRAY_STREAMS):
            return
        groups: dict[int, dict[str, Tick]] = {}
        for tick in ticks:
            groups.setdefault(tick.market_time, {})[tick.symbol] = tick
        for _, latest in sorted(groups.items()):
            raw = orjson.dumps([tick.mini_ticker() for tick in latest.values()])
            for name in ARRAY_STREAMS:
                self._send(name, raw)

    def drop_all(self) -> int:
        """Cut every market-stream connection; returns how many."""
        clients = list(self.clients)
        for client in clients:
            client.conn.abort()
        return len(clients)

    def shutdown_all(self) -> int:
        """Send ``serverShutdown`` (raw or combined form) and close with 1001 Going Away."""
        clients = list(self.clients)
        event = orjson.dumps({"e": "serverShutdown", "E": self.market.clock.now()})
        for client in clients:
            client.conn.send(b'{"stream":"!serverShutdown","data":' + event + b"}" if client.combined else event)
            client.conn.close_after_queue(1001)
        return len(clients)
