"""A private redis-server for tests: its own port and data folder, never a shared server."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from shared.redis_acl import LocalBus, prepare_local
from shared.streams import BusUser
from tests.support.ports import free_port


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    folder: Path
    appendonly: bool = False
    bus: LocalBus | None = None  # the ACL users of shared.streams.ACCESS, when started with them

    @property
    def url(self) -> str:
        """The admin's URL (every right), for tests that set up and inspect."""
        plain = f"redis://127.0.0.1:{self.port}/0"
        return self.bus.admin_url(plain) if self.bus else plain

    def user_url(self, service: str) -> str:
        """Where ``service`` connects as its own ACL user (the admin URL without ACL users; no
        credentials at all for a process that has no user, such as the simulator)."""
        plain = f"redis://127.0.0.1:{self.port}/0"
        if self.bus is None:
            return self.url
        return self.bus.service_url(BusUser(service), plain) if service in set(BusUser) else plain

    def kill(self) -> None:
        """SIGKILL, as a crash would: only what reached the AOF survives."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def restart(self) -> None:
        """Start the server again on the same port and folder (reloading its AOF)."""
        self.process = _launch(self.port, self.folder, self.appendonly, self.bus)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_redis(folder: Path, appendonly: bool = False, port: int | None = None, acl: bool = False) -> RedisServer:
    """Start ``redis-server`` on a free port (or ``port``, to restart one on its data folder);
    fail loudly when the binary is missing.

    ``acl`` starts it as ``make run`` does: the generated ACL file, a password on every user.
    """
    folder.mkdir(parents=True, exist_ok=True)
    bus = prepare_local(folder, folder / "secrets") if acl else None
    port = port or free_port()
    return RedisServer(_launch(port, folder, appendonly, bus), port, folder, appendonly, bus)


def _launch(port: int, folder: Path, appendonly: bool, bus: LocalBus | None) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: run `make test` (it installs it) or `apt-get install redis-server`")
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--save",
        "",
        "--appendonly",
        "yes" if appendonly else "no",
        "--daemonize",
        "no",
        "--logfile",
        str(folder / "redis.log"),
        *(bus.server_args() if bus else []),
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_timeout=1, password=bus.admin_password if bus else None)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except (redis.ConnectionError, redis.BusyLoadingError):
            if process.poll() is not None or time.monotonic() > deadline:
                log = (folder / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server did not start; log: {log}") from None
            time.sleep(0.02)
        finally:
            client.close()
    return process
