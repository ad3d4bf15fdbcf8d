"""Trust boundaries of the api: same origin, body limit, sign-in throttle, sessions, CORS, 422s, 405s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from redis.asyncio import Redis

from services.api import auth, throttle
from services.api.app import create_app
from services.api.config import ApiSettings
from shared import streams
from tests.api.conftest import LiveServer
from tests.api.helpers import PASSWORD


def _client(app: FastAPI, ip: str, base: str = "http://127.0.0.1:8000") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url=base)


@asynccontextmanager
async def _signed_in(app: FastAPI, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app, ip) as client:
        assert (await client.post("/api/login", json={"password": PASSWORD})).status_code == 200
        yield client


async def test_a_post_from_another_origin_of_the_same_host_is_refused(app: FastAPI, redis_client: Redis) -> None:
    async with _signed_in(app, "127.0.0.1") as client:
        before = await redis_client.xlen(streams.CONTROL_COMMANDS)
        forged = [
            {"Origin": "http://127.0.0.1:8001"},
            {"Origin": "http://127.0.0.1:8001", "Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Origin": "null"},
        ]
        for headers in forged:
            response = await client.post("/api/bot/stop", headers=headers)
            assert response.status_code == 403, (headers, response.status_code)
            assert "cross-origin" in response.json()["detail"]
        response = await client.put("/api/parameters", json={"EMA_SHORT_PERIOD": 8}, headers=forged[0])
        assert response.status_code == 403
        assert await redis_client.xlen(streams.CONTROL_COMMANDS) == before
        # The dashboard's own page (same origin), and clients that are not browsers, pass.
        same = await client.post(
            "/api/bot/stop", headers={"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}
        )
        assert same.status_code == 202
        assert (await client.post("/api/bot/start")).status_code == 202
        assert await redis_client.xlen(streams.CONTROL_COMMANDS) == before + 2
        # Reading stays possible from anywhere (CORS decides what a page may see).
        assert (await client.get("/api/status", headers={"Origin": "http://127.0.0.1:8001"})).status_code == 200


async def test_a_forged_origin_cannot_sign_in_either(app: FastAPI) -> None:
    async with _client(app, "127.0.0.1") as client:
        response = await client.post(
            "/api/login", json={"password": PASSWORD}, headers={"Origin": "http://localhost:9999"}
        )
        assert response.status_code == 403 and auth.COOKIE_NAME not in response.cookies


async def test_a_configured_cors_origin_may_post(settings_factory: Callable[..., ApiSettings]) -> None:
    app = create_app(settings_factory(API_CORS_ORIGINS="https://desk.example"))
    async with app.router.lifespan_context(app):
        async with _signed_in(app, "10.0.0.3") as client:
            ok = await client.post(
                "/api/bot/stop", headers={"Origin": "https://desk.example", "Sec-Fetch-Site": "cross-site"}
            )
            refused = await client.post("/api/bot/stop", headers={"Origin": "https://other.example"})
    assert ok.status_code == 202 and refused.status_code == 403


def test_cors_wildcard_is_refused_at_start_naming_the_variable(settings_factory: Callable[..., ApiSettings]) -> None:
    from shared.settings import format_settings_error

    with pytest.raises(ValidationError) as raised:
        settings_factory(API_CORS_ORIGINS="https://desk.example,*")
    text = format_settings_error(raised.value)
    assert "API_CORS_ORIGINS" in text and "credentials" in text


async def _raw_request(server: LiveServer, head: str, chunks: int = 0, cookie: str = "") -> tuple[int, int]:
    """Send a request head (and up to ``chunks`` chunks of 16 KB) until the server answers.

    Returns the status and how many body bytes were sent before the answer came.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    extra = f"Cookie: {auth.COOKIE_NAME}={cookie}\r\n" if cookie else ""
    writer.write((head + extra + "\r\n").encode())
    sent = 0
    answer = asyncio.create_task(reader.readline())
    try:
        for _ in range(chunks):
            if answer.done():
                break
            writer.write(b"4000\r\n" + b"x" * 0x4000 + b"\r\n")
            sent += 0x4000
            try:
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(0.001)
        status_line = await asyncio.wait_for(answer, 5)
    finally:
        writer.close()
    return int(status_line.split()[1]), sent


