"""The zygote the chaos run forks restarted services from (tests/support/zygote.py): a child
runs the real service with the environment it is given, and its end is reported the way
``subprocess`` reports it, a SIGKILL as -9 (the verdict tells kills from crashes by it)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.chaos.runner import Forked
from tests.support.stack import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_a_forked_service_runs_with_the_environment_given_and_reports_how_it_ended(tmp_path: Path) -> None:
    zygote = subprocess.Popen(
        [sys.executable, "-m", "tests.support.zygote", "market_data"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "TIMEFRAME": "1m"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    children: list[Forked] = []
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        assert zygote.stdout.readline().strip() == "ready"

        def fork(log: Path, env: dict[str, str]) -> Forked:
            assert zygote.stdin is not None and zygote.stdout is not None
            zygote.stdin.write(json.dumps({"log": str(log), "env": env}) + "\n")
            zygote.stdin.flush()
            return Forked(int(zygote.stdout.readline()), log)

        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "BINANCE_ENV": "sim",
            "SIM_URL": "http://127.0.0.1:1",
            "SYMBOLS": "BTCUSDT",
        }
        # A setting the real service refuses: it exits 2 naming the variable.
        refused = fork(tmp_path / "refused.log", {**base, "TIMEFRAME": "7x"})
        children.append(refused)
        assert refused.wait(60) == 2
        assert "TIMEFRAME" in (tmp_path / "refused.log").read_text()

        # A running one (its Redis accepts the connection and never answers) killed: -9.
        env = {**base, "REDIS_URL": f"redis://127.0.0.1:{silent.getsockname()[1]}/0", "INSTANCE_ID": "md-x"}
        running = fork(tmp_path / "running.log", env)
        children.append(running)
        time.sleep(0.5)
        assert running.poll() is None
        running.send_signal(signal.SIGKILL)
        assert running.wait(30) == -signal.SIGKILL
    finally:
        for child in children:  # a child outlives its zygote
            child.kill()
        zygote.stdin.close()
        zygote.kill()
        zygote.wait(10)
        zygote.stdout.close()
        silent.close()
