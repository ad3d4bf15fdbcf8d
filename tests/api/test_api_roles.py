"""Accounts and API tokens: a viewer reads and never acts, an operator acts and is named in the
audit trail, the owner manages tokens; roles, revocations and removals apply at the next request."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from shared import accounts, streams
from shared.codec import decode
from tests.api.helpers import PASSWORD
from tests.api.test_api_auth import api_routes

# Sign-in and sign-out are how anyone, a viewer too, gets and ends a session: they act on nothing.
SESSION_ROUTES = {("POST", "/api/login"), ("POST", "/api/logout")}
READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def acting_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every route of the app that changes something, found in the router (a new one is included)."""
    return [(m, p) for m, p in api_routes(app) if m not in READ_METHODS and (m, p) not in SESSION_ROUTES]


def url_of(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "BTCUSDT" if m.group(0) == "{symbol}" else "1", path)


def engine_of(app: FastAPI):
    return app.state.resources.engine


async def signed_in(app: FastAPI, account: str, password: str, ip: str = "10.0.0.3") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    response = await client.post("/api/login", json={"account": account, "password": password})
    assert response.status_code == 200, response.text
    return client


def bearer_client(app: FastAPI, secret: str, ip: str = "10.0.0.4") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    return httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"Authorization": f"Bearer {secret}"}
    )


async def test_every_acting_route_answers_403_to_a_viewer_session_and_a_viewer_token(
    app: FastAPI, client: httpx.AsyncClient, redis_client: Redis
) -> None:
    engine = engine_of(app)
    password = await accounts.create_account(engine, "vera", "viewer")
    _, secret = await accounts.create_token(engine, "vera", "wallboard", "viewer")
    _, owner_viewer_secret = await accounts.create_token(engine, "owner", "public screen", "viewer")
    routes = acting_routes(app)
    # The ones known today are among them; any route added later is checked the same way.
    assert {
        ("POST", "/api/bot/start"),
        ("POST", "/api/bot/stop"),
        ("POST", "/api/bot/pause-entries"),
        ("POST", "/api/bot/close-all"),
        ("POST", "/api/positions/{symbol}/close"),
        ("PUT", "/api/parameters"),
        ("PUT", "/api/parameters/strategy"),
        ("POST", "/api/backtest"),
        ("POST", "/api/password"),
        ("POST", "/api/tokens"),
        ("DELETE", "/api/tokens/{token_id}"),
    } <= set(routes)
    session = await signed_in(app, "vera", password)
    callers = [session, bearer_client(app, secret), bearer_client(app, owner_viewer_secret)]
    try:
        for caller in callers:
            assert (await caller.get("/api/status")).status_code == 200  # a viewer reads
            for method, path in routes:
                body = {"EMA_SHORT_PERIOD": 8} if path == "/api/parameters" else {}
                response = await caller.request(method, url_of(path), json=body)
                assert response.status_code == 403, (method, path, response.status_code, response.text)
    finally:
        for caller in callers:
            await caller.aclose()
    # Nothing was sent or changed by any of them.
    assert await redis_client.xlen(streams.CONTROL_COMMANDS) == 0
    assert await redis_client.xlen(streams.CONTROL_PARAMETERS) == 0
    assert [t.name for t in await accounts.list_tokens(engine) if t.revoked_at_ms is None] == [
        "wallboard",
        "public screen",
    ]
    assert (await client.get("/api/status")).status_code == 200


async def test_an_operator_acts_and_the_audit_trail_names_the_account_and_the_token(
    app: FastAPI, redis_client: Redis
) -> None:
    engine = engine_of(app)
    password = await accounts.create_account(engine, "otto", "operator")
    _, secret = await accounts.create_token(engine, "otto", "deploy", "operator")
    session = await signed_in(app, "otto", password, ip="10.0.0.7")
    script = bearer_client(app, secret, ip="10.0.0.8")
    try:
        assert (await session.post("/api/bot/stop")).status_code == 202
        assert (await script.post("/api/bot/start")).status_code == 202
        changed = await session.put("/api/parameters", json={"EMA_SHORT_PERIOD": 8})
        assert changed.status_code == 200 and changed.json()["changed_by"] == "otto@10.0.0.7"
        history = (await script.get("/api/parameters/history")).json()
        assert history[0]["changed_by"] == "otto@10.0.0.7"
        # Tokens and the owner's password stay the owner's.
        assert (await session.post("/api/tokens", json={"name": "more"})).status_code == 403
        assert (await script.get("/api/tokens")).status_code == 403
        assert (
            await session.post("/api/password", json={"current_password": "x", "new_password": "y" * 8})
        ).status_code == 403
    finally:
        await session.aclose()
        await script.aclose()
    authors = [decode(fields).payload.requested_by for _, fields in await redis_client.xrange(streams.CONTROL_COMMANDS)]
    assert authors == ["otto@10.0.0.7", "otto[token deploy]@10.0.0.8"]
    assert (await redis_client.get(streams.BOT_STATE) or "").find("otto[token deploy]@10.0.0.8") >= 0


