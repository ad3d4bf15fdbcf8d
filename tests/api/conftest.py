"""Fixtures for the api: the app with its lifespan, clients, a migrated SQLite ledger, a live server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.api.app import create_app
from services.api.config import ApiSettings
from shared.store.database import migrate
from tests.api.helpers import PASSWORD, make_settings
from tests.support.ports import free_port


@pytest.fixture
def settings_factory(redis_url: str, tmp_path: Path) -> Callable[..., ApiSettings]:
    return lambda **env: make_settings(redis_url, tmp_path, **env)


@pytest.fixture
def settings(settings_factory: Callable[..., ApiSettings]) -> ApiSettings:
    return settings_factory()


@pytest.fixture
def ledger_url(settings: ApiSettings) -> str:
    """The settings' SQLite ledger, migrated to the current schema."""
    migrate(settings.database_url)
    return settings.database_url


@pytest.fixture
async def app(settings: ApiSettings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in client."""
    transport = httpx.ASGITransport(app=app, client=("10.0.0.2", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as signed_in:
        response = await signed_in.post("/api/login", json={"password": PASSWORD})
        assert response.status_code == 200, response.text
        yield signed_in


class LiveServer:
    """The app served by uvicorn on a free port inside the test's event loop."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started:
                return
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("uvicorn did not start")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)

    async def login(self, client: httpx.AsyncClient) -> None:
        response = await client.post(f"{self.url}/api/login", json={"password": PASSWORD})
        assert response.status_code == 200, response.text


@pytest.fixture
async def live_factory() -> AsyncIterator[Callable[[ApiSettings], Any]]:
    servers: list[LiveServer] = []

    async def start(settings: ApiSettings) -> LiveServer:
        server = LiveServer(create_app(settings))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def live(live_factory: Callable[[ApiSettings], Any], settings: ApiSettings) -> LiveServer:
    return await live_factory(settings)
