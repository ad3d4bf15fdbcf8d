"""Load shedding over a real uvicorn: 503 + Retry-After past the limits, slots freed by disconnects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.api.admission import Admission
from services.api.config import ApiSettings
from tests.api.conftest import LiveServer
from tests.api.test_api_events import wait_subscribed


async def _pause_redis(redis: Redis, ms: int) -> None:
    # Every api request then waits inside Redis, holding its slot.
    await redis.execute_command("CLIENT", "PAUSE", str(ms), "ALL")


async def test_past_the_concurrency_limit_the_answer_is_503_with_retry_after(
    live_factory: Callable[[ApiSettings], Any], settings_factory: Callable[..., ApiSettings], redis_client: Redis
) -> None:
    live: LiveServer = await live_factory(settings_factory(API_MAX_CONCURRENCY="2"))
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        await live.login(client)
        await _pause_redis(redis_client, 1500)
        held = [asyncio.create_task(client.get("/api/status")) for _ in range(2)]
        await asyncio.sleep(0.3)
        refused = await asyncio.gather(*(client.get("/api/status") for _ in range(5)))
        assert [response.status_code for response in refused] == [503] * 5
        assert all(response.headers["retry-after"] == "1" for response in refused)
        assert all(response.json()["detail"] for response in refused)
        assert [response.status_code for response in await asyncio.gather(*held)] == [200, 200]
        assert (await client.get("/api/status")).status_code == 200


async def test_a_request_whose_client_went_away_frees_its_slot(
    live_factory: Callable[[ApiSettings], Any], settings_factory: Callable[..., ApiSettings], redis_client: Redis
) -> None:
    live: LiveServer = await live_factory(settings_factory(API_MAX_CONCURRENCY="2"))
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        await live.login(client)
        cookies = dict(client.cookies)
    await _pause_redis(redis_client, 3000)
    # Two callers give up while their requests wait on Redis.
    for _ in range(2):
        async with httpx.AsyncClient(base_url=live.url, cookies=cookies) as impatient:
            with pytest.raises(httpx.TimeoutException):
                await impatient.get("/api/status", timeout=0.3)
    await asyncio.sleep(0.2)
    async with httpx.AsyncClient(base_url=live.url, cookies=cookies, timeout=10) as patient:
        # Their slots were freed at once: this one waits for Redis instead of getting 503.
        assert (await patient.get("/api/status")).status_code == 200


async def test_event_clients_are_bounded_and_a_disconnect_is_an_info_line(
    live_factory: Callable[[ApiSettings], Any],
    settings_factory: Callable[..., ApiSettings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    live: LiveServer = await live_factory(settings_factory(SSE_MAX_CLIENTS="2"))
    hub = live.app.state.resources.hub
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        await live.login(client)
        async with client.stream("GET", "/api/events") as first, client.stream("GET", "/api/events") as second:
            assert first.status_code == second.status_code == 200
            await wait_subscribed(live, 2)
            third = await client.get("/api/events")
            assert third.status_code == 503 and third.headers["retry-after"] == "1"
            # Ordinary requests are not counted against the event clients.
            assert (await client.get("/api/status")).status_code == 200
        for _ in range(200):
            if not hub.subscriptions:
                break
            await asyncio.sleep(0.01)
        assert not hub.subscriptions
        async with client.stream("GET", "/api/events") as again:
            assert again.status_code == 200
    await asyncio.sleep(0.2)
    records = [record for record in caplog.records if "event client disconnected" in record.getMessage()]
    assert records and all(record.levelno == logging.INFO for record in records)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR], [
        record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR
    ]


async def test_a_malformed_last_event_id_is_a_400(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        await live.login(client)
        for bad in ("99999999999999999999999-0", "garbage", "1-2@", "-1-0", "1-0@a b", "", "\u0663-0"):
            if bad.isascii() and bad:
                response = await client.get("/api/events", headers={"Last-Event-ID": bad})
                assert response.status_code == 400, (bad, response.status_code)
            response = await client.get("/api/events", params={"last_event_id": bad})
            assert response.status_code == 400
        # The largest ids the format allows still resume (nothing after them: a live stream).
        async with client.stream("GET", "/api/events", headers={"Last-Event-ID": "9" * 19 + "-" + "9" * 19}) as ok:
            assert ok.status_code == 200


async def test_an_empty_header_is_a_fresh_start(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        await live.login(client)
        async with client.stream("GET", "/api/events", headers={"Last-Event-ID": ""}) as fresh:
            assert fresh.status_code == 200
        async with client.stream(
            "GET", "/api/events", params={"last_event_id": "1-0"}, headers={"Last-Event-ID": ""}
        ) as ok:
            assert ok.status_code == 200


async def test_an_event_stream_that_cannot_start_within_its_time_limit_is_a_503_not_a_500() -> None:
    async def slow_stream(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(5)  # a backlog read that takes longer than the stream may last

    admission = Admission(
        slow_stream, stream_path="/api/events", max_body_bytes=1024, max_requests=4, max_streams=4, max_stream_s=0.05
    )
    transport = httpx.ASGITransport(app=admission)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await asyncio.wait_for(client.get("/api/events"), 2)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert admission.streams == 0
