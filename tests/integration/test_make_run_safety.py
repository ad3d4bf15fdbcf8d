"""`make run` behaves like a service: it owns its ports or refuses to start, the whole process
tree stops on SIGHUP / SIGTERM / `make stop`, `make restart` signals only its own service, and
SIM_URL follows EXCHANGE_SIM_PORT."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.test_make_run import wait
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from processes import command_line, environment, listeners, parent_of, start_time


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(ROOT),
        "BOT_VAR_DIR": str(tmp_path / "var"),
        "REDIS_PORT": str(free_port()),
        "API_PORT": str(free_port()),
        "EXCHANGE_SIM_PORT": str(free_port()),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "DASHBOARD_PASSWORD": "make-run-test",
        "REDIS_URL": "",
        "EXCHANGE_SIM_SPEED": "60",
        "EXCHANGE_SIM_HISTORY": "120",
        "WARMUP_CANDLES": "100",
        "LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


def tree(var: Path, known: dict[int, str] | None = None) -> list[int]:
    """Every live process of this run: those carrying its BOT_VAR_DIR (redis-server rewrites its
    environment, so it is found as a descendant), and those of ``known`` (pid -> start time)."""
    found = set()
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        parents[pid] = parent_of(pid)
        if environment(pid).get("BOT_VAR_DIR") == str(var) or (known and known.get(pid) == start_time(pid)):
            found.add(pid)
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in found} - found
        grew = bool(children)
        found |= children
    return sorted(found)


def snapshot(var: Path) -> dict[int, str]:
    return {pid: start_time(pid) for pid in tree(var)}


def admin_client(env: dict[str, str]) -> redis.Redis:
    """make run's Redis as its admin (the password make run wrote under var/secrets)."""
    password = (Path(env["BOT_VAR_DIR"]) / "secrets" / "redis-admin.password").read_text().strip()
    return redis.Redis(port=int(env["REDIS_PORT"]), password=password, decode_responses=True)


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "scripts/supervisor.py"], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )


def wait_started(env: dict[str, str], log: Path) -> None:
    wait(lambda: "dashboard: http://" in log.read_text(errors="replace"), 120, "the dashboard URL", log)


@pytest.fixture
def cleanup() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.mark.integration
@pytest.mark.parametrize("taken", ["REDIS_PORT", "EXCHANGE_SIM_PORT", "API_PORT"])
def test_a_taken_port_refuses_the_start_naming_port_variable_and_holder(tmp_path: Path, taken: str) -> None:
    env = base_env(tmp_path)
    holder = socket.socket()
    holder.bind(("127.0.0.1", int(env[taken])))
    holder.listen()
    try:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "scripts/supervisor.py"], cwd=ROOT, env=env, capture_output=True, timeout=30
        )
        elapsed = time.monotonic() - started
    finally:
        holder.close()
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode != 0 and elapsed < 15, output
    [line] = [line for line in output.splitlines() if "error:" in line]
    assert f"port {env[taken]}" in line and taken in line and f"pid {os.getpid()}" in line
    assert tree(tmp_path / "var") == []
    assert not (tmp_path / "var" / "supervisor.pid").exists()


def test_listeners_names_the_process_holding_a_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert listeners(sock.getsockname()[1]) == [os.getpid()]


@pytest.mark.integration
def test_sim_url_follows_the_sim_port_and_sighup_stops_the_whole_tree(tmp_path: Path, cleanup: list) -> None:
    env = base_env(tmp_path)  # EXCHANGE_SIM_PORT only: no SIM_URL anywhere
    assert "SIM_URL" not in env and not (ROOT / ".env").exists()
    log = tmp_path / "run.log"
    supervisor = start(env, log)
    cleanup.append(supervisor)
    wait_started(env, log)
    client = admin_client(env)
    # market_data reads the simulator started on EXCHANGE_SIM_PORT...
    wait(lambda: client.xlen("market:kline:BTCUSDT") > 0, 60, "candles from the simulator", log)
    # ...and the executor trades on it.
    asyncio.run(_send_buy(env, candle := 1_800_000_000_000))
    sim = f"http://127.0.0.1:{env['EXCHANGE_SIM_PORT']}/_sim/state"
    wait(lambda: f"EB-BTCUSDT-{candle}" in _json(sim)["client_order_ids"], 60, "the entry order on the simulator", log)

    var = tmp_path / "var"
    known = snapshot(var)
    assert len(known) >= 7, [command_line(pid) for pid in known]  # supervisor, redis, five services
    supervisor.send_signal(signal.SIGHUP)
    wait(lambda: not tree(var, known), 15, "every process of the tree to exit", log)
    assert supervisor.wait(5) == 0
    assert not list((var / "run").glob("*.pid")) and not (var / "supervisor.pid").exists()


