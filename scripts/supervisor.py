"""`make run`: a private redis-server, then every service as its own process.

    python scripts/supervisor.py                 run everything (make run)
    python scripts/supervisor.py stop            stop a running `make run` (make stop)
    python scripts/supervisor.py restart NAME    restart one service of it (make restart)

It owns its ports or refuses to start: Redis, simulator and api ports are checked before
anything starts, and a taken one ends the run at once with the port, the variable that moves
it and the process holding it. Readiness means the answering process is the one started here
(the port's listening socket belongs to that child's pid; Redis also reports its pid), never
just any server on the port. Services start in order, each after its upstream answers, so a
normal start logs no "cannot connect".

Redis takes no client without a password: one ACL user per service (``shared.streams.ACCESS``),
passwords and the bus signing key under ``var/secrets/`` (mode 700, files 600), and every
service connects as its own user over a unix socket only this user may open.

One process tree: SIGINT, SIGTERM and SIGHUP stop every service in reverse order, then Redis;
each child asks the kernel to be sent SIGTERM if the supervisor dies (PR_SET_PDEATHSIG), so no
child outlives it even after a SIGKILL. Pid files (``var/run/<service>.pid`` and
``var/supervisor.pid``) are removed on exit; `restart` and `stop` signal a pid only after
checking it is still that process of this run. Output is prefixed and coloured per service;
a service that exits is started again after a short pause.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from processes import (
    Port,
    alive,
    command_line,
    die_with_parent,
    environment,
    holder_text,
    listeners,
    port_free,
    start_time,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared import redis_acl, signing
from shared.settings import ServiceSettings
from shared.streams import BusUser

VAR = Path(os.environ.get("BOT_VAR_DIR", ROOT / "var"))
RUN = VAR / "run"
SECRETS = VAR / "secrets"  # mode 700: Redis passwords and the bus signing key, each mode 600
SUPERVISOR_PID = VAR / "supervisor.pid"
COLOURS = {
    "redis": "90",
    "exchange_sim": "35",
    "market_data": "36",
    "strategy": "33",
    "executor": "32",
    "notifier": "95",
    "api": "34",
}
# The api last: the dashboard URL is printed once it answers.
SERVICES = ["exchange_sim", "market_data", "strategy", "executor", "notifier", "api"]
READY_TIMEOUT_S = 60.0
STOP_BUDGET_S = 11.0  # every child is gone well within 15 s of a stop signal
PER_CHILD_WAIT_S = 3.0
RUN_ID_VARIABLE = "BOT_RUN_ID"


class StartFailed(Exception):
    """`make run` cannot start (a port is taken, a service never became ready)."""


def settings() -> tuple[dict[str, str], set[str]]:
    """The environment over ``.env``, and the names set explicitly (non-empty) in either."""
    values = (
        {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None} if (ROOT / ".env").exists() else {}
    )
    values.update(os.environ)
    return values, {name for name, value in values.items() if value != ""}


def say(message: str) -> None:
    write(f"{'make run':>12} | {message}\n")


def write(text: str) -> None:
    # After a SIGHUP the terminal may be gone: output is lost, the shutdown must go on.
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


async def pipe_output(name: str, stream: asyncio.StreamReader) -> None:
    prefix = f"\033[{COLOURS.get(name, '0')}m{name:>12} |\033[0m " if sys.stdout.isatty() else f"{name:>12} | "
    while line := await stream.readline():
        write(prefix + line.decode(errors="replace"))


def planned_ports(env: dict[str, str], with_redis: bool, with_sim: bool) -> list[Port]:
    """Every port this run will bind, with the variable that moves it."""
    ports = []
    if with_redis:
        ports.append(Port("redis", "127.0.0.1", int(env.get("REDIS_PORT") or 6380), "REDIS_PORT"))
    if with_sim:
        ports.append(
            Port(
                "exchange_sim",
                env.get("EXCHANGE_SIM_HOST") or "127.0.0.1",
                int(env.get("EXCHANGE_SIM_PORT") or 9100),
                "EXCHANGE_SIM_PORT",
            )
        )
    ports.append(Port("api", env.get("API_HOST") or "127.0.0.1", int(env.get("API_PORT") or 8000), "API_PORT"))
    return ports


def check_ports(ports: list[Port]) -> None:
    """Refuse to start when a port is taken (or two services were given the same one)."""
    seen: dict[int, Port] = {}
    for port in ports:
        if port.port in seen:
            raise StartFailed(
                f"port {port.port} is given to both {seen[port.port].service} ({seen[port.port].variable}) "
                f"and {port.service} ({port.variable}); set one of them to another port"
            )
        seen[port.port] = port
        if not port_free(port.host, port.port):
            raise StartFailed(port_taken(port))


def port_taken(port: Port) -> str:
    return (
        f"port {port.port} for {port.service} is already in use by {holder_text(port.port)}; "
        f"stop it or set {port.variable} to a free port"
    )


def client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def ours(port: Port | None, pid: int | None) -> bool:
    """Whether the listening socket on ``port`` belongs to the child ``pid``."""
    return port is not None and pid is not None and pid in listeners(port.port)


def http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (e.g. 503 while degraded)
    except Exception:  # noqa: BLE001 - not up yet
        return False


def resp_command(*parts: str) -> bytes:
    """One command in the Redis protocol (any bytes in a part, a password included)."""
    encoded = [part.encode() for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in encoded)


async def redis_answers(port: int, pid: int | None, admin_password: str) -> bool:
    """The admin signs in, PING answers and ``INFO server`` names the pid started here (None: not running)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(resp_command("AUTH", redis_acl.ADMIN_USER, admin_password) + b"PING\r\nINFO server\r\n")
        await writer.drain()
        if not (await asyncio.wait_for(reader.readline(), 2)).startswith(b"+OK"):
            return False
        if not (await asyncio.wait_for(reader.readline(), 2)).startswith(b"+PONG"):
            return False
        size = int((await asyncio.wait_for(reader.readline(), 2))[1:])
        info = (await asyncio.wait_for(reader.readexactly(size + 2), 2)).decode(errors="replace")
        return f"process_id:{pid}\r" in info
    except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
        return False
    finally:
        writer.close()


