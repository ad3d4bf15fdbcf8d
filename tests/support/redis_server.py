"""A private redis-server for tests: its own port and data folder, never a shared server."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.ports import free_port


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_redis(folder: Path, appendonly: bool = False, port: int | None = None) -> RedisServer:
    """Start ``redis-server`` on a free port (or ``port``, to restart one on its data folder);
    fail loudly when the binary is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: run `make test` (it installs it) or `apt-get install redis-server`")
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
        "--appendonly", "yes" if appendonly else "no", "--daemonize", "no", "--logfile", str(folder / "redis.log"),
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; log: {(folder / 'redis.log').read_text(errors='replace')}")
            time.sleep(0.02)
        finally:
            client.close()
    return RedisServer(process, port, folder)
