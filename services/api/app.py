"""The FastAPI application: a relay between the dashboard and the services' Redis bus.

It holds no trading logic: it reads state and streams from Redis and the ledger, and writes
only parameter changes and commands (through ``shared.control``), and, in the database, only
its own tables of accounts and API tokens (``shared.accounts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from redis.asyncio import Redis
from starlette.routing import Match, Mount
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.api import auth
from services.api.admission import Admission
from services.api.backtests import BacktestRunner
from services.api.candle_store import CandleStore
from services.api.config import ApiSettings
from services.api.deps import Resources
from services.api.docs import install_docs
from services.api.errors import install_error_handlers
from services.api.event_view import EventView
from services.api.hub import Hub
from services.api.ledger_view import LedgerView, Precisions
from services.api.live_state import LiveState
from services.api.middleware import DroppableStream, SecurityHeaders, install_log_filter
from services.api.openapi import install_openapi
from services.api.relay import relayed_streams
from services.api.routes import ROUTERS
from services.api.status_fast import StatusFastPath
from services.api.study_runs import StudyRunner
from shared.account_cache import AccessCache
from shared.redis_conn import connect_redis, with_redis_retries
from shared.store.database import migrate_with_retries, open_engine

logger = logging.getLogger(__name__)
EVENTS_PATH = "/api/events"


class FrontendMount(Mount):
    """The dashboard's files at ``/``, leaving every ``/api`` path to the router (404, 405)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if path == "/api" or path.startswith("/api/"):
            return Match.NONE, {}
        return super().matches(scope)


def keep_out_of_full_collections() -> None:
    """Exempt every object alive now (modules, the app, state loaded at start) from the cyclic
    garbage collector's full passes: there are some 200,000 of them, and a full pass over them
    stops every request for 100-250 ms on a 2-core machine, which was most of the api's p99."""
    gc.collect()
    gc.freeze()


def create_app(settings: ApiSettings) -> FastAPI:
    """Build the app; its lifespan opens Redis, the ledger engine and the one relay task."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The accounts and tokens tables are the api's: it brings the schema up to date itself
        # (idempotent; the executor does the same), so it can start before the executor.
        await migrate_with_retries(settings.database_url)
        redis: Redis = await connect_redis(settings.redis_url)
        engine = open_engine(settings.database_url)
        hub = Hub(
            redis,
            relayed_streams(settings.symbols),
            queue_size=settings.sse_queue_size,
            backlog_limit=settings.sse_backlog_limit,
            throttle_s=settings.sse_price_interval_ms / 1000,
        )
        backtests = BacktestRunner(settings)
        study_runs = StudyRunner(settings)
        await with_redis_retries(lambda: auth.ensure_password(redis, settings), "dashboard password")
        live = LiveState()
        ledger = LedgerView(redis, engine, settings, Precisions(redis, settings.symbols))
        await with_redis_retries(lambda: live.seed(redis), "live state")
        await with_redis_retries(ledger.precisions.refresh, "symbol precisions")
        chart = CandleStore(redis, settings.symbols, settings.timeframe)
        hub.observers += [live.observe, chart.observe, ledger.observe]
        view = EventView(redis, ledger)
        hub.format, hub.transform = view.format, view.transform
        relay_task = asyncio.create_task(hub.run(), name="event-relay")
        app.state.resources = Resources(
            settings=settings,
            redis=redis,
            engine=engine,
            hub=hub,
            backtests=backtests,
            study_runs=study_runs,
            ledger=ledger,
            live=live,
            candles=chart,
            access=AccessCache(engine),
        )
        keep_out_of_full_collections()
        logger.info("api ready env=%s symbols=%s", settings.binance_env, ",".join(settings.symbols))
        try:
            yield
        finally:
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
            await backtests.close()
            await study_runs.close()
            app.state.resources.access.close()
            await engine.dispose()
            await redis.aclose()
            del app.state.resources

    app = FastAPI(
        title="Trading bot dashboard API",
        version="1",
        docs_url=None,  # served by ``install_docs`` with local files
        redoc_url=None,
        openapi_url="/api/openapi.json",
        swagger_ui_oauth2_redirect_url=None,
        lifespan=lifespan,
    )
    for router in ROUTERS:
        app.include_router(router)
    install_docs(app, app.openapi_url or "/api/openapi.json")

    if settings.frontend_dir.is_dir():
        app.router.routes.append(
            FrontendMount("/", StaticFiles(directory=settings.frontend_dir, html=True), name="frontend")
        )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(StatusFastPath)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Content-Type", "Last-Event-ID", "Authorization"],
        )
    app.add_middleware(DroppableStream, path=EVENTS_PATH)
    app.add_middleware(
        Admission,
        stream_path=EVENTS_PATH,
        max_body_bytes=settings.max_body_bytes,
        max_requests=settings.max_concurrency,
        max_streams=settings.sse_max_clients,
        max_stream_s=settings.sse_max_stream_s,
        trusted_origins=settings.cors_origins,
    )
    app.add_middleware(SecurityHeaders)
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    install_log_filter()
    return app
