"""`make user` / `make token` (scripts/access.py) on the api's database: what they print once
works for signing in and as a bearer token, and changes apply to the running api."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.api.config import ApiSettings

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "access.py"


def load_script():
    spec = importlib.util.spec_from_file_location("access_cli", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def run(cli, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    import asyncio

    code = await asyncio.to_thread(cli.main, list(argv))
    return code, capsys.readouterr().out


async def test_accounts_and_tokens_made_on_the_command_line_work_in_the_api(
    app: FastAPI, settings: ApiSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    cli = load_script()
    code, out = await run(cli, capsys, "user", "--add", "vera", "--role", "viewer")
    assert code == 0
    password = re.search(r"kept only hashed\): (\S+)", out).group(1)
    code, out = await run(cli, capsys, "token", "--add", "wallboard", "--role", "viewer", "--user", "vera")
    secret = out.strip().splitlines()[-1]
    assert code == 0 and secret.startswith("bsb_")
    code, listing = await run(cli, capsys, "token")
    assert "wallboard" in listing and secret not in listing
    code, listing = await run(cli, capsys, "user")
    assert "vera" in listing and password not in listing
    assert (await run(cli, capsys, "user", "--add", "Vera!", "--role", "viewer"))[0] == 2

    transport = httpx.ASGITransport(app=app, client=("10.0.0.9", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        assert (await browser.post("/api/login", json={"account": "vera", "password": password})).json()[
            "role"
        ] == "viewer"
        assert (await browser.post("/api/bot/stop")).status_code == 403
        assert (await run(cli, capsys, "user", "--name", "vera", "--role", "operator"))[0] == 0
        assert (await browser.post("/api/bot/stop")).status_code == 202
        assert (await run(cli, capsys, "user", "--remove", "vera"))[0] == 0
        assert (await browser.get("/api/status")).status_code == 401
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"Authorization": f"Bearer {secret}"}
    ) as script:
        assert (await script.get("/api/status")).status_code == 401  # revoked with its account