@pytest.mark.integration
def test_make_stop_from_another_shell_and_restart_checks_the_pid(tmp_path: Path, cleanup: list) -> None:
    env = base_env(tmp_path)
    log = tmp_path / "run.log"
    supervisor = start(env, log)
    cleanup.append(supervisor)
    wait_started(env, log)
    var = tmp_path / "var"
    known = snapshot(var)
    pid_file = var / "run" / "strategy.pid"
    strategy = int(pid_file.read_text())

    # A stale pid file naming a process that is not this run's strategy: nothing is signalled.
    bystander = subprocess.Popen(["sleep", "60"])
    cleanup.append(bystander)
    pid_file.write_text(str(bystander.pid))
    result = subprocess.run(
        ["make", "-s", "restart", "SERVICE=strategy"], cwd=ROOT, env=env, capture_output=True, timeout=30
    )
    assert result.returncode != 0 and b"nothing was signalled" in result.stdout, result.stdout + result.stderr
    time.sleep(0.5)
    assert bystander.poll() is None
    pid_file.write_text(str(strategy))
    result = subprocess.run(
        ["make", "-s", "restart", "SERVICE=strategy"], cwd=ROOT, env=env, capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    wait(
        lambda: pid_file.exists() and pid_file.read_text().strip() not in ("", str(strategy)), 30, "strategy back", log
    )

    started = time.monotonic()
    result = subprocess.run(["make", "-s", "stop"], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert result.returncode == 0 and b"stopped" in result.stdout, result.stdout + result.stderr
    known.update(snapshot(var))
    wait(
        lambda: not tree(var, known),
        max(15 - (time.monotonic() - started), 1),
        "every process of the tree to exit",
        log,
    )
    assert supervisor.wait(5) == 0
    assert not list((var / "run").glob("*.pid")) and not (var / "supervisor.pid").exists()
    # Nothing left to stop: says so and succeeds.
    assert (
        b"not running"
        in subprocess.run(["make", "-s", "stop"], cwd=ROOT, env=env, capture_output=True, timeout=30).stdout
    )


async def _send_buy(env: dict[str, str], candle: int) -> None:
    """A BUY signal as the strategy of this run would send it: sealed with the run's bus key."""
    from redis.asyncio import Redis

    from shared import signing
    from tests.executor.harness import Bus

    var = Path(env["BOT_VAR_DIR"])
    client = Redis(
        port=int(env["REDIS_PORT"]),
        password=(var / "secrets" / "redis-admin.password").read_text().strip(),
        decode_responses=True,
    )
    session_key = signing.installed_key()
    signing.install(signing.parse_key((var / "secrets" / "bus-signing.key").read_text()))
    try:
        await Bus(client).signal("BTCUSDT", "BUY", candle)
    finally:
        signing.install(session_key)
        await client.aclose()


def _json(url: str) -> dict:
    import json

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return {"client_order_ids": []}


def test_reset_password_prints_a_new_one_once_and_ends_sessions(redis_url: str, tmp_path: Path) -> None:
    from services.api.auth import SESSION_PREFIX, verify_hash
    from shared import streams

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.set(streams.DASHBOARD_PASSWORD_HASH, "scrypt$old")
    client.set(f"{SESSION_PREFIX}abc", "{}")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "REDIS_URL": redis_url}
    result = subprocess.run(["make", "-s", "reset-password"], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    password = result.stdout.decode().strip().rsplit(" ", 1)[-1]
    assert len(password) >= 16 and verify_hash(password, client.get(streams.DASHBOARD_PASSWORD_HASH))
    assert not client.exists(f"{SESSION_PREFIX}abc")

    # A configured DASHBOARD_PASSWORD is the password: nothing is changed.
    stored = client.get(streams.DASHBOARD_PASSWORD_HASH)
    result = subprocess.run(
        [sys.executable, "scripts/reset_password.py"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        env={**env, "DASHBOARD_PASSWORD": "configured-one"},
    )
    assert result.returncode == 1 and b"DASHBOARD_PASSWORD is set" in result.stdout
    assert client.get(streams.DASHBOARD_PASSWORD_HASH) == stored


def test_reset_password_signs_in_to_make_runs_redis_as_the_api(tmp_path: Path) -> None:
    """No REDIS_URL: make run's password-protected Redis, as the api's user from var/secrets."""
    from services.api.auth import SESSION_PREFIX, verify_hash
    from shared import streams
    from tests.support.redis_server import start_redis

    var = tmp_path / "var"
    server = start_redis(var, acl=True)  # passwords in var/secrets, as make run keeps them
    admin = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        assert (var / "secrets" / "redis-passwords.json").is_file()
        admin.set(f"{SESSION_PREFIX}abc", "{}")
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(ROOT),
            "BOT_VAR_DIR": str(var),
            "REDIS_PORT": str(server.port),
        }
        result = subprocess.run(["make", "-s", "reset-password"], cwd=ROOT, env=env, capture_output=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        password = result.stdout.decode().strip().rsplit(" ", 1)[-1]
        assert verify_hash(password, admin.get(streams.DASHBOARD_PASSWORD_HASH))
        assert not admin.exists(f"{SESSION_PREFIX}abc")
        # Without the secrets it is refused by Redis, and says so without a password in the text.
        (var / "secrets" / "redis-passwords.json").rename(var / "secrets" / "moved.json")
        result = subprocess.run(
            [sys.executable, "scripts/reset_password.py"], cwd=ROOT, env=env, capture_output=True, timeout=60
        )
        assert result.returncode == 1 and b"could not reset the password" in result.stdout, (
            result.stdout + result.stderr
        )
        assert verify_hash(password, admin.get(streams.DASHBOARD_PASSWORD_HASH))
    finally:
        admin.close()
        server.stop()
