"""Sign-in, sessions, slowed guessing, the generated password, and that every route is guarded."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from redis.asyncio import Redis

from services.api import auth, throttle
from services.api.app import create_app
from services.api.config import ApiSettings
from shared import streams
from tests.api.helpers import PASSWORD

PUBLIC = {
    ("GET", "/api/health"),
    ("POST", "/api/login"),
    ("POST", "/api/logout"),
    ("GET", "/api/session"),
    ("GET", "/api/docs"),
    ("GET", "/api/openapi.json"),
}


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves under /api, however the routers were included."""
    found = []
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        for method in sorted(route.methods or ()):
            if path.startswith("/api") and method != "HEAD":
                found.append((method, path))
    return found


async def test_every_route_but_the_public_ones_refuses_anonymous_callers(app: FastAPI, anon: httpx.AsyncClient) -> None:
    routes = api_routes(app)
    assert len(routes) >= 20
    protected = [route for route in routes if route not in PUBLIC]
    assert ("GET", "/api/events") in protected and ("PUT", "/api/parameters") in protected
    for method, path in protected:
        url = re.sub(r"\{[^}]+\}", "BTCUSDT", path)
        response = await anon.request(method, url, json={} if method in ("POST", "PUT") else None)
        assert response.status_code == 401, (method, path, response.status_code)
    # A forged cookie is no session either.
    anon.cookies.set(auth.COOKIE_NAME, "forged")
    assert (await anon.get("/api/status")).status_code == 401


async def test_login_sets_a_strict_http_only_cookie_and_logout_ends_the_session(
    anon: httpx.AsyncClient, redis_client: Redis
) -> None:
    response = await anon.post("/api/login", json={"password": PASSWORD})
    assert response.status_code == 200 and response.json() == {
        "authenticated": True,
        "account": "owner",
        "role": "admin",
    }
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    token = anon.cookies[auth.COOKIE_NAME]
    assert token not in response.text
    # Redis keeps a hash of the session id, never the id itself.
    keys = [key async for key in redis_client.scan_iter(match=auth.SESSION_PREFIX + "*")]
    assert len(keys) == 1 and token not in keys[0]
    assert 0 < await redis_client.ttl(keys[0]) <= 12 * 3600
    assert (await anon.get("/api/status")).status_code == 200
    assert (await anon.get("/api/session")).json()["authenticated"] is True

    assert (await anon.post("/api/logout")).status_code == 200
    assert not [key async for key in redis_client.scan_iter(match=auth.SESSION_PREFIX + "*")]
    anon.cookies.set(auth.COOKIE_NAME, token)  # replaying the old cookie does not help
    assert (await anon.get("/api/status")).status_code == 401


