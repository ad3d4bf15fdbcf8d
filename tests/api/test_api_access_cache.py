"""Named accounts and tokens are read from the database once, not per request, and a change made
by `make user` / `make token` (another connection to the database) applies to the next request."""

from __future__ import annotations

import re
import sqlite3

import httpx
import pytest
from fastapi import FastAPI

from services.api.config import ApiSettings
from shared.account_cache import DatabaseRevision
from tests.api.test_access_cli import load_script, run


async def test_repeated_requests_are_served_from_the_cache_and_cli_changes_apply_at_once(
    app: FastAPI, settings: ApiSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    cli = load_script()
    cache = app.state.resources.access
    _, out = await run(cli, capsys, "user", "--add", "rita", "--role", "viewer")
    password = re.search(r"kept only hashed\): (\S+)", out).group(1)
    _, out = await run(cli, capsys, "token", "--add", "board", "--role", "viewer", "--user", "rita")
    secret = out.strip().splitlines()[-1]
    transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 50000))
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser,
        httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers={"Authorization": f"Bearer {secret}"}
        ) as script,
    ):
        assert (await browser.post("/api/login", json={"account": "rita", "password": password})).status_code == 200
        for client in (browser, script):
            assert (await client.get("/api/session" if client is browser else "/api/status")).status_code == 200
            reads = cache.reads
            for _ in range(5):
                assert (await client.get("/api/status")).status_code == 200
            assert cache.reads == reads, "the same caller was read from the database again"

        # A role change on the command line: the very next request acts with the new role.
        assert (await browser.post("/api/bot/stop")).status_code == 403
        assert (await run(cli, capsys, "user", "--name", "rita", "--role", "operator"))[0] == 0
        assert (await browser.post("/api/bot/stop")).status_code == 202
        assert (await browser.get("/api/session")).json()["role"] == "operator"
        # A revoked token is refused at once.
        assert (await run(cli, capsys, "token", "--revoke", "1"))[0] == 0
        assert (await script.get("/api/status")).status_code == 401
        # A new password ends the session at once.
        assert (await run(cli, capsys, "user", "--reset", "rita"))[0] == 0
        assert (await browser.get("/api/status")).status_code == 401
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as again:
        _, out = await run(cli, capsys, "user", "--reset", "rita")
        fresh = out.strip().split()[-1]
        assert (await again.post("/api/login", json={"account": "rita", "password": fresh})).status_code == 200
        assert (await again.get("/api/status")).status_code == 200
        # A removal ends it at once too.
        assert (await run(cli, capsys, "user", "--remove", "rita"))[0] == 0
        assert (await again.get("/api/status")).status_code == 401


def test_the_revision_moves_with_every_commit_of_another_connection_and_is_unknown_off_sqlite(tmp_path) -> None:
    path = tmp_path / "db.sqlite3"
    writer = sqlite3.connect(path)
    writer.execute("CREATE TABLE t (x)")
    writer.commit()
    revision = DatabaseRevision(f"sqlite:///{path}")
    first = revision.current()
    assert first is not None and revision.current() == first
    writer.execute("INSERT INTO t VALUES (1)")
    writer.commit()
    assert revision.current() != first
    revision.close()
    writer.close()
    assert DatabaseRevision("postgresql://bot@localhost/bot").current() is None
    assert DatabaseRevision("sqlite:///:memory:").current() is None