async def test_a_10_mb_body_is_refused_with_413_before_it_is_read(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as client:
        await live.login(client)
        cookie = client.cookies[auth.COOKIE_NAME]
        for path, method in (("/api/login", "POST"), ("/api/parameters", "PUT"), ("/api/bot/stop", "POST")):
            for session in ("", cookie):  # anonymous or signed in
                head = (
                    f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {10 * 1024 * 1024}\r\n"
                )
                status, _ = await _raw_request(live, head, cookie=session)
                assert status == 413, (path, session, status)  # answered with no body byte sent
        # Without a Content-Length (chunked): cut off as soon as it passes the limit.
        head = (
            "PUT /api/parameters HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n"
        )
        status, sent = await _raw_request(live, head, chunks=640, cookie=cookie)
        assert status == 413 and sent < 1024 * 1024
        # A body under the limit is handled normally, and the server is still there.
        assert (await client.put("/api/parameters", json={"EMA_SHORT_PERIOD": 8})).status_code == 200


async def test_validation_errors_have_one_shape_and_echo_no_input(client: httpx.AsyncClient) -> None:
    secret = "hunter2-is-my-password"
    cases = [
        ("POST", "/api/login", {"password": ["not", "text", secret]}),
        ("POST", "/api/login", {"pass": secret}),
        ("POST", "/api/password", {"current_password": secret, "new_password": "short"}),
        ("PUT", "/api/parameters", {"EMA_SHORT_PERIOD": secret}),
        ("PUT", "/api/parameters", {"EMA_SHORT_PERIOD": 2**64}),
        ("GET", "/api/orders?offset=9223372036854775808", None),
        ("GET", "/api/trades?offset=99999999999999999999999", None),
        ("GET", f"/api/candles?interval={secret}", None),
    ]
    for method, path, body in cases:
        response = await client.request(method, path, json=body)
        assert response.status_code == 422, (path, response.status_code, response.text)
        detail = response.json()["detail"]
        assert detail and all(set(item) == {"field", "label", "message"} for item in detail), response.text
        assert secret not in response.text and "18446744073709551616" not in response.text
    raw = await client.post(
        "/api/login", content=b'{"password": "' + secret.encode(), headers={"Content-Type": "application/json"}
    )
    assert raw.status_code == 422 and secret not in raw.text


async def test_wrong_methods_get_405_and_unknown_api_paths_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/login")).status_code == 405
    assert (await client.delete("/api/status")).status_code == 405
    assert (await client.post("/api/status")).status_code == 405
    missing = await client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
    assert (await client.get("/")).status_code == 200


async def test_a_password_change_ends_every_other_session(
    settings_factory: Callable[..., ApiSettings], redis_client: Redis
) -> None:
    app = create_app(settings_factory(DASHBOARD_PASSWORD=None))
    await redis_client.set(streams.DASHBOARD_PASSWORD_HASH, auth.hash_password(PASSWORD))
    async with app.router.lifespan_context(app):
        async with _signed_in(app, "10.0.0.5") as phone, _signed_in(app, "10.0.0.6") as laptop:
            wrong = await laptop.post(
                "/api/password", json={"current_password": "not the password", "new_password": "n3w-passw0rd"}
            )
            assert wrong.status_code == 403
            assert (await phone.get("/api/status")).status_code == 200
            changed = await laptop.post(
                "/api/password", json={"current_password": PASSWORD, "new_password": "n3w-passw0rd"}
            )
            assert changed.status_code == 200, changed.text
            assert (await laptop.get("/api/status")).status_code == 200  # renewed for the one who changed it
            assert (await phone.get("/api/status")).status_code == 401
            assert (await phone.post("/api/login", json={"password": PASSWORD})).status_code == 401
            assert (await phone.post("/api/login", json={"password": "n3w-passw0rd"})).status_code == 200


async def test_a_new_configured_password_ends_the_sessions_of_the_old_one(
    settings_factory: Callable[..., ApiSettings],
) -> None:
    first = create_app(settings_factory())
    async with first.router.lifespan_context(first), _signed_in(first, "10.0.0.7") as client:
        cookie = client.cookies[auth.COOKIE_NAME]
    same = create_app(settings_factory())
    async with same.router.lifespan_context(same):  # a restart with the same password keeps sessions
        async with _client(same, "10.0.0.7") as again:
            again.cookies.set(auth.COOKIE_NAME, cookie)
            assert (await again.get("/api/status")).status_code == 200
    changed = create_app(settings_factory(DASHBOARD_PASSWORD="another long password"))
    async with changed.router.lifespan_context(changed):
        async with _client(changed, "10.0.0.7") as again:
            again.cookies.set(auth.COOKIE_NAME, cookie)
            assert (await again.get("/api/status")).status_code == 401
            assert (
                await again.post("/api/password", json={"current_password": "x", "new_password": "12345678"})
            ).status_code == 401


async def test_the_guess_rate_is_global_and_the_owners_browser_still_gets_in(
    app: FastAPI, settings: ApiSettings, redis_client: Redis
) -> None:
    # The owner signed in once before from this browser: it holds a trusted-device cookie.
    async with _signed_in(app, "10.0.0.9") as owner:
        device = owner.cookies[throttle.DEVICE_COOKIE]
        await owner.post("/api/logout")
    # 40 attacker addresses, one guess each, all at once.
    results = await asyncio.gather(*(_guess(app, f"10.66.0.{i}") for i in range(40)))
    checked = sum(1 for status in results if status == 401)
    assert checked == settings.login_global_failures  # 5 passwords tried, not 40
    assert all(status in (401, 429) for status in results)
    # A browser that never signed in waits for the global budget too ...
    async with _client(app, "10.0.0.10") as stranger:
        response = await stranger.post("/api/login", json={"password": PASSWORD})
        assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    # ... the owner's browser does not, from any address, and its success resets the window.
    async with _client(app, "10.0.0.12") as owner:
        owner.cookies.set(throttle.DEVICE_COOKIE, device, path="/api")
        assert (await owner.post("/api/login", json={"password": PASSWORD})).status_code == 200
    assert not await redis_client.exists(streams.LOGIN_UNTRUSTED)


async def _guess(app: FastAPI, ip: str) -> int:
    async with _client(app, ip) as attacker:
        return (await attacker.post("/api/login", json={"password": f"guess from {ip}"})).status_code


async def test_a_trusted_device_is_slowed_down_on_its_own(app: FastAPI) -> None:
    async with _signed_in(app, "10.0.0.11") as device:
        statuses = [(await device.post("/api/login", json={"password": "wrong"})).status_code for _ in range(5)]
        # Its own free attempts, then its own doubling wait: not the global budget.
        assert statuses == [401, 401, 401, 401, 429]
    async with _client(app, "10.0.0.11") as other_browser_same_address:
        assert (await other_browser_same_address.post("/api/login", json={"password": PASSWORD})).status_code == 200


async def test_405_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/parameters")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD, PUT"