class Child:
    """One service kept running: started again when it exits, until asked to stop."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], port: Port | None, pid_file: Path | None
    ) -> None:
        self.name, self.argv, self.env, self.port, self.pid_file = name, argv, env, port, pid_file
        self.process: asyncio.subprocess.Process | None = None
        self.stopping = asyncio.Event()
        self.failed: str = ""
        self.task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    async def spawn(self) -> None:
        parent = os.getpid()
        # Own session: a Ctrl-C reaches only the supervisor, which stops services in order;
        # the death signal makes the child stop if the supervisor dies without doing so.
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: die_with_parent(parent),
        )
        if self.pid_file is not None:
            self.pid_file.write_text(str(self.process.pid))

    async def keep_running(self, abort: asyncio.Event) -> None:
        restart = False
        while not self.stopping.is_set():
            if restart and self.port is not None and not port_free(self.port.host, self.port.port):
                # Someone else took the port while the service was down: restarting would
                # only fail again, every second, forever.
                self.failed = f"{self.name} cannot start again: {port_taken(self.port)}"
                abort.set()
                return
            await self.spawn()
            assert self.process is not None and self.process.stdout is not None
            output = asyncio.create_task(pipe_output(self.name, self.process.stdout))
            waiter = asyncio.create_task(self.process.wait())
            stopper = asyncio.create_task(self.stopping.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if self.process.returncode is None:
                await waiter
            await output
            if self.pid_file is not None:
                self.pid_file.unlink(missing_ok=True)
            if not self.stopping.is_set():
                say(f"{self.name} exited with {self.process.returncode}; starting it again in 1 s")
                restart = True
                try:
                    await asyncio.wait_for(self.stopping.wait(), 1)
                except TimeoutError:
                    pass

    def terminate(self) -> None:
        """Ask the current process to stop (SIGTERM); it is not started again."""
        self.stopping.set()
        if self.process is not None and self.process.returncode is None:
            try:
                self.process.terminate()
            except ProcessLookupError:
                pass

    async def wait_gone(self, timeout: float) -> bool:
        """Whether the process has exited within ``timeout`` seconds."""
        if self.process is None or self.process.returncode is not None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self.process.wait()), max(timeout, 0.05))
        except TimeoutError:
            return False
        return True

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            say(f"{self.name} did not stop in time; killing it")
            try:
                self.process.kill()
            except ProcessLookupError:
                pass
            await self.process.wait()
        if self.task is not None:
            await self.task


async def stop_all(children: list[Child]) -> None:
    """Stop in the reverse of the start order (consumers before producers, Redis last).

    Each gets SIGTERM and a few seconds before the next one is asked; whatever is still
    running when the budget is spent is killed, so the tree is gone within 15 s.
    """
    deadline = time.monotonic() + STOP_BUDGET_S
    for child in children:
        child.stopping.set()  # none is started again while the others stop
    services = [child for child in reversed(children) if child.name != "redis"]
    for child in services:
        child.terminate()
        await child.wait_gone(min(PER_CHILD_WAIT_S, deadline - time.monotonic()))
    for child in services:
        if not await child.wait_gone(deadline - time.monotonic()):
            await child.kill()
        elif child.task is not None:
            await child.task
    for child in children:
        if child.name == "redis":
            child.terminate()
            if not await child.wait_gone(max(deadline - time.monotonic(), 3.0)):
                await child.kill()
            elif child.task is not None:
                await child.task


async def wait_ready(child: Child, check: Any, what: str, abort: asyncio.Event) -> None:
    """Until ``check()`` is true for the child started here; StartFailed on timeout or abort."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and not abort.is_set():
        if child.pid is not None and await check():
            return
        await asyncio.sleep(0.2)
    if abort.is_set():
        raise StartFailed(child.failed or "stopped while starting")
    if child.port is not None and not port_free(child.port.host, child.port.port) and not ours(child.port, child.pid):
        raise StartFailed(f"{child.name}: {port_taken(child.port)}")
    raise StartFailed(f"{child.name} did not become ready ({what}) within {READY_TIMEOUT_S:g} s")


