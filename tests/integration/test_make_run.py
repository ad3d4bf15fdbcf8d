"""`make run`'s supervisor: every process up, the dashboard answers, one service restarts alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("exchange_sim", "market_data", "strategy", "executor", "notifier", "api")


def wait(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text(errors='replace')[-5000:]}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except Exception:  # noqa: BLE001 - not up yet
        return False


@pytest.mark.integration
def test_run_starts_everything_restarts_one_service_and_stops_cleanly(tmp_path: Path) -> None:
    var = tmp_path / "var"
    api_port, sim_port, redis_port = free_port(), free_port(), free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(ROOT),
        "BOT_VAR_DIR": str(var),
        "REDIS_PORT": str(redis_port),
        "API_PORT": str(api_port),
        "EXCHANGE_SIM_PORT": str(sim_port),
        "SIM_URL": f"http://127.0.0.1:{sim_port}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "DASHBOARD_PASSWORD": "make-run-test",
        "REDIS_URL": "",
    }
    log = tmp_path / "run.log"
    with log.open("wb") as handle:
        supervisor = subprocess.Popen(
            [sys.executable, "scripts/supervisor.py"], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    try:
        wait(lambda: f"http://127.0.0.1:{api_port}/" in log.read_text(errors="replace"), 60, "the dashboard URL", log)
        wait(lambda: answers(f"http://127.0.0.1:{api_port}/"), 90, "the dashboard", log)
        pids = wait(lambda: _pids(var) if len(_pids(var)) == len(SERVICES) else None, 60, "every service", log)
        _assert_bus_is_private(var, redis_port)
        os.kill(pids["strategy"], signal.SIGTERM)  # what `make restart SERVICE=strategy` does
        wait(lambda: _pids(var).get("strategy") not in (None, pids["strategy"]), 30, "strategy to come back", log)
        after = _pids(var)
        assert {name: after[name] for name in SERVICES if name != "strategy"} == {
            name: pids[name] for name in SERVICES if name != "strategy"
        }
    finally:
        supervisor.send_signal(signal.SIGINT)
        try:
            supervisor.wait(60)
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
    text = log.read_text(errors="replace")
    assert supervisor.returncode == 0, text[-3000:]
    assert (var / "sim" / "state.json").is_file()  # the paper account outlives the run, like the ledger
    assert "stopped." in text
    assert _pids(var) == {}


def _pids(var: Path) -> dict[str, int]:
    folder = var / "run"
    if not folder.exists():
        return {}
    return {path.stem: int(path.read_text()) for path in folder.glob("*.pid") if path.read_text().strip()}


def _assert_bus_is_private(var: Path, redis_port: int) -> None:
    """make run's Redis refuses a client without a password; its secrets are the owner's only."""
    import stat

    import redis

    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=redis_port, socket_timeout=5).ping()
    secrets = var / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for name in ("redis-passwords.json", "redis-admin.password", "bus-signing.key"):
        assert stat.S_IMODE((secrets / name).stat().st_mode) == 0o600, name
    admin = redis.Redis(
        port=redis_port,
        password=(secrets / "redis-admin.password").read_text().strip(),
        decode_responses=True,
        socket_timeout=5,
    )
    try:
        users = set(admin.acl_users())
        assert users == {"default", "market_data", "strategy", "executor", "notifier", "api"}
        # Every service is connected as its own user (the simulator uses no Redis).
        connected = {
            line.split(" user=")[1].split(" ")[0] for line in admin.execute_command("CLIENT", "LIST").splitlines()
        }
        assert {"market_data", "strategy", "executor", "notifier", "api"} <= connected
    finally:
        admin.close()
    socket = var / "redis" / "redis.sock"
    if socket.exists():
        assert stat.S_IMODE(socket.stat().st_mode) == 0o700
