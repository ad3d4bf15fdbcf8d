"""Admin and fault-injection endpoints under ``/_sim`` (JSON in and out, no authentication).

Meant for tests and local experiments; docs/exchange_sim.md has the reference with examples.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .faults import REST_PREFIX, Delay, Failure, Throttle
from .rest import json_response
from .walk import wall_ms

if TYPE_CHECKING:
    from .app import Simulator

Body = dict[str, Any]


class BadRequest(ValueError):
    """The admin request body is invalid."""


def _int(body: Body, name: str, default: int | None = None, low: int = 0, high: int = 10**9) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{name} must be an integer in [{low}, {high}]")
    return value


def _prefix(body: Body) -> str:
    value = body.get("path_prefix") or REST_PREFIX
    if not isinstance(value, str) or not value.startswith("/"):
        raise BadRequest("path_prefix must be a path starting with /")
    return value


def register(app: web.Application, sim: Simulator) -> None:
    """Add the ``/_sim`` routes."""
    faults = sim.faults

    def fail(body: Body) -> object:
        faults.failure = Failure(
            _int(body, "count", 1, 1),
            _prefix(body),
            _int(body, "status", 500, 500, 599),
            bool(body.get("execute", False)),
        )
        return faults.describe()

    def throttle(body: Body) -> object:
        status = _int(body, "status", 429, 418, 429)
        if status not in (418, 429):
            raise BadRequest("status must be 429 or 418")
        faults.throttle = Throttle(_int(body, "count", 1, 1), _prefix(body), status, _int(body, "retry_after", 10, 1))
        return faults.describe()

    def timestamp(body: Body) -> object:
        faults.timestamp_errors = _int(body, "count", 1)
        return faults.describe()

    def clock(body: Body) -> object:
        faults.clock_offset_ms = _int(body, "offset_ms", 0, -(10**12), 10**12)
        return faults.describe()

    def delay(body: Body) -> object:
        faults.delay = Delay(
            _int(body, "count", 1, 1), _int(body, "ms", None, 0, 600_000), _prefix(body), bool(body.get("after", False))
        )
        return faults.describe()

    def stall(body: Body) -> object:
        seconds = body.get("seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))):
            raise BadRequest("seconds must be a number or null")
        faults.stall(seconds)
        return faults.describe()

    def reset(body: Body) -> object:
        faults.reset()
        sim.limiter.lift_ban()
        return faults.describe()

    def balances(body: Body) -> object:
        try:
            amounts = {str(k).upper(): Decimal(str(v)) for k, v in body.items()}
        except InvalidOperation:
            raise BadRequest("amounts must be decimal numbers") from None
        if any(not v.is_finite() or v < 0 for v in amounts.values()):
            raise BadRequest("amounts must be non-negative")
        for asset, amount in amounts.items():
            sim.engine.balances.set(asset, amount)
        now = sim.exchange_time()
        sim.engine.update_time = now
        sim.engine.outbox.append(sim.engine.balances.position_event(sorted(amounts), now))
        sim.commit()
        return sim.engine.balances.to_state()

    posts: dict[str, Callable[[Body], object]] = {
        "faults/fail": fail,
        "faults/throttle": throttle,
        "faults/timestamp": timestamp,
        "faults/clock": clock,
        "faults/delay": delay,
        "faults/stall": stall,
        "faults/reset": reset,
        "balances": balances,
        "ws/drop": lambda body: {"market_streams": sim.streams.drop_all(), "ws_api": sim.wsapi.drop_all()},
        "ws/terminate": lambda body: {"subscriptions": sim.wsapi.terminate_all()},
        "ws/shutdown": lambda body: {"market_streams": sim.streams.shutdown_all(), "ws_api": sim.wsapi.shutdown_all()},
    }
    for path, action in posts.items():
        app.router.add_post(f"/_sim/{path}", _endpoint(action))
    app.router.add_get("/_sim/state", lambda request: _state(sim))
    app.router.add_get("/_sim/faults", lambda request: _reply(faults.describe()))


def _endpoint(action: Callable[[Body], object]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            body = await request.json() if request.can_read_body else {}
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            return json_response(action(body))
        except (BadRequest, ValueError) as exc:
            return json_response({"error": str(exc)}, status=400)

    return handle


async def _reply(payload: object) -> web.Response:
    return json_response(payload)


async def _state(sim: Simulator) -> web.Response:
    """Everything a test may want to assert on, in one document."""
    sim.sync_market()
    engine = sim.engine
    return json_response(
        {
            "server_time": sim.server_time(),
            "wall_time": wall_ms(),
            "speed": sim.settings.speed,
            "market": sim.market.snapshot(),
            "balances": engine.balances.to_state(),
            "orders": [o.query() for o in sorted(engine.orders.values(), key=lambda o: o.order_id)],
            "open_order_ids": [o.order_id for o in engine.open_orders()],
            "order_lists": [
                ol.summary(engine.orders) for ol in sorted(engine.lists.values(), key=lambda x: x.order_list_id)
            ],
            "trades": [t.trade_row() for t in engine.trades],
            "requests": dict(sim.requests),
            "client_order_ids": list(engine.received_client_ids),
            "received_wall_ms": dict(sim.received_wall_ms),
            "connections": {
                "market_streams": len(sim.streams.clients),
                "market_streams_total": sim.streams.connections_total,
                "ws_api": len(sim.wsapi.clients),
                "ws_api_total": sim.wsapi.connections_total,
                "user_subscriptions": sum(len(c.subscriptions) for c in sim.wsapi.clients),
                "stream_subscriptions": sorted({n for c in sim.streams.clients for n in c.streams}),
            },
            "faults": sim.faults.describe(),
        }
    )