async def test_the_owner_creates_lists_and_revokes_tokens_and_the_text_is_shown_once(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await accounts.create_account(engine_of(app), "vera", "viewer")
    created = await client.post("/api/tokens", json={"name": "grafana", "role": "viewer"})
    assert created.status_code == 201, created.text
    secret, token = created.json()["secret"], created.json()["token"]
    assert secret.startswith("bsb_") and token["account"] == "owner" and token["role"] == "viewer"
    refused = await client.post("/api/tokens", json={"name": "too strong", "role": "operator", "account": "vera"})
    assert refused.status_code == 409 and refused.json()["detail"].startswith("role: vera is viewer")
    assert (await client.post("/api/tokens", json={"name": "x", "account": "nobody"})).status_code == 404
    assert (await client.post("/api/tokens", json={"name": "x", "role": "admin"})).status_code == 422
    listed = await client.get("/api/tokens")
    assert [t["name"] for t in listed.json()] == ["grafana"] and secret not in listed.text
    assert (await client.get("/api/accounts")).json()[0]["name"] == "vera"

    script = bearer_client(app, secret)
    try:
        assert (await script.get("/api/status")).status_code == 200
        assert (await client.delete(f"/api/tokens/{token['id']}")).json()["revoked_at_ms"] is not None
        assert (await script.get("/api/status")).status_code == 401
        assert (await client.delete("/api/tokens/999")).status_code == 404
    finally:
        await script.aclose()
    # A bearer header is the credential when present: a wrong one is refused even beside a live cookie.
    client.headers["Authorization"] = "Bearer bsb_not-a-token"
    assert (await client.get("/api/status")).status_code == 401
    del client.headers["Authorization"]
    assert all(secret not in record.getMessage() for record in caplog.records)


async def test_role_changes_removals_and_new_passwords_apply_at_the_next_request(app: FastAPI) -> None:
    engine = engine_of(app)
    password = await accounts.create_account(engine, "rita", "viewer")
    _, secret = await accounts.create_token(engine, "rita", "phone", "viewer")
    session = await signed_in(app, "rita", password)
    script = bearer_client(app, secret)
    try:
        assert (await session.get("/api/session")).json() == {
            "authenticated": True,
            "account": "rita",
            "role": "viewer",
        }
        assert (await session.post("/api/bot/stop")).status_code == 403
        await accounts.set_role(engine, "rita", "operator")
        assert (await session.post("/api/bot/stop")).status_code == 202
        assert (await script.post("/api/bot/stop")).status_code == 403  # the token stays a viewer token

        await accounts.set_role(engine, "rita", "viewer")
        _, strong = await accounts.create_token(engine, "owner", "ops", "operator")
        assert (await session.post("/api/bot/start")).status_code == 403

        new_password = await accounts.reset_password(engine, "rita")
        assert new_password != password
        assert (await session.get("/api/status")).status_code == 401  # the old session ended
        again = await signed_in(app, "rita", new_password)
        await accounts.remove_account(engine, "rita")
        assert (await again.get("/api/status")).status_code == 401
        assert (await script.get("/api/status")).status_code == 401  # its tokens went with it
        await again.aclose()
        owner_script = bearer_client(app, strong)
        assert (await owner_script.post("/api/bot/start")).status_code == 202
        await owner_script.aclose()
    finally:
        await session.aclose()
        await script.aclose()


async def test_account_sign_in_is_refused_with_a_wrong_or_unknown_name_and_names_are_checked(
    app: FastAPI, anon: httpx.AsyncClient
) -> None:
    engine = engine_of(app)
    password = await accounts.create_account(engine, "vera", "viewer")
    assert (await anon.post("/api/login", json={"account": "vera", "password": password + "x"})).status_code == 401
    assert (await anon.post("/api/login", json={"account": "nobody", "password": password})).status_code == 401
    assert (await anon.post("/api/login", json={"account": "vera", "password": PASSWORD})).status_code == 401
    with pytest.raises(accounts.AccessError, match="name"):
        await accounts.create_account(engine, "owner", "viewer")
    with pytest.raises(accounts.AccessError, match="exists"):
        await accounts.create_account(engine, "vera", "operator")
    with pytest.raises(accounts.AccessError, match="role"):
        await accounts.create_account(engine, "adam", "admin")
    with pytest.raises(accounts.AccessError, match="name"):
        await accounts.create_account(engine, "Bad Name", "viewer")
    rows = await accounts.list_accounts(engine)
    assert [(r.name, r.role.value) for r in rows] == [("vera", "viewer")]
    stored = await accounts.get_account(engine, "vera")
    assert stored is not None and password not in stored.password_hash and stored.password_hash.startswith("scrypt$")
