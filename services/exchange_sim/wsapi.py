"""The WebSocket API at ``/ws-api/v3``: ping, time, session methods and the user data stream.

User data arrives as ``{"subscriptionId": N, "event": {...}}`` frames on every connection that
subscribed with ``userDataStream.subscribe.signature`` (HMAC over the sorted parameters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from . import auth, errors
from .errors import ApiError
from .params import Params
from .walk import wall_ms
from .wsconn import Connection, open_socket

if TYPE_CHECKING:
    from .app import Simulator

WEIGHTS = {
    "ping": 1,
    "time": 1,
    "session.status": 2,
    "session.subscriptions": 2,
    "userDataStream.subscribe.signature": 2,
    "userDataStream.unsubscribe": 2,
}


class ApiClient:
    """One ws-api connection and its user-data subscriptions."""

    def __init__(self, conn: Connection, return_rate_limits: bool) -> None:
        self.conn = conn
        self.return_rate_limits = return_rate_limits
        self.subscriptions: list[int] = []
        self.next_subscription = 0


class WsApi:
    """All ws-api connections; ``broadcast`` delivers account events to every subscription."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.clients: set[ApiClient] = set()
        self.connections_total = 0

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = await open_socket(request)
        self.sim.count_request("WS /ws-api/v3")
        self.sim.limiter.weight.add(2, wall_ms())  # connecting costs 2 weight
        keep_limits = request.query.get("returnRateLimits", "true").lower() != "false"
        client = ApiClient(Connection(request, ws, self.sim.settings.ping_interval), keep_limits)
        self.clients.add(client)
        self.connections_total += 1

        async def on_text(text: str) -> None:
            self._request(client, text)

        try:
            await client.conn.serve(on_text)
        finally:
            self.clients.discard(client)
        return ws

    def _request(self, client: ApiClient, text: str) -> None:
        request_id: object = None
        show_limits = client.return_rate_limits
        try:
            try:
                request = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise ApiError(-1135, "Invalid JSON Request") from None
            if not isinstance(request, dict):
                raise ApiError(-1135, "Invalid JSON Request")
            request_id = request.get("id")
            method = str(request.get("method") or "").removeprefix("v3/")
            raw_params = request.get("params") or {}
            if not isinstance(raw_params, dict):
                raise ApiError(-1135, "Invalid 'params' in JSON request; expected an object.")
            if "returnRateLimits" in raw_params:
                show_limits = raw_params.pop("returnRateLimits") is not False
            self.sim.count_request(f"WS {method}")
            now = wall_ms()
            self.sim.limiter.charge(WEIGHTS.get(method, 1), now)
            result = self._dispatch(client, method, raw_params)
            body: dict[str, object] = {"id": request_id, "status": 200, "result": result}
        except ApiError as exc:
            error: dict[str, object] = exc.body()
            if exc.status in (418, 429):
                retry_at = wall_ms() + 1000 * int(exc.headers.get("Retry-After", "1"))
                if exc.status == 418 and self.sim.limiter.banned_until:
                    retry_at = self.sim.limiter.banned_until
                error["data"] = {"serverTime": self.sim.server_time(), "retryAfter": retry_at}
            body = {"id": request_id, "status": exc.status, "error": error}
        if show_limits:
            body["rateLimits"] = self.sim.limiter.weight_status(wall_ms())
        client.conn.send(orjson.dumps(body))

    def _dispatch(self, client: ApiClient, method: str, params: dict[str, object]) -> object:
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.sim.server_time()}
        if method == "session.status":
            return {
                "apiKey": None,
                "authorizedSince": None,
                "connectedSince": client.conn.connected_since,
                "returnRateLimits": client.return_rate_limits,
                "serverTime": self.sim.server_time(),
                "userDataStream": bool(client.subscriptions),
            }
        if method == "session.subscriptions":
            return [{"subscriptionId": s} for s in client.subscriptions]
        if method == "userDataStream.subscribe.signature":
            return self._subscribe(client, params)
        if method == "userDataStream.unsubscribe":
            wanted = params.get("subscriptionId")
            for sub in [s for s in client.subscriptions if wanted is None or str(s) == str(wanted)]:
                self._terminate(client, sub)
            return {}
        raise errors.unsupported()

    def _subscribe(self, client: ApiClient, params: dict[str, object]) -> object:
        """``userDataStream.subscribe.signature``: key, timing and signature as for REST."""
        settings, view = self.sim.settings, Params.from_mapping(params)
        api_key = view.require("apiKey")
        timestamp = auth.timestamp_ms(view)
        signature = view.require("signature")
        window = auth.recv_window(view)
        auth.check_api_key(api_key, settings.api_key)
        if not any(
            auth.verify(settings.api_secret, auth.ws_payload(params, encode), signature) for encode in (False, True)
        ):
            raise errors.bad_signature()
        if self.sim.faults.take_timestamp_error():
            raise errors.timestamp_outside_window()
        auth.check_timing(timestamp, window, self.sim.server_time())
        if client.subscriptions:
            raise ApiError(-2035, "User Data Stream subscription already active.")
        subscription = client.next_subscription
        client.next_subscription += 1
        client.subscriptions.append(subscription)
        return {"subscriptionId": subscription}

    def _terminate(self, client: ApiClient, subscription: int) -> None:
        client.subscriptions.remove(subscription)
        event = {"e": "eventStreamTerminated", "E": self.sim.market.walked_ms}
        client.conn.send(orjson.dumps({"subscriptionId": subscription, "event": event}))

    def broadcast(self, events: list[dict[str, object]]) -> None:
        """Deliver account events to every active subscription, in order."""
        for client in self.clients:
            for subscription in client.subscriptions:
                for event in events:
                    client.conn.send(orjson.dumps({"subscriptionId": subscription, "event": event}))

    def terminate_all(self) -> int:
        """End every user-data subscription with ``eventStreamTerminated``; returns how many."""
        count = 0
        for client in self.clients:
            for subscription in list(client.subscriptions):
                self._terminate(client, subscription)
                count += 1
        return count

    def drop_all(self) -> int:
        clients = list(self.clients)
        for client in clients:
            client.conn.abort()
        return len(clients)

    def shutdown_all(self) -> int:
        """Send the ws-api ``serverShutdown`` event and close with 1001."""
        clients = list(self.clients)
        event = orjson.dumps({"event": {"e": "serverShutdown", "E": self.sim.market.walked_ms}})
        for client in clients:
            client.conn.send(event)
            client.conn.close_after_queue(1001)
        return len(clients)
