"""``python -m services.api`` as a real process: start-up, generated password, --check, clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from services.api import auth
from services.api.config import PROJECT_ROOT
from shared import streams
from tests.support.ports import free_port


def api_env(redis_url: str, tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DASHBOARD_", "API_", "SYMBOL"))}
    env.update(
        PYTHONPATH=str(PROJECT_ROOT),
        REDIS_URL=redis_url,
        API_PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        REPORTS_DIR=str(tmp_path / "reports"),
        SYMBOLS="BTCUSDT",
        LOG_LEVEL="INFO",
        **extra,
    )
    return env


def wait_ready(process: subprocess.Popen[str], url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"api exited with {process.returncode}: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code in (200, 503):
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("api did not answer in time")


API_KEY = "k3yTESTabcdefghijklmnop0123456789"
API_SECRET = "s3cretTESTabcdefghijklmnop0123456789"


@pytest.mark.integration
def test_the_api_process_prints_a_generated_password_once_and_leaks_no_secret(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = api_env(redis_url, tmp_path, port, BINANCE_API_KEY=API_KEY, BINANCE_API_SECRET=API_SECRET)
    log_path = tmp_path / "api.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.api"], cwd=tmp_path, env=env, stderr=log_file, text=True
        )
    try:
        wait_ready(process, url)
        check = subprocess.run(
            [sys.executable, "-m", "services.api", "--check"], cwd=tmp_path, env=env, capture_output=True, timeout=30
        )
        assert check.returncode == 0, check.stdout
        passwords = re.findall(r">>> (\S+) <<<", log_path.read_text())
        assert len(passwords) == 1, log_path.read_text()
        password = passwords[0]
        bodies = []
        with httpx.Client(base_url=url) as client:
            assert client.get("/api/status").status_code == 401
            client.post("/api/login", json={"password": "a wrong guess"})
            response = client.post("/api/login", json={"password": password})
            assert response.status_code == 200
            token = client.cookies[auth.COOKIE_NAME]
            for path in (
                "/api/status",
                "/api/health",
                "/api/parameters",
                "/api/logs",
                "/api/openapi.json",
                "/api/session",
            ):
                bodies.append(client.get(path).text)
            bodies.append(response.text)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = log_path.read_text()
    assert stderr.count(password) == 1
    secrets = (password, token, API_KEY, API_SECRET, "a wrong guess")
    for body in bodies:
        assert not [secret for secret in secrets if secret in body]
    assert not [secret for secret in secrets[1:] if secret in stderr]
    client_redis = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        logged = [str(fields) for _, fields in client_redis.xrange(streams.LOGS)]
        assert any("api ready" in line for line in logged) and any("sign-in refused" in line for line in logged)
        assert not [secret for secret in secrets if any(secret in line for line in logged)]
        assert client_redis.get(streams.DASHBOARD_PASSWORD_HASH).startswith("scrypt$")
    finally:
        client_redis.close()


@pytest.mark.integration
def test_rotating_x_forwarded_for_does_not_raise_the_guess_rate_and_the_owner_still_signs_in(
    redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = api_env(redis_url, tmp_path, port, DASHBOARD_PASSWORD="the owner's long password")
    with (tmp_path / "api.log").open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.api"], cwd=tmp_path, env=env, stderr=log_file, text=True
        )
    try:
        wait_ready(process, url)
        statuses = []
        with httpx.Client(base_url=url) as owner, httpx.Client(base_url=url) as attacker:
            assert owner.post("/api/login", json={"password": "the owner's long password"}).status_code == 200
            owner.post("/api/logout")
            for i in range(30):
                forged = {"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"198.51.100.{i}"}
                statuses.append(
                    attacker.post("/api/login", json={"password": f"guess {i}"}, headers=forged).status_code
                )
            # The owner's browser (it signed in before) gets in during the attack, from the same address.
            assert owner.post("/api/login", json={"password": "the owner's long password"}).status_code == 200
            # ... and the audit records the real peer, not a forged one.
            owner.post("/api/bot/stop", headers={"X-Forwarded-For": "203.0.113.99"})
        checked = statuses.count(401)
        assert checked <= 5 and statuses.count(429) == 30 - checked, statuses
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    client_redis = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        commands = [fields for _, fields in client_redis.xrange(streams.CONTROL_COMMANDS)]
        assert commands and all("203.0.113" not in str(fields) for fields in commands)
        assert "127.0.0.1" in str(commands[-1])
    finally:
        client_redis.close()
