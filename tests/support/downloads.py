"""Helpers of the download tests: the command as a subprocess, the store read back, reference klines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared import kline_store
from tests.support.simulator import SimulatorProcess, make_python_binance_client

REPO_ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000
Row = tuple[Any, ...]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def counts(self, symbol: str) -> tuple[int, int, int]:
        """``(stored, new, requests)`` the command reported for ``symbol``."""
        match = re.search(
            rf"^{symbol} \S+ .*: ([\d,]+) candles stored \(([\d,]+) new, ([\d,]+) requests\)", self.stdout, re.MULTILINE
        )
        assert match, self.stdout + self.stderr
        stored, new, requests = (int(g.replace(",", "")) for g in match.groups())
        return stored, new, requests


def download_env(sim: SimulatorProcess | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BINANCE_ENV", "SIM_URL", "BINANCE_ARCHIVE_URL")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if sim is not None:
        env.update(BINANCE_ENV="sim", SIM_URL=sim.base_url)
    env.update(extra)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "research.data", *args]


def run_download(*args: str, env: dict[str, str], timeout: float = 120) -> Outcome:
    """``python -m research.data ARGS`` to completion."""
    done = subprocess.run(
        command(*args), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def stored_rows(folder: Path) -> list[Row]:
    """Every stored candle under ``folder`` (one series) as Binance's fields, decimals as Decimal."""
    _, _, table = kline_store.read_series(folder)
    columns = [table.column(name).to_pylist() for name in kline_store.FIELDS]
    return [tuple(values) for values in zip(*columns, strict=True)]


def as_stored(kline: list[Any]) -> Row:
    """A REST kline row in the stored form (the unused 12th field dropped)."""
    return tuple(
        Decimal(v) if name in kline_store.DECIMAL_FIELDS else int(v)
        for name, v in zip(kline_store.FIELDS, kline, strict=False)
    )  # REST rows carry a 12th field


async def reference_klines(sim: SimulatorProcess, symbol: str, start: int, end: int) -> list[Row]:
    """The simulator's klines opened in ``[start, end)``, fetched by python-binance's own pager."""
    client = await make_python_binance_client(sim)
    try:
        rows = await client.get_historical_klines(symbol, "1m", start_str=start, end_str=end - 1)
    finally:
        await client.close_connection()
    return [as_stored(r) for r in rows if start <= int(r[0]) < end]


def first_open_time(sim: SimulatorProcess, symbol: str) -> int:
    with urllib.request.urlopen(
        f"{sim.base_url}/api/v3/klines?symbol={symbol}&interval=1m&startTime=0&limit=1", timeout=10
    ) as response:
        return int(json.loads(response.read())[0][0])


def klines_requests(sim: SimulatorProcess) -> int:
    return int(sim.state()["requests"].get("GET /api/v3/klines", 0))


def iso_arg(ms: int) -> str:
    from research.data.timespan import iso

    return iso(ms)


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}
