"""The REST pipeline: faults, parameters, weight, signature and timing, then the handler.

Handlers live in ``rest_market`` (public) and ``rest_trade`` (signed); each is a plain function
``(sim, params) -> JSON value`` that raises ApiError for Binance error answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from . import auth, errors
from .errors import ApiError
from .params import Params
from .timeunit import to_micros, wants_micros
from .walk import wall_ms

if TYPE_CHECKING:
    from .app import Simulator

Handler = Callable[["Simulator", Params], object]
GONE_BODY = (
    b"<html>\r\n<head><title>410 Gone</title></head>\r\n"
    b"<body>\r\n<center><h1>410 Gone</h1></center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class Route:
    """One ``/api/v3`` endpoint."""

    method: str
    path: str
    handler: Handler
    weight: int | Callable[[Params], int]
    signed: bool = False
    order: bool = False
    order_count: int = 1  # unfilled-order count of one request (an OCO places 2)


def json_response(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, headers=headers, content_type="application/json")


class RestApi:
    """Registers the routes and runs every request through the pipeline."""

    def __init__(self, sim: Simulator, routes: list[Route]) -> None:
        self.sim = sim
        self.routes = routes

    def register(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, "/api/v3/" + route.path, self._bind(route))
        for method in ("POST", "PUT", "DELETE"):
            app.router.add_route(method, "/api/v3/userDataStream", self._gone)

    def _bind(self, route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await self.handle(request, route)

        return handle

    async def _gone(self, request: web.Request) -> web.Response:
        """The listenKey endpoints were removed on 2026-02-20; Binance answers 410 with an nginx page."""
        self.sim.count_request(f"{request.method} {request.path}")
        used = self.sim.limiter.weight.current(wall_ms())
        return web.Response(
            body=GONE_BODY, status=410, content_type="text/html", headers={"X-MBX-USED-WEIGHT-1M": str(used)}
        )

    async def handle(self, request: web.Request, route: Route) -> web.Response:
        sim, faults = self.sim, self.sim.faults
        path = request.path
        sim.count_request(f"{request.method} {path}")
        delay = faults.take_delay(path)
        if delay and not delay.after:
            await asyncio.sleep(delay.ms / 1000)
        throttle = faults.take_throttle(path)
        failure = faults.take_failure(path)
        headers: dict[str, str] = {}
        now = wall_ms()
        try:
            if throttle is not None:
                if throttle.status == 418:
                    raise errors.ip_banned(now + throttle.retry_after * 1000, throttle.retry_after)
                raise errors.too_much_weight(sim.limiter.weight_limit, throttle.retry_after)
            if failure is not None and not failure.execute:
                raise errors.internal_error(failure.status)
            body = await request.text() if request.method != "GET" and request.can_read_body else ""
            raw_query = request.rel_url.raw_query_string
            params = Params.parse(raw_query, body)
            params.micros = wants_micros(request.headers.get("X-MBX-TIME-UNIT"))
            weight = route.weight(params) if callable(route.weight) else route.weight
            sim.limiter.charge(weight, now)
            if route.signed:
                self.authenticate(request.headers.get("X-MBX-APIKEY"), params, raw_query, body)
            if route.order and sim.limiter.orders_full(now):
                raise errors.too_many_orders(sim.limiter.order_limit_10s, sim.limiter.order_retry_after(now))
            payload = route.handler(sim, params)
            if params.micros:
                payload = to_micros(payload)
            status = 200
            if route.order:
                count_10s, count_1d = sim.limiter.record_order(now, route.order_count)
                headers["X-MBX-ORDER-COUNT-10S"] = str(count_10s)
                headers["X-MBX-ORDER-COUNT-1D"] = str(count_1d)
        except ApiError as exc:
            payload, status = exc.body(), exc.status
            headers.update(exc.headers)
            if route.order and exc.data is not None:
                # a cancel-replace whose new order failed or was not attempted still counts it
                count_10s, count_1d = sim.limiter.record_order(now, route.order_count)
                headers["X-MBX-ORDER-COUNT-10S"] = str(count_10s)
                headers["X-MBX-ORDER-COUNT-1D"] = str(count_1d)
        finally:
            sim.commit()
        if failure is not None and failure.execute:
            outcome = errors.unknown_outcome(failure.status)
            payload, status = outcome.body(), outcome.status
            headers.pop("X-MBX-ORDER-COUNT-10S", None)
            headers.pop("X-MBX-ORDER-COUNT-1D", None)
        headers["X-MBX-USED-WEIGHT-1M"] = str(sim.limiter.weight.current(now))
        if delay and delay.after:
            await asyncio.sleep(delay.ms / 1000)
        return json_response(payload, status, headers)

    def authenticate(self, api_key: str | None, params: Params, raw_query: str, body: str) -> None:
        """API key, mandatory parameters, signature over the raw payload, then the time window."""
        settings = self.sim.settings
        auth.check_api_key(api_key, settings.api_key)
        timestamp = auth.timestamp_ms(params)
        signature = params.require("signature")
        window = auth.recv_window(params)
        if not auth.verify(settings.api_secret, auth.rest_payload(raw_query, body), signature):
            raise errors.bad_signature()
        if self.sim.faults.take_timestamp_error():
            raise errors.timestamp_outside_window()
        auth.check_timing(timestamp, window, self.sim.server_time())
