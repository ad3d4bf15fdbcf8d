"""``GET /api/status`` for a session cookie (``services.api.status_fast``) against the route itself.

The cookie's answer comes from the fast path, a bearer token's from the route: both must be
the same document, as fresh as the keys in Redis at the moment of the request, and every
answer but a valid session's (401, an ended session, a Redis error) must be the route's.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from shared import streams
from shared.bus import publish
from shared.codec import dumps
from shared.events import MarketStatus, make_event, now_ms
from tests.api.helpers import signal

WALL_CLOCK = ("server_time_ms",)


def without_wall_clock(body: dict[str, Any]) -> dict[str, Any]:
    """The status without the fields that change with the wall clock between two requests."""
    markets = [{**market, "price_age_ms": None} for market in body["markets"]]
    return {
        **{key: value for key, value in body.items() if key not in WALL_CLOCK},
        "markets": markets,
        "market": {**body["market"], "wall_ms": None},
    }


async def bearer(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    created = await client.post("/api/tokens", json={"name": "script", "role": "viewer"})
    assert created.status_code == 201, created.text
    transport = httpx.ASGITransport(app=app, client=("10.0.0.4", 50000))
    headers = {"Authorization": f"Bearer {created.json()['secret']}"}
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


async def test_a_session_cookie_gets_the_routes_document_as_fresh_as_redis(
    app: FastAPI, client: httpx.AsyncClient, redis_client: Redis
) -> None:
    now = now_ms()
    script = await bearer(app, client)
    try:
        first = await client.get("/api/status")
        assert first.status_code == 200 and first.headers["content-type"] == "application/json"
        assert first.headers["x-content-type-options"] == "nosniff"  # inside the security headers
        assert without_wall_clock(first.json()) == without_wall_clock((await script.get("/api/status")).json())

        # Written by the services a moment before the request: in the very next answer.
        await redis_client.hset(streams.MARKET_LAST_PRICE, "BTCUSDT", "101000")
        await redis_client.hset(streams.MARKET_FRESHNESS, "BTCUSDT", str(now - 2000))
        await redis_client.hset(
            streams.POSITIONS,
            "BTCUSDT",
            dumps({"symbol": "BTCUSDT", "status": "OPEN", "entry_price": "100000", "quantity": "0.01"}),
        )
        await redis_client.hset(streams.ACCOUNT_SNAPSHOT, "USDT", dumps({"free": "9000", "locked": "0"}))
        await publish(redis_client, streams.SIGNALS, signal("BTCUSDT", 3, "100000"))
        await publish(redis_client, streams.MARKET_STATUS, make_event(MarketStatus(state="connected"), "market_data"))
        fresh = (await client.get("/api/status")).json()
        btc = fresh["markets"][0]
        assert btc["price"] == "101000" and 2000 <= btc["price_age_ms"] < 60_000
        assert btc["position"]["unrealised_pct"] == "1.00" and btc["position"]["unrealised_quote"] == "10.00"
        assert btc["last_signal"]["side"] == "BUY" and fresh["market_status"]["state"] == "connected"
        assert fresh["balances"]["USDT"] == {"free": "9000", "locked": "0"}
        assert without_wall_clock(fresh) == without_wall_clock((await script.get("/api/status")).json())
    finally:
        await script.aclose()


async def test_an_ended_session_or_none_gets_the_routes_401(anon: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/status")).status_code == 200
    cookie = client.cookies.get("bot_session")
    assert (await client.post("/api/logout")).status_code in (200, 204)
    anon.cookies.set("bot_session", cookie or "")
    ended = await anon.get("/api/status")
    assert ended.status_code == 401 and ended.json() == {"detail": "sign in first"}
    anon.cookies.clear()
    anon.cookies.set("bot_session", "x" * 101)
    assert (await anon.get("/api/status")).status_code == 401
    anon.cookies.clear()
    assert (await anon.get("/api/status")).status_code == 401


async def test_a_redis_error_is_the_routes_503_and_the_next_request_is_answered(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    assert (await client.get("/api/status")).status_code == 200
    # A key of the wrong type: Redis answers that command with an error, in the middle of the
    # replies. The connection it came on must not be reused with replies left unread on it.
    await redis_client.delete(streams.MARKET_LAST_PRICE)
    await redis_client.set(streams.MARKET_LAST_PRICE, "not a hash")
    failed = await client.get("/api/status")
    assert failed.status_code == 503 and failed.headers["retry-after"] == "1"
    await redis_client.delete(streams.MARKET_LAST_PRICE)
    await redis_client.hset(streams.MARKET_LAST_PRICE, "BTCUSDT", "99000")
    for _ in range(5):  # every pooled connection answers its own request
        body = (await client.get("/api/status")).json()
        assert body["markets"][0]["price"] == "99000" and body["bot"]["state"] == "unknown"
