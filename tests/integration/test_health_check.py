"""`python -m services.<name> --check`: what compose healthchecks run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import redis

from shared import streams
from shared.codec import dumps
from shared.events import now_ms

ROOT = Path(__file__).resolve().parents[2]


def check(service: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "REDIS_URL": redis_url}
    return subprocess.run(
        [sys.executable, "-m", f"services.{service}", "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_follows_this_hosts_heartbeat(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert check("strategy", redis_url).returncode == 1
    instance = f"{socket.gethostname()}-4242"
    key = streams.health_key("strategy", instance)
    client.set(key, dumps({"service": "strategy", "instance": instance, "ts_ms": now_ms()}), ex=10)
    assert check("strategy", redis_url).returncode == 0
    assert check("executor", redis_url).returncode == 1  # another service's heartbeat does not count
    client.set(key, dumps({"service": "strategy", "instance": instance, "ts_ms": now_ms() - 60_000}), ex=10)
    assert check("strategy", redis_url).returncode == 1  # too old
    client.close()


def test_check_fails_when_redis_is_unreachable() -> None:
    result = check("market_data", "redis://127.0.0.1:1/0")
    assert result.returncode == 1 and "unhealthy" in result.stdout
