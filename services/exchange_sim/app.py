"""Wiring: loads the data, builds market, engine and servers, runs the replay timer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter

from aiohttp import web

from . import admin, state
from .account import Balances, Fees
from .book import Book, build_book
from .candles import DataError, Series
from .config import ConfigError, SimSettings
from .faults import Faults
from .market import Market
from .matching import Engine
from .ratelimit import RateLimiter
from .rest import RestApi
from .rest_lists import ROUTES as LIST_ROUTES
from .rest_market import ROUTES as MARKET_ROUTES
from .rest_replace import ROUTES as REPLACE_ROUTES
from .rest_trade import ROUTES as TRADE_ROUTES
from .scale import scale_series
from .streams import StreamHub
from .symbols import make_spec
from .walk import MarketClock, wall_ms
from .wsapi import WsApi

log = logging.getLogger("exchange_sim")
MAX_SLEEP_S = 0.5


def load_series(settings: SimSettings) -> list[Series]:
    """Read every CSV of ``EXCHANGE_SIM_DATA``; errors name the variable."""
    series: list[Series] = []
    try:
        for path in settings.data_paths:
            one = Series(path)
            if any(s.symbol == one.symbol for s in series):
                raise DataError(f"{path.name}: symbol {one.symbol} is already loaded from another file")
            series.append(one)
    except (DataError, OSError, ValueError) as exc:
        raise ConfigError(f"EXCHANGE_SIM_DATA: {exc}") from None
    return scale_series(series, settings.scale_symbols)


class Simulator:
    """The whole simulated exchange; one instance per process."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        series = load_series(settings)
        try:
            self.specs = {s.symbol: make_spec(s.symbol, s.price_decimals, s.first_price) for s in series}
        except ValueError as exc:
            raise ConfigError(f"EXCHANGE_SIM_DATA: {exc}") from None
        self.assets = sorted({a for spec in self.specs.values() for a in (spec.base, spec.quote)})
        saved = state.load(settings.state_file) if settings.state_file else None
        anchor, start = wall_ms(), settings.start_ms
        if saved and saved.get("fingerprint") == state.fingerprint(settings):
            anchor, start = int(saved["anchor_ms"]), saved.get("start_ms", start)
        self.clock = MarketClock(settings.speed, anchor, start_ms=start)
        self.market = Market(
            series, {s: spec.tick_size for s, spec in self.specs.items()}, self.clock, settings.history
        )
        self.engine = Engine(
            self.specs,
            Balances(settings.starting_balances),
            settings.market_depth_quote,
            settings.slippage_bps,
            settings.seed,
            Fees(settings.maker_commission, settings.taker_commission),
            settings.maker_fill_quote,
        )
        if saved:
            self.engine.load_state(saved["engine"])
            log.info("state restored from %s (%d orders)", settings.state_file, len(self.engine.orders))
        self.limiter = RateLimiter(settings.weight_limit, settings.order_limit_10s)
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        # Wall-clock receipt of each client order id, for the admin state only: latency is
        # measured in real time, while the orders' own stamps are the replay's market time.
        self.received_wall_ms: dict[str, int] = {}
        self.streams = StreamHub(self.market, self.faults, settings.ping_interval, self.specs, self.engine.level_quote)
        self.wsapi = WsApi(self)
        self._tasks: list[asyncio.Task[None]] = []
        self.save()

    def server_time(self) -> int:
        """Binance ``serverTime``: the wall clock plus the injected offset (never replay time).

        It stays wall time because it is what signed requests are checked against: a client's
        ``timestamp`` comes from its own wall clock, and the ``recvWindow`` check bounds how long
        a request can wait before it executes, in real seconds, whatever the replay speed."""
        return wall_ms() + self.faults.clock_offset_ms

    def exchange_time(self) -> int:
        """The time the engine stamps on what it does (order, fill, list and account times, the
        ``E``/``T``/``O``/``W`` of account events): the replay's market time, the walk brought up
        to now first. Live Binance stamps them with its own clock, which live is market time, so
        a client compares fill times with price and candle times the same way on both."""
        self.sync_market()
        return self.market.walked_ms

    def book(self, symbol: str) -> Book:
        """The synthetic book of ``symbol`` around its walk price now."""
        return build_book(
            self.specs[symbol], self.market.price(symbol), self.engine.level_quote, self.market.replays[symbol].sequence
        )

    def count_request(self, key: str) -> None:
        self.requests[key] += 1

    def sync_market(self) -> None:
        """Walk the market up to now: resting orders fill, streams get every step."""
        ticks = self.market.advance()
        if not ticks:
            return
        for tick in ticks:
            # a resting order fills at its step: stamped with the step's market time
            self.engine.on_price(tick.symbol, tick.price, tick.market_time)
        self.streams.publish(ticks)
        self.commit()

    def commit(self) -> None:
        """Deliver queued account events and persist the account if it changed."""
        traded = self.engine.take_first_fills()
        if traded:
            # After the request's own order was counted (``rest``): a MARKET order that fills
            # adds one and takes it off again. Rate limits count real seconds.
            self.limiter.orders_traded(traded, wall_ms())
        events = self.engine.drain()
        if events:
            self.wsapi.broadcast(events)
            self.save()

    def save(self) -> None:
        if self.settings.state_file is None:
            return
        state.save(
            self.settings.state_file,
            {
                "fingerprint": state.fingerprint(self.settings),
                "anchor_ms": self.clock.anchor_ms,
                "start_ms": self.clock.start_ms,
                "engine": self.engine.to_state(),
            },
        )

    async def market_loop(self) -> None:
        """Sleep until the next walk step of any symbol, then emit it."""
        while True:
            self.sync_market()
            due = self.market.next_due()
            delay = MAX_SLEEP_S if due is None else self.clock.wall_seconds_until(due)
            await asyncio.sleep(min(MAX_SLEEP_S, max(0.0005, delay)))

    def build_app(self) -> web.Application:
        """The aiohttp application with every route on one port."""
        app = web.Application()
        RestApi(self, MARKET_ROUTES + TRADE_ROUTES + LIST_ROUTES + REPLACE_ROUTES).register(app)
        app.router.add_get("/ws", self.streams.handle_raw)
        app.router.add_get("/ws/{name:.*}", self.streams.handle_raw)
        app.router.add_get("/stream", self.streams.handle_combined)
        app.router.add_get("/ws-api/v3", self.wsapi.handle)
        admin.register(app, self)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._close_sockets)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app: web.Application) -> None:
        self._tasks = [asyncio.create_task(self.market_loop())]

    async def _close_sockets(self, app: web.Application) -> None:
        sockets = [c.conn.ws for c in self.streams.clients] + [c.conn.ws for c in self.wsapi.clients]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*(ws.close(code=1001) for ws in sockets), return_exceptions=True), timeout=2
            )

    async def _stop(self, app: web.Application) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.save()


async def serve(sim: Simulator) -> None:
    """Run until SIGTERM or SIGINT, then shut down cleanly (state saved)."""
    settings = sim.settings
    runner = web.AppRunner(sim.build_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else settings.port
    log.info(
        "serving %s at speed %s on http://%s:%d (REST /api/v3, streams /ws /stream, ws-api /ws-api/v3, admin /_sim)",
        ", ".join(sim.specs),
        settings.speed,
        settings.host,
        port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
