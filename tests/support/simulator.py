"""Run the exchange simulator as a real subprocess in tests, and point real clients at it.

    with start_simulator(tmp_path, speed=600) as sim:
        client = await make_python_binance_client(sim)
        ...

or as a fixture: ``sim = simulator_fixture(speed=600)`` at module level of a test file or conftest.
Every wait is bounded; a simulator that does not come up raises SimulatorError with its log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED_DATA = (
    REPO_ROOT / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz",
    REPO_ROOT / "data" / "ETHUSDT_1m_2025-05-20_2025-05-27.csv.gz",
)
SIM_KEY = "sim-key"
SIM_SECRET = "sim-secret"


class SimulatorError(RuntimeError):
    """The simulator process did not start or did not answer in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SimulatorProcess:
    """One ``python -m services.exchange_sim`` subprocess and the methods that drive it."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path, ready_timeout: float) -> None:
        self.env = env
        self.port = port
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.base_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.api_key = env["EXCHANGE_SIM_API_KEY"]
        self.api_secret = env["EXCHANGE_SIM_API_SECRET"]
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def start(self) -> SimulatorProcess:
        """Start the process and wait until ``/api/v3/ping`` answers."""
        if self.running:
            raise SimulatorError("the simulator is already running")
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.exchange_sim"],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_ready(self.ready_timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Wait until this process has bound its port (its log says so) and answers a ping."""
        deadline = time.monotonic() + timeout
        bound = f"on {self.base_url} "
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise SimulatorError(f"simulator exited with {self.proc.returncode}:\n{self.log_text()}")
            written = self.log_path.read_bytes()[self._log_start :] if self.log_path.exists() else b""
            if bound.encode() not in written:
                time.sleep(0.05)
                continue
            try:
                with urllib.request.urlopen(self.base_url + "/api/v3/ping", timeout=1) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        self.kill()
        raise SimulatorError(f"simulator did not answer within {timeout} s:\n{self.log_text()}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self, **env: str) -> SimulatorProcess:
        """Stop (SIGTERM) if running, optionally change ``EXCHANGE_SIM_*`` values, start again."""
        self.stop()
        self.env.update(env)
        return self.start()

    def log_text(self) -> str:
        """Everything the process (and earlier runs of it) wrote."""
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> SimulatorProcess:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def admin(self, path: str, body: Mapping[str, Any] | None = None, method: str = "POST") -> Any:
        """Call ``/_sim/<path>`` and return the decoded JSON (raises on HTTP errors)."""
        data = json.dumps(dict(body or {})).encode() if method != "GET" else None
        request = urllib.request.Request(
            f"{self.base_url}/_sim/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def state(self) -> dict[str, Any]:
        return self.admin("state", method="GET")

    def fail_next(
        self, count: int = 1, *, status: int = 500, execute: bool = False, path_prefix: str | None = None
    ) -> Any:
        return self.admin(
            "faults/fail", {"count": count, "status": status, "execute": execute, "path_prefix": path_prefix}
        )

    def throttle_next(
        self, count: int = 1, *, status: int = 429, retry_after: int = 10, path_prefix: str | None = None
    ) -> Any:
        return self.admin(
            "faults/throttle",
            {"count": count, "status": status, "retry_after": retry_after, "path_prefix": path_prefix},
        )

    def timestamp_errors(self, count: int = 1) -> Any:
        return self.admin("faults/timestamp", {"count": count})

    def set_clock_offset(self, offset_ms: int) -> Any:
        return self.admin("faults/clock", {"offset_ms": offset_ms})

    def delay_next(self, ms: int, count: int = 1, *, path_prefix: str | None = None, after: bool = False) -> Any:
        return self.admin("faults/delay", {"count": count, "ms": ms, "path_prefix": path_prefix, "after": after})

    def stall_streams(self, seconds: float | None = None) -> Any:
        return self.admin("faults/stall", {"seconds": seconds})

    def reset_faults(self) -> Any:
        return self.admin("faults/reset")

    def drop_websockets(self) -> Any:
        return self.admin("ws/drop")

    def end_user_streams(self) -> Any:
        return self.admin("ws/terminate")

    def server_shutdown(self) -> Any:
        return self.admin("ws/shutdown")

    def set_balances(self, amounts: Mapping[str, str | int]) -> Any:
        return self.admin("balances", {k: str(v) for k, v in amounts.items()})

    def sign(self, payload: str) -> str:
        return hmac.new(self.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()

    def signed_query(self, params: Mapping[str, Any], timestamp: int | None = None) -> str:
        """``k=v&...&timestamp=...&signature=...`` signed with the simulator's secret."""
        items = [*params.items(), ("timestamp", timestamp if timestamp is not None else int(time.time() * 1000))]
        query = urlencode(items)
        return f"{query}&signature={self.sign(query)}"


def start_simulator(
    tmp_path: Path,
    *,
    data: Sequence[str | Path] | None = BUNDLED_DATA,
    speed: float = 600,
    history: int = 500,
    balances: str | Mapping[str, str | int] = "USDT=10000",
    extra_env: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
) -> SimulatorProcess:
    """Start a simulator on a free loopback port with its log in ``tmp_path``; returns once it answers.

    ``data=None`` leaves ``EXCHANGE_SIM_DATA`` unset so the simulator's own default applies.
    """
    if not isinstance(balances, str):
        balances = ",".join(f"{k}={v}" for k, v in balances.items())
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_SIM_")}
    env.update(
        {
            "PYTHONDONTWRITEBYTECODE": "1",
            "EXCHANGE_SIM_HOST": "127.0.0.1",
            "EXCHANGE_SIM_API_KEY": SIM_KEY,
            "EXCHANGE_SIM_API_SECRET": SIM_SECRET,
            "EXCHANGE_SIM_SPEED": str(speed),
            "EXCHANGE_SIM_HISTORY": str(history),
            "EXCHANGE_SIM_BALANCES": balances,
        }
    )
    if data is not None:
        env["EXCHANGE_SIM_DATA"] = ",".join(str(p) for p in data)
    env.update(extra_env or {})
    tmp_path.mkdir(parents=True, exist_ok=True)
    fixed_port = "EXCHANGE_SIM_PORT" in env
    for attempt in range(3):  # a free port can be taken by someone else before the simulator binds it
        port = int(env["EXCHANGE_SIM_PORT"]) if fixed_port else free_port()
        sim = SimulatorProcess(
            {**env, "EXCHANGE_SIM_PORT": str(port)}, port, tmp_path / f"exchange_sim_{port}.log", ready_timeout
        )
        try:
            return sim.start()
        except SimulatorError as exc:
            if fixed_port or attempt == 2 or "address already in use" not in str(exc).lower():
                raise
    raise SimulatorError("no free port")


def simulator_fixture(scope: str = "module", **start_kwargs: Any) -> Any:
    """A pytest fixture yielding a started simulator, stopped after its scope."""
    import pytest

    @pytest.fixture(scope=scope)
    def _simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
        with start_simulator(tmp_path_factory.mktemp("exchange_sim"), **start_kwargs) as sim:
            yield sim

    return _simulator


async def make_python_binance_client(
    sim: SimulatorProcess, ws_read_timeout: float | None = 0.5, **create_kwargs: Any
) -> Any:
    """A python-binance ``AsyncClient`` on the simulator (reference section 9).

    ``API_URL`` and ``WS_API_URL`` are read by the client's constructor, so they are overridden on
    a subclass made for this simulator rather than on ``BaseClient`` itself. python-binance's
    WebSocket API connection only notices a close after a read times out (10 s by default), which
    would make ``close_connection()`` take 10 s; ``ws_read_timeout`` shortens that wait.
    """
    from binance import AsyncClient

    client_class = type(
        "SimulatorAsyncClient",
        (AsyncClient,),
        {
            "API_URL": sim.base_url + "/api",
            "WS_API_URL": sim.ws_url + "/ws-api/v3",
        },
    )
    client = await client_class.create(sim.api_key, sim.api_secret, **create_kwargs)
    if ws_read_timeout is not None:
        client.ws_api.TIMEOUT = ws_read_timeout
    return client


def make_socket_manager(client: Any, sim: SimulatorProcess, max_queue_size: int = 10_000) -> Any:
    """A ``BinanceSocketManager`` whose market streams go to the simulator (instance attribute)."""
    from binance import BinanceSocketManager

    manager = BinanceSocketManager(client, max_queue_size=max_queue_size)
    manager.STREAM_URL = sim.ws_url + "/"
    return manager


def ccxt_config(sim: SimulatorProcess, *, pro: bool = False) -> dict[str, Any]:
    """ccxt ``binance`` options pointing every spot URL at the simulator (reference section 10)."""
    base = sim.base_url
    api: dict[str, Any] = {
        "public": base + "/api/v3",
        "private": base + "/api/v3",
        "v1": base + "/api/v1",
        "sapi": base + "/sapi/v1",
    }
    if pro:
        api["ws"] = {"spot": sim.ws_url + "/ws", "ws-api": {"spot": sim.ws_url + "/ws-api/v3"}}
    return {
        "apiKey": sim.api_key,
        "secret": sim.api_secret,
        "urls": {"api": api},
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
    }


def make_ccxt_client(sim: SimulatorProcess, *, pro: bool = False) -> Any:
    """An async ccxt ``binance`` (or ``ccxt.pro.binance`` with ``pro``) on the simulator."""
    if pro:
        import ccxt.pro as ccxt_pro

        return ccxt_pro.binance(ccxt_config(sim, pro=True))
    import ccxt.async_support as ccxt_async

    return ccxt_async.binance(ccxt_config(sim))