def child_environment(
    env: dict[str, str], explicit: set[str], run_id: str, redis_url: str, with_sim: bool
) -> dict[str, str]:
    child = {**env, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", RUN_ID_VARIABLE: run_id}
    if not env.get("BUS_SIGNING_KEY") and not env.get("BUS_SIGNING_KEY_FILE"):
        child["BUS_SIGNING_KEY_FILE"] = str(signing.ensure_key_file(SECRETS / "bus-signing.key"))
    # The paper account lives as long as the ledger does: both are kept under var/.
    if not child.get("EXCHANGE_SIM_STATE_FILE"):
        child["EXCHANGE_SIM_STATE_FILE"] = str(VAR / "sim" / "state.json")
    if with_sim:
        host = client_host(env.get("EXCHANGE_SIM_HOST") or "127.0.0.1")
        sim_url = f"http://{host}:{int(env.get('EXCHANGE_SIM_PORT') or 9100)}"
        if "SIM_URL" not in explicit:
            child["SIM_URL"] = sim_url  # one setting per fact: the port the simulator is started on
        elif child["SIM_URL"].rstrip("/") != sim_url:
            say(
                f"note: SIM_URL={child['SIM_URL']} is set, so the services do not use the simulator started "
                f"on {sim_url}; unset SIM_URL to follow EXCHANGE_SIM_PORT"
            )
    return child


def service_env(name: str, env: dict[str, str], redis_url: str, bus: redis_acl.LocalBus | None) -> dict[str, str]:
    """``env`` with this service's own Redis user (none for the simulator, which uses no Redis)."""
    if bus is None:
        return env
    own = {k: v for k, v in env.items() if k not in ("REDIS_URL", "REDIS_PASSWORD")}  # compose's admin password
    if name in set(BusUser):
        own["REDIS_URL"] = bus.service_url(BusUser(name), redis_url)
    return own


def metrics_summary(env: dict[str, str], api_url: str) -> str:
    """Where each service serves Prometheus metrics (``<SERVICE>_METRICS_PORT``, 0 is off)."""
    host = client_host(env.get("METRICS_HOST") or "127.0.0.1")
    served = []
    for name in ("market_data", "strategy", "executor", "notifier", "api"):
        field = f"{name}_metrics_port"
        port = int(env.get(field.upper()) or ServiceSettings.model_fields[field].default)
        if port:
            served.append(f"{name} http://{host}:{port}/metrics")
    served.append(f"api {api_url}/api/metrics (signed in, or a token: make token ADD=prometheus ROLE=viewer)")
    return "metrics: " + ", ".join(served)


async def supervise(stop: asyncio.Event) -> int:
    env, explicit = settings()
    with_redis = not env.get("REDIS_URL")
    with_sim = env.get("BINANCE_ENV", "sim") == "sim"
    try:
        check_running()
        ports = planned_ports(env, with_redis, with_sim)
        check_ports(ports)
    except (StartFailed, ValueError) as e:
        say(f"error: {e}")
        return 1
    by_service = {port.service: port for port in ports}
    VAR.mkdir(parents=True, exist_ok=True, mode=0o700)
    RUN.mkdir(parents=True, exist_ok=True)
    for stale in RUN.glob("*.pid"):
        stale.unlink(missing_ok=True)  # no supervisor of this folder is alive (checked above)
    run_id = uuid.uuid4().hex
    SUPERVISOR_PID.write_text(f"{os.getpid()} {start_time(os.getpid())} {run_id}\n")
    abort = asyncio.Event()
    children: list[Child] = []
    try:
        redis_url = env.get("REDIS_URL", "")
        bus: redis_acl.LocalBus | None = None
        if with_redis:
            redis, bus = await start_redis(env, by_service["redis"], abort)
            children.append(redis)
            admin = bus.admin_password
            if await first_of(
                stop,
                wait_ready(redis, lambda: redis_answers(by_service["redis"].port, redis.pid, admin), "PING", abort),
            ):
                return 0
            redis_url = f"redis://127.0.0.1:{by_service['redis'].port}/0"
        child_env = child_environment(env, explicit, run_id, redis_url, with_sim)
        names = [n for n in SERVICES if n != "exchange_sim" or with_sim]
        for name in names:
            child = Child(
                name,
                [sys.executable, "-m", f"services.{name}"],
                service_env(name, child_env, redis_url, bus),
                by_service.get(name),
                RUN / f"{name}.pid",
            )
            child.task = asyncio.create_task(child.keep_running(abort))
            children.append(child)
            if name == "exchange_sim":
                port = by_service[name]
                url = f"http://{client_host(port.host)}:{port.port}/api/v3/ping"
                if await first_of(
                    stop, wait_ready(child, lambda c=child, u=url: _http_ours(c, u), "GET /api/v3/ping", abort)
                ):
                    return 0
        api = children[-1]
        port = by_service["api"]
        health = f"http://{client_host(port.host)}:{port.port}/api/health"
        if await first_of(stop, wait_ready(api, lambda: _http_ours(api, health), "GET /api/health", abort)):
            return 0
        say(
            f"dashboard: http://{client_host(port.host)}:{port.port}/   "
            "(the api prints the login password on its first start; lost it? make reset-password)"
        )
        say(metrics_summary(env, f"http://{client_host(port.host)}:{port.port}"))
        say("restart one service: make restart SERVICE=strategy    stop: Ctrl-C or make stop")
        await first_of(stop, abort.wait())
        if abort.is_set() and not stop.is_set():
            raise StartFailed(next((c.failed for c in children if c.failed), "a service failed"))
        return 0
    except StartFailed as e:
        say(f"error: {e}")
        return 1
    finally:
        say("stopping services...")
        await stop_all(children)
        SUPERVISOR_PID.unlink(missing_ok=True)
        say("stopped.")


async def _http_ours(child: Child, url: str) -> bool:
    return await asyncio.to_thread(http_answers, url) and ours(child.port, child.pid)


async def first_of(stop: asyncio.Event, work: Any) -> bool:
    """Run ``work`` unless a stop signal comes first; True when stopped."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True
    task.result()
    return stop.is_set()


async def start_redis(env: dict[str, str], port: Port, abort: asyncio.Event) -> tuple[Child, redis_acl.LocalBus]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise StartFailed("redis-server is not installed: run `sudo apt-get install redis-server` or set REDIS_URL")
    folder = VAR / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    # Nobody reaches this Redis without a password: one ACL user per service (shared.streams.ACCESS).
    bus = redis_acl.prepare_local(folder, SECRETS)
    argv = [
        binary,
        "--port",
        str(port.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--appendonly",
        "yes",
        "--save",
        "",
        "--daemonize",
        "no",
        *bus.server_args(),
    ]
    child = Child("redis", argv, dict(os.environ), port, None)
    child.task = asyncio.create_task(child.keep_running(abort))
    return child, bus


def read_supervisor() -> tuple[int, str] | None:
    """(pid, run id) of the live supervisor of this folder, None when there is none.

    The pid counts only while it is still the process that wrote the file (same start time,
    a supervisor command line); a stale file is removed.
    """
    try:
        pid_text, started, run_id = SUPERVISOR_PID.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if alive(pid) and start_time(pid) == started and "supervisor.py" in command_line(pid):
        return pid, run_id
    SUPERVISOR_PID.unlink(missing_ok=True)
    return None


def check_running() -> None:
    running = read_supervisor()
    if running is not None:
        raise StartFailed(f"make run is already running here (pid {running[0]}); `make stop` stops it")


def stop_command() -> int:
    """`make stop`: SIGTERM the supervisor of this folder and wait until it has exited."""
    running = read_supervisor()
    if running is None:
        print("make run is not running (no live supervisor for this folder)")
        return 0
    pid, _ = running
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        print(f"make run (pid {pid}) did not stop within 30 s")
        return 1
    print(f"make run (pid {pid}) stopped")
    return 0


def restart_command(name: str) -> int:
    """`make restart SERVICE=name`: SIGTERM that service only if its pid is still it."""
    if name not in SERVICES:
        print(f"usage: make restart SERVICE={'|'.join(SERVICES)}")
        return 2
    running = read_supervisor()
    pid_file = RUN / f"{name}.pid"
    if running is None:
        print(f"{name} is not running under make run")
        return 1
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        print(f"{name} is not running under make run (no pid file)")
        return 1
    if not (
        alive(pid) and f"services.{name}" in command_line(pid) and environment(pid).get(RUN_ID_VARIABLE) == running[1]
    ):
        print(f"{pid_file} names pid {pid}, which is not {name} of this make run; nothing was signalled")
        return 1
    os.kill(pid, signal.SIGTERM)
    print(f"{name} stopped; make run starts it again")
    return 0


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "run"
    if command == "stop":
        return stop_command()
    if command == "restart":
        return restart_command(sys.argv[2] if len(sys.argv) > 2 else "")
    if command != "run":
        print(__doc__)
        return 2
    # Die with whoever started us (make): closing the terminal or killing make stops the tree.
    die_with_parent()
    return asyncio.run(_run())


async def _run() -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    return await supervise(stop)


if __name__ == "__main__":
    sys.exit(main())
