"""Commands reach the bot state, the control stream, or the symbol's executor inbox."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from shared import streams
from shared.codec import decode, loads


async def test_start_stop_pause_set_the_state_and_append_a_command(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    for path, command, state in [
        ("/api/bot/stop", "stop", "stopped"),
        ("/api/bot/pause-entries", "pause_entries", "entries_paused"),
        ("/api/bot/start", "start", "running"),
    ]:
        response = await client.post(path)
        assert response.status_code == 202, response.text
        assert response.json()["state"] == state
        assert loads(await redis_client.get(streams.BOT_STATE))["state"] == state
        _, fields = (await redis_client.xrevrange(streams.CONTROL_COMMANDS, count=1))[0]
        event = decode(fields)
        assert event.payload.command == command and event.payload.requested_by == "owner@10.0.0.2"
    assert (await client.get("/api/status")).json()["bot"]["state"] == "running"


async def test_close_position_goes_to_the_symbols_command_stream_only(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    response = await client.post("/api/positions/ETHUSDT/close")
    assert response.status_code == 202 and response.json()["symbol"] == "ETHUSDT"
    entries = await redis_client.xrange(streams.symbol_commands("ETHUSDT"))
    assert len(entries) == 1
    event = decode(entries[0][1])
    assert event.payload.command == "close_position" and event.payload.symbol == "ETHUSDT"
    assert await redis_client.xlen(streams.CONTROL_COMMANDS) == 0
    assert not await redis_client.exists(streams.symbol_commands("BTCUSDT"), streams.executor_inbox("ETHUSDT"))


async def test_close_position_refuses_symbols_not_traded(client: httpx.AsyncClient, redis_client: Redis) -> None:
    assert (await client.post("/api/positions/DOGEUSDT/close")).status_code == 404
    assert (await client.post("/api/positions/BTC$USDT/close")).status_code in (404, 422)
    assert not [key async for key in redis_client.scan_iter(match="executor:inbox:*")]
