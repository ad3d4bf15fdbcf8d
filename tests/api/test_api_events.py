"""Server-sent events over a real uvicorn: relay, resume without loss or duplicates, slow clients."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
from redis.asyncio import Redis

from services.api import auth
from services.api.config import ApiSettings
from services.api.relay import StreamCursor
from shared import streams
from shared.bus import publish, publish_atomically
from shared.events import BotCommand, BotStateChanged, OrderUpdate, make_event
from tests.api.conftest import LiveServer
from tests.api.helpers import SseReader, decision, kline, log, signal, ticker


async def open_stream(client: httpx.AsyncClient, server: LiveServer, headers: dict[str, str] | None = None) -> Any:
    return client.stream("GET", f"{server.url}/api/events", headers=headers or {}, timeout=httpx.Timeout(10.0))


async def wait_subscribed(server: LiveServer, count: int = 1) -> None:
    hub = server.app.state.resources.hub
    await asyncio.wait_for(hub.ready.wait(), 5)
    for _ in range(500):
        if len(hub.subscriptions) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("client did not subscribe")


async def test_events_published_on_the_bus_reach_the_dashboard(live: LiveServer, redis_client: Redis) -> None:
    async with httpx.AsyncClient() as client:
        await live.login(client)
        async with await open_stream(client, live) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            reader = SseReader(response)
            await wait_subscribed(live)
            await publish(redis_client, streams.LOGS, log("hello"))
            await publish(redis_client, streams.ticker_stream("BTCUSDT"), ticker("BTCUSDT", "101.5"))
            await publish(redis_client, streams.kline_stream("BTCUSDT"), kline("BTCUSDT", 1, "101"))
            await publish(redis_client, streams.SIGNALS, signal("BTCUSDT", 1, "101"))
            await publish(redis_client, streams.DECISIONS, decision("BTCUSDT", 1, "101"))
            await publish(
                redis_client,
                streams.EXECUTOR_EVENTS,
                make_event(
                    OrderUpdate(
                        symbol="BTCUSDT", client_order_id="c1", side="BUY", status="FILLED", quantity=Decimal("0.1")
                    ),
                    "executor",
                ),
            )
            await publish(
                redis_client,
                streams.EXECUTOR_EVENTS,
                make_event(BotStateChanged(state="stopped", reason="by ops"), "executor"),
            )
            received = [await reader.next() for _ in range(7)]
    by_name = {event.event: event for event in received}
    assert by_name["log"].data["message"] == "hello" and by_name["log"].data["service"] == "strategy"
    assert by_name["price"].data == {
        "type": "ticker",
        "symbol": "BTCUSDT",
        "price": "101.5",
        "ts_ms": by_name["price"].data["ts_ms"],
    }
    assert by_name["price"].id is None  # throttled ticks are not resumable
    assert by_name["candle"].data["closed"] is True and by_name["candle"].data["close"] == "101"
    assert by_name["signal"].data["side"] == "BUY" and by_name["decision"].data["indicators"]["rsi"] == 41.0
    assert by_name["orders"].data["client_order_id"] == "c1" and by_name["orders"].data["type"] == "order_update"
    assert by_name["status"].data["type"] == "bot_state" and by_name["status"].data["state"] == "stopped"
    ids = [event.id for event in received if event.id]
    assert len(ids) == 6 and all("@" in event_id for event_id in ids)


async def test_resume_from_last_event_id_without_loss_or_duplicates(live: LiveServer, redis_client: Redis) -> None:
    def batch(tag: str) -> list[tuple[str, Any]]:
        # One transaction: the entries share a millisecond on different streams.
        return [
            (streams.LOGS, log(f"{tag}-log")),
            (streams.SIGNALS, signal("BTCUSDT", 1, "100")),
            (streams.DECISIONS, decision("ETHUSDT", 1, "100")),
            (streams.CONTROL_COMMANDS, make_event(_command(tag), "api")),
        ]

    seen: list[tuple[str, str]] = []
    async with httpx.AsyncClient() as client:
        await live.login(client)
        async with await open_stream(client, live) as response:
            reader = SseReader(response)
            await wait_subscribed(live)
            await publish_atomically(redis_client, batch("a"))
            await publish_atomically(redis_client, batch("b"))
            for _ in range(6):  # stop in the middle of the second millisecond-sharing batch
                event = await reader.next()
                seen.append((event.id, event.event))
        last_id = seen[-1][0]
        await publish_atomically(redis_client, batch("c"))
        await publish(redis_client, streams.LOGS, log("d-log"))

        async with await open_stream(client, live, {"Last-Event-ID": last_id}) as response:
            reader = SseReader(response)
            resumed = [await reader.next() for _ in range(7)]
            await publish(redis_client, streams.LOGS, log("e-log"))
            live_event = await reader.next()
            # Nothing more: no duplicate of anything already sent.
            await publish(redis_client, streams.LOGS, log("f-log"))
            assert (await reader.next()).data["message"] == "f-log"
    delivered = [event_id for event_id, _ in seen] + [event.id for event in resumed] + [live_event.id]
    positions = [StreamCursor.parse(event_id) for event_id in delivered]
    assert positions == sorted(positions) and len(set(delivered)) == 14
    published = {
        f"{entry_id}@{name}"
        for name in (streams.LOGS, streams.SIGNALS, streams.DECISIONS, streams.CONTROL_COMMANDS)
        for entry_id, fields in await redis_client.xrange(name)
        if "f-log" not in fields.get("message", "")
    }
    assert set(delivered) == published
    assert [event.data.get("message") for event in resumed if event.event == "log"] == ["c-log", "d-log"]
    assert live_event.data["message"] == "e-log"


async def test_a_plain_entry_id_also_resumes(live: LiveServer, redis_client: Redis) -> None:
    first = await publish(redis_client, streams.LOGS, log("one"))
    await publish(redis_client, streams.LOGS, log("two"))
    async with httpx.AsyncClient() as client:
        await live.login(client)
        async with client.stream("GET", f"{live.url}/api/events", params={"last_event_id": first}) as response:
            event = await SseReader(response).next()
    assert event.data["message"] == "two"


async def test_too_long_an_absence_asks_the_dashboard_to_reload(
    live_factory: Callable[[ApiSettings], Any], settings_factory: Callable[..., ApiSettings], redis_client: Redis
) -> None:
    server = await live_factory(settings_factory(SSE_BACKLOG_LIMIT="3"))
    first = await publish(redis_client, streams.LOGS, log("start"))
    for index in range(5):
        await publish(redis_client, streams.LOGS, log(f"missed {index}"))
    async with httpx.AsyncClient() as client:
        await server.login(client)
        async with await open_stream(client, server, {"Last-Event-ID": f"{first}@{streams.LOGS}"}) as response:
            reader = SseReader(response)
            assert (await reader.next()).event == "reset"
            await wait_subscribed(server)
            await publish(redis_client, streams.LOGS, log("after"))
            assert (await reader.next()).data["message"] == "after"


async def test_price_ticks_are_throttled_keeping_the_newest(
    live_factory: Callable[[ApiSettings], Any], settings_factory: Callable[..., ApiSettings], redis_client: Redis
) -> None:
    server = await live_factory(settings_factory(SSE_PRICE_INTERVAL_MS="400"))
    async with httpx.AsyncClient() as client:
        await server.login(client)
        async with await open_stream(client, server) as response:
            reader = SseReader(response)
            await wait_subscribed(server)
            for index in range(20):
                await publish(redis_client, streams.ticker_stream("BTCUSDT"), ticker("BTCUSDT", str(100 + index)))
            await publish(redis_client, streams.ticker_stream("ETHUSDT"), ticker("ETHUSDT", "5"))
            prices = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 1.5
            while loop.time() < deadline:
                try:
                    event = await reader.next(timeout=deadline - loop.time())
                except TimeoutError:
                    break
                prices.append((event.data["symbol"], event.data["price"]))
    btc = [price for symbol, price in prices if symbol == "BTCUSDT"]
    assert 1 <= len(btc) <= 3 and btc[-1] == "119"
    assert ("ETHUSDT", "5") in prices


async def test_a_slow_client_is_dropped_while_another_keeps_receiving(
    live_factory: Callable[[ApiSettings], Any], settings_factory: Callable[..., ApiSettings], redis_client: Redis
) -> None:
    server = await live_factory(settings_factory(SSE_QUEUE_SIZE="8"))
    hub = server.app.state.resources.hub
    async with httpx.AsyncClient() as client:
        await server.login(client)
        token = client.cookies[auth.COOKIE_NAME]
        slow = await _never_reading_client(server.port, token)
        async with await open_stream(client, server) as response:
            reader = SseReader(response)
            await wait_subscribed(server, count=2)
            total, filler = 400, "x" * 8000
            received = 0
            for start in range(0, total, 5):
                await publish_atomically(
                    redis_client, [(streams.LOGS, log(f"{i} {filler}")) for i in range(start, start + 5)]
                )
                while received < start + 5:
                    event = await reader.next()
                    assert event.data["message"].startswith(f"{received} ")
                    received += 1
            assert received == total
            assert hub.dropped_count == 1 and len(hub.subscriptions) == 1
            # The slow client's response was ended: reading it now reaches the end of the stream.
            assert await _read_to_end(slow, timeout=5) > 0
            await publish(redis_client, streams.LOGS, log("still here"))
            assert (await reader.next()).data["message"] == "still here"


async def _never_reading_client(port: int, token: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    request = (
        f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
        f"Cookie: {auth.COOKIE_NAME}={token}\r\n\r\n"
    )
    await asyncio.get_running_loop().sock_sendall(sock, request.encode())
    return sock


async def _read_to_end(sock: socket.socket, timeout: float) -> int:
    loop = asyncio.get_running_loop()
    total = 0
    try:
        async with asyncio.timeout(timeout):
            while chunk := await loop.sock_recv(sock, 65536):
                total += len(chunk)
    finally:
        sock.close()
    return total


def _command(tag: str) -> BotCommand:
    return BotCommand(command="start", requested_by=tag)


async def test_feed_position_lets_a_page_load_its_snapshot_without_missing_events(
    live: LiveServer, redis_client: Redis
) -> None:
    async with httpx.AsyncClient() as client:
        await live.login(client)
        empty = await client.get(f"{live.url}/api/events/position")
        assert empty.status_code == 200 and empty.json() == {"last_event_id": "0-0"}
        await publish(redis_client, streams.LOGS, log("before the snapshot"))
        position = (await client.get(f"{live.url}/api/events/position")).json()["last_event_id"]
        assert position.endswith(f"@{streams.LOGS}")
        # Published while the page loads its panels, before its feed is open.
        await publish(redis_client, streams.LOGS, log("while loading"))
        await publish(
            redis_client, streams.EXECUTOR_EVENTS, make_event(BotStateChanged(state="stopped", reason="x"), "executor")
        )
        async with await open_stream(client, live, {"Last-Event-ID": position}) as response:
            reader = SseReader(response)
            received = {event.event: event.data for event in [await reader.next(), await reader.next()]}
    # (Within one millisecond the feed orders entries by stream name, not by arrival.)
    assert received["log"]["message"] == "while loading"
    assert received["status"]["state"] == "stopped"


async def test_feed_position_needs_a_session(live: LiveServer) -> None:
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{live.url}/api/events/position")).status_code == 401
