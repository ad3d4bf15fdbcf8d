"""The whole system as real processes: redis-server, the simulator and every service.

Tests use it to replay real candles through simulator -> market_data -> strategy -> executor
(and the api), to SIGKILL and restart services, and to run replicas.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis as SyncRedis

from shared import signing, streams
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer, start_redis

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    instance: str = ""

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass(frozen=True)
class Warm:
    """A process started held (``Stack.prepare``): imported, waiting for its line on stdin."""

    process: ServiceProcess
    held: Path


@dataclass
class Stack:
    folder: Path
    redis: RedisServer
    env: dict[str, str]
    sim_port: int
    api_port: int
    password: str = "stack-test-password"
    processes: dict[str, list[ServiceProcess]] = field(default_factory=dict)
    root: Path = ROOT  # the checkout whose services run (a benchmark's baseline runs another one)

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def client(self) -> SyncRedis:
        return SyncRedis.from_url(self.redis_url, decode_responses=True)

    def start(
        self,
        name: str,
        extra_env: dict[str, str] | None = None,
        *,
        held: Path | None = None,
        root: Path | None = None,
    ) -> ServiceProcess:
        """Start one more process of ``name`` (a replica when one runs already). With ``held``,
        the process imports its modules, touches ``held`` and waits for a line on its stdin.
        ``root``: the source tree to run it from (a benchmark's baseline checkout; the stack's
        own, ``Stack.root``, by default)."""
        tree = self.root if root is None else root
        replicas = self.processes.setdefault(name, [])
        log = self.folder / f"{name}-{len(replicas)}-{int(time.time() * 1000)}.log"
        instance = f"{name}-{len(replicas)}-{time.monotonic_ns()}"
        # Each service as its own ACL user: a permission missing from shared.streams.ACCESS breaks the replay.
        env = {**self.env, "REDIS_URL": self.redis.user_url(name), **(extra_env or {}), "INSTANCE_ID": instance}
        if tree != ROOT:
            env["PYTHONPATH"] = str(tree)
        command = (
            [sys.executable, "-m", f"services.{name}"]
            if held is None
            else [sys.executable, "-m", "tests.support.warm_start", name, str(held)]
        )
        handle = log.open("wb")
        process = subprocess.Popen(
            command,
            cwd=tree,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if held is not None else None,
        )
        handle.close()
        service = ServiceProcess(name, process, log, instance)
        replicas.append(service)
        return service

    def kill(self, name: str, index: int = -1) -> None:
        """SIGKILL one process of ``name``: no clean-up of any kind happens."""
        service = self.processes[name][index]
        service.process.send_signal(signal.SIGKILL)
        service.process.wait(10)

    def prepare(self, name: str) -> Warm:
        """A fresh process of ``name`` that imports its modules now and waits to be let run by
        ``restart``. A test that restarts at a given candle prepares before waiting for it: on a
        loaded machine the imports take seconds, dozens of candles at 240x, by which the kill
        would otherwise come late and the restarted service miss the candles it should trade."""
        held = self.folder / f"{name}-held-{time.monotonic_ns()}"
        return Warm(self.start(name, held=held), held)

    def restart(self, name: str, index: int = -1, pause_s: float = 0.5, warm: Warm | None = None) -> ServiceProcess:
        """SIGKILL one process of ``name`` and let a fresh one run ``pause_s`` later, its imports
        done before the kill (``warm`` from ``prepare``, or one prepared here): they alone take
        seconds on a loaded machine, which is not what a restart test is about."""
        old = [service for service in self.processes[name] if warm is None or service is not warm.process][index]
        fresh = warm or self.prepare(name)
        self.wait_for(
            lambda: fresh.held.exists() or not fresh.process.alive(), 180, f"a fresh {name} to import its modules"
        )
        old.process.send_signal(signal.SIGKILL)
        old.process.wait(10)
        time.sleep(pause_s)
        stdin = fresh.process.process.stdin
        assert stdin is not None
        stdin.write(b"run\n")
        stdin.close()
        return fresh.process

    def stop_all(self) -> None:
        for replicas in reversed(list(self.processes.values())):
            for service in replicas:
                if service.alive():
                    service.process.terminate()
        for replicas in self.processes.values():
            for service in replicas:
                try:
                    service.process.wait(10)
                except subprocess.TimeoutExpired:
                    service.process.kill()
                    service.process.wait(10)
        self.redis.stop()

    def logs(self, name: str) -> str:
        return "\n".join(s.log.read_text(errors="replace") for s in self.processes.get(name, []))

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise AssertionError(f"{url} did not answer; logs:\n{self.all_logs()}") from None
                time.sleep(0.1)

    def all_logs(self) -> str:
        return "\n".join(f"==== {name}\n{self.logs(name)[-4000:]}" for name in self.processes)

    def wait_for(self, predicate: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; logs:\n{self.all_logs()}")
            time.sleep(0.1)


def prepare_data(folder: Path, source: Path, symbol: str, start_row: int, rows: int) -> Path:
    """Write ``rows`` candles of ``source`` from ``start_row`` as ``<SYMBOL>_1m_replay.csv``."""
    import gzip

    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt") as handle:
        header = handle.readline()
        lines = [line for index, line in enumerate(handle) if start_row <= index < start_row + rows]
    target = folder / f"{symbol}_1m_replay.csv"
    target.write_text(header + "".join(lines))
    return target


def start_stack(
    folder: Path,
    *,
    data: list[Path],
    symbols: list[str],
    speed: float = 120,
    history: int = 120,
    services: tuple[str, ...] = ("market_data", "strategy", "executor"),
    extra_env: Mapping[str, str | None] | None = None,
    appendonly: bool = False,
    exchange_last: bool = False,
    root: Path = ROOT,
) -> Stack:
    """Start redis (with ``appendonly``, on an AOF that survives a SIGKILL), the simulator and
    ``services``; return once the simulator answers. With ``exchange_last`` the services start
    first and the simulator (and with it the replay clock) only once every service has loaded
    and beats its heartbeat: on a busy machine the first candles are then not lost to imports."""
    folder.mkdir(parents=True, exist_ok=True)
    server = start_redis(folder / "redis", appendonly=appendonly, acl=True)
    sim_port, api_port = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(root),
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": server.url,
        # The session's key (tests/conftest.py), or one for this run (bench): every service shares it.
        "BUS_SIGNING_KEY": os.environ.setdefault("BUS_SIGNING_KEY", signing.new_key()),
        "BINANCE_ENV": "sim",
        "SIM_URL": f"http://127.0.0.1:{sim_port}",
        "SYMBOLS": ",".join(symbols),
        "TIMEFRAME": "1m",
        "DATABASE_URL": f"sqlite:///{folder / 'bot.sqlite3'}",
        "EXCHANGE_SIM_PORT": str(sim_port),
        "EXCHANGE_SIM_DATA": ",".join(str(p) for p in data),
        "EXCHANGE_SIM_SPEED": str(speed),
        "EXCHANGE_SIM_HISTORY": str(history),
        "EXCHANGE_SIM_BALANCES": "USDT=10000",
        "EXCHANGE_SIM_SEED": "7",
        "API_PORT": str(api_port),
        "DASHBOARD_PASSWORD": "stack-test-password",
        "WARMUP_CANDLES": "1000",
        "SIGNAL_MAX_LAG_CANDLES": "100000",
        # No age limit unless a test sets one: the executor's ages are market time, so "none"
        # is a large number of candles / market ms (a test may still lower them).
        "SIGNAL_MAX_AGE_CANDLES": "100000",
        "MAX_DATA_AGE_MS": str(100_000 * 60_000),
        "LEASE_TTL_MS": "5000",
        "LOG_LEVEL": "INFO",
        # No metrics endpoints unless a test asks for them (parallel stacks would share 9101..).
        **dict.fromkeys(
            ("MARKET_DATA_METRICS_PORT", "STRATEGY_METRICS_PORT", "EXECUTOR_METRICS_PORT", "NOTIFIER_METRICS_PORT"), "0"
        ),
        # Started before the simulator, market_data must not back off for long once it is up:
        # every second of backoff at 240x is four candles the strategy sees only as history.
        **({"RECONNECT_MAX_DELAY_S": "1"} if exchange_last else {}),
        **(extra_env or {}),
    }
    present = {name: value for name, value in env.items() if value is not None}  # None in extra_env: unset
    stack = Stack(folder=folder, redis=server, env=present, sim_port=sim_port, api_port=api_port, root=root)
    try:
        if exchange_last:
            started = [stack.start(name) for name in services]
            client = stack.client()
            stack.wait_for(
                lambda: all(client.exists(streams.health_key(s.name, s.instance)) for s in started),
                180,
                "every service to load",
            )
        stack.start("exchange_sim")
        stack.wait_http(f"{stack.sim_url}/api/v3/ping")
        if not exchange_last:
            for name in services:
                stack.start(name)
    except BaseException:
        stack.stop_all()
        raise
    return stack
