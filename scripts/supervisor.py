"""`make run`: a private redis-server, then every service as its own process.

Output is prefixed and coloured per service. A service that exits is started again after a
short pause, so `make restart SERVICE=strategy` (which only stops that process) restarts it
while the rest keep running. Ctrl-C stops everything, services first, Redis last.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared import redis_acl, signing  # noqa: E402 - after the repository is importable
from shared.streams import BusUser  # noqa: E402

VAR = Path(os.environ.get("BOT_VAR_DIR", ROOT / "var"))
RUN = VAR / "run"
SECRETS = VAR / "secrets"  # mode 700: Redis passwords and the bus signing key, each mode 600
COLOURS = {"redis": "90", "exchange_sim": "35", "market_data": "36", "strategy": "33", "executor": "32", "api": "34"}
SERVICES = ["exchange_sim", "market_data", "strategy", "executor", "api"]


def settings() -> dict[str, str]:
    values = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None} if (ROOT / ".env").exists() else {}
    values.update(os.environ)
    return values


async def pipe_output(name: str, stream: asyncio.StreamReader) -> None:
    prefix = f"\033[{COLOURS.get(name, '0')}m{name:>12} |\033[0m " if sys.stdout.isatty() else f"{name:>12} | "
    while line := await stream.readline():
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()


async def start_redis(env: dict[str, str]) -> tuple[asyncio.subprocess.Process | None, str, redis_acl.LocalBus | None]:
    if env.get("REDIS_URL"):
        return None, env["REDIS_URL"], None
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: run `sudo apt-get install redis-server` or set REDIS_URL")
    port = env.get("REDIS_PORT", "6380")
    folder = VAR / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    # Nobody reaches this Redis without a password: one ACL user per service (shared.streams.ACCESS).
    bus = redis_acl.prepare_local(folder, SECRETS)
    # Own session: Ctrl-C reaches only the supervisor, which stops Redis after every service.
    process = await asyncio.create_subprocess_exec(
        binary, "--port", port, "--bind", "127.0.0.1", "--dir", str(folder), "--appendonly", "yes",
        "--save", "", "--daemonize", "no", *bus.server_args(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )
    asyncio.create_task(pipe_output("redis", process.stdout))
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
            writer.write(b"PING\r\n")
            await writer.drain()
            if (await reader.readline()).startswith((b"+PONG", b"-NOAUTH")):  # up, and refusing strangers
                writer.close()
                return process, url, bus
            writer.close()
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"redis-server did not start on port {port}")


def service_env(name: str, env: dict[str, str], redis_url: str, bus: redis_acl.LocalBus | None) -> dict[str, str]:
    """``env`` with this service's own Redis user (none for the simulator, which uses no Redis)."""
    if bus is None:
        return env
    own = {k: v for k, v in env.items() if k not in ("REDIS_URL", "REDIS_PASSWORD")}  # compose's admin password
    if name in set(BusUser):
        own["REDIS_URL"] = bus.service_url(BusUser(name), redis_url)
    return own


async def keep_running(name: str, env: dict[str, str], stop: asyncio.Event) -> None:
    pid_file = RUN / f"{name}.pid"
    while not stop.is_set():
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"services.{name}", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )
        pid_file.write_text(str(process.pid))
        output = asyncio.create_task(pipe_output(name, process.stdout))
        waiter = asyncio.create_task(process.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set() and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
        stopper.cancel()
        await output
        pid_file.unlink(missing_ok=True)
        if not stop.is_set():
            print(f"{name:>12} | exited with {process.returncode}; starting it again in 1 s", flush=True)
            try:
                await asyncio.wait_for(stop.wait(), 1)
            except TimeoutError:
                pass


async def main() -> None:
    VAR.mkdir(parents=True, exist_ok=True, mode=0o700)
    RUN.mkdir(parents=True, exist_ok=True)
    env = settings()
    redis_process, redis_url, bus = await start_redis(env)
    child_env = {**env, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    if not env.get("BUS_SIGNING_KEY") and not env.get("BUS_SIGNING_KEY_FILE"):
        child_env["BUS_SIGNING_KEY_FILE"] = str(signing.ensure_key_file(SECRETS / "bus-signing.key"))
    # The paper account lives as long as the ledger does: both are kept under var/.
    if not child_env.get("EXCHANGE_SIM_STATE_FILE"):
        child_env["EXCHANGE_SIM_STATE_FILE"] = str(VAR / "sim" / "state.json")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    names = [n for n in SERVICES if n != "exchange_sim" or child_env.get("BINANCE_ENV", "sim") == "sim"]
    stops = {name: asyncio.Event() for name in names}
    tasks = {
        name: asyncio.create_task(keep_running(name, service_env(name, child_env, redis_url, bus), stops[name]))
        for name in names
    }
    host, port = child_env.get("API_HOST", "127.0.0.1"), child_env.get("API_PORT", "8000")
    print(f"\n  dashboard: http://{host}:{port}/   (the api prints the login password on its first start)\n"
          f"  restart one service: make restart SERVICE=strategy    stop: Ctrl-C\n", flush=True)
    await stop.wait()
    print("stopping services...", flush=True)
    # The reverse of the start order: consumers before producers, the market last.
    for name in reversed(names):
        stops[name].set()
        await tasks[name]
    if redis_process is not None:
        redis_process.terminate()
        await redis_process.wait()
    print("stopped.", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