async def test_secure_cookie_when_configured(settings_factory: Callable[..., ApiSettings]) -> None:
    app = create_app(settings_factory(SESSION_COOKIE_SECURE="true"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as client:
            response = await client.post("/api/login", json={"password": PASSWORD})
    assert "Secure" in response.headers["set-cookie"]


async def test_failed_sign_ins_are_slowed_down_per_client(app: FastAPI, anon: httpx.AsyncClient) -> None:
    for _ in range(3):  # the free attempts
        response = await anon.post("/api/login", json={"password": "wrong password"})
        assert response.status_code == 401 and "retry-after" not in response.headers
    response = await anon.post("/api/login", json={"password": "wrong again!"})
    assert response.status_code == 401 and response.headers["retry-after"] == "1"
    # While blocked even the right password is refused, with the time to wait.
    response = await anon.post("/api/login", json={"password": PASSWORD})
    assert response.status_code == 429 and 1 <= int(response.headers["retry-after"]) <= 1
    # Another client address is not affected.
    transport = httpx.ASGITransport(app=app, client=("10.9.9.9", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        assert (await other.post("/api/login", json={"password": PASSWORD})).status_code == 200


async def test_the_delay_doubles_with_each_further_failure(settings: ApiSettings, redis_client: Redis) -> None:
    delays = [await throttle.record_failure(redis_client, settings, "10.1.1.1") for _ in range(8)]
    assert delays == [0, 0, 0, 1, 2, 4, 8, 16]
    assert 8 <= await throttle.blocked_for(redis_client, "10.1.1.1") <= 16
    await throttle.clear_failures(redis_client, "10.1.1.1")
    assert await throttle.blocked_for(redis_client, "10.1.1.1") == 0


async def test_without_a_configured_password_one_is_generated_printed_once_and_kept_hashed(
    settings_factory: Callable[..., ApiSettings], redis_client: Redis, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = settings_factory(DASHBOARD_PASSWORD=None)
    assert settings.dashboard_password is None
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        printed = capfd.readouterr().err
        match = re.search(r">>> (\S+) <<<", printed)
        assert match, printed
        password = match[1]
        stored = await redis_client.get(streams.DASHBOARD_PASSWORD_HASH)
        assert stored.startswith("scrypt$") and password not in stored
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            assert (await client.post("/api/login", json={"password": "not it at all"})).status_code == 401
            response = await client.post("/api/login", json={"password": password})
            assert response.status_code == 200 and password not in response.text
            for path in ("/api/status", "/api/parameters", "/api/health", "/api/logs"):
                assert password not in (await client.get(path)).text
    # A second start finds the hash and prints nothing.
    again = create_app(settings)
    async with again.router.lifespan_context(again):
        assert ">>>" not in capfd.readouterr().err
    assert await redis_client.get(streams.DASHBOARD_PASSWORD_HASH) == stored
    # Nothing reached the shared log stream.
    assert all(password not in str(fields) for _, fields in await redis_client.xrange(streams.LOGS))


def test_a_short_configured_password_is_refused(redis_url: str, tmp_path: Path) -> None:
    from pydantic import ValidationError

    from tests.api.helpers import make_settings

    with pytest.raises(ValidationError, match="at least 8 characters"):
        make_settings(redis_url, tmp_path, DASHBOARD_PASSWORD="short")


def test_hash_and_verify() -> None:
    stored = auth.hash_password("s3cret-words")
    assert auth.verify_hash("s3cret-words", stored)
    assert not auth.verify_hash("s3cret-word", stored)
    assert not auth.verify_hash("s3cret-words", "garbage")
    assert auth.hash_password("s3cret-words") != stored  # salted


async def test_no_cors_unless_configured(anon: httpx.AsyncClient, settings_factory: Callable[..., ApiSettings]) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    response = await anon.options("/api/login", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    app = create_app(settings_factory(API_CORS_ORIGINS="https://desk.example"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            allowed = await client.options(
                "/api/login", headers={"Origin": "https://desk.example", "Access-Control-Request-Method": "POST"}
            )
            refused = await client.options("/api/login", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "https://desk.example"
    assert "access-control-allow-origin" not in refused.headers


async def test_dashboard_is_served_with_security_headers(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    docs = await anon.get("/api/docs")
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers


async def test_api_docs_work_offline_with_local_swagger_ui_files(anon: httpx.AsyncClient) -> None:
    page = (await anon.get("/api/docs")).text
    assert "/api/docs/assets/swagger-ui-bundle.js" in page and "cdn.jsdelivr" not in page and "unpkg" not in page
    bundle = await anon.get("/api/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 500_000
    assert (await anon.get("/api/docs/assets/swagger-ui.css")).status_code == 200


async def test_a_report_link_without_a_session_shows_the_sign_in_page(anon: httpx.AsyncClient) -> None:
    browser = await anon.get("/api/backtest/report", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status_code == 303 and browser.headers["location"] == "/?next=%2Fapi%2Fbacktest%2Freport"
    script = await anon.get("/api/backtest/report", headers={"Accept": "application/json"})
    assert script.status_code == 401 and script.json() == {"detail": "sign in first"}
    assert (await anon.get("/api/status", headers={"Accept": "text/html"})).status_code == 401


async def test_a_report_link_with_an_expired_session_shows_the_sign_in_page(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    # The session expires in Redis (its TTL) while the browser still sends its cookie.
    for key in [key async for key in redis_client.scan_iter(f"{streams.SESSION_PREFIX}*")]:
        await redis_client.delete(key)
    assert client.cookies.get("bot_session")
    browser = await client.get("/api/backtest/report", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status_code == 303 and browser.headers["location"] == "/?next=%2Fapi%2Fbacktest%2Freport"


async def test_every_reference_of_the_openapi_document_resolves(anon: httpx.AsyncClient) -> None:
    # A model's own "$defs" do not exist in the document it is embedded in: such a reference
    # leaves that part of the body untested by any client reading the schema.
    document = (await anon.get("/api/openapi.json")).json()

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for item in node for r in refs(item)]
        return []

    found = refs(document)
    assert found, "the document has references to check"
    schemas = document["components"]["schemas"]
    unresolved = sorted(
        {r for r in found if not (r.startswith("#/components/schemas/") and r.split("/")[-1] in schemas)}
    )
    assert unresolved == []
