"""Benchmark of the exchange simulator's market streams (standalone script, not a test).

Builds 20 symbol files from the shared real candles (BTCUSDT, ETHUSDT, DOGEUSDT and price-scaled
copies named S01USDT..S17USDT), starts the simulator at speed 60 (one 1-minute candle per wall
second), connects one combined-stream client subscribed to every symbol's miniTicker and
kline_1m, and reports messages/s, kline closes/s and the simulator's CPU and RSS. Baselines
from the same run: the same client against a 1-symbol simulator, and the 20-symbol simulator
with no client.

    .venv/bin/python bench/bench_exchange_sim.py [seconds=30] [--symbols 20] [--speed 60]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data"))
SOURCES = {
    "BTCUSDT": SHARED / "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz",
    "ETHUSDT": SHARED / "ETHUSDT_1m_2025-05-20_2025-08-18.csv.gz",
    "DOGEUSDT": SHARED / "DOGEUSDT_1m_2023-03-16_2023-05-01.csv.gz",
}
ROWS = 3000  # history (500) plus far more candles than a run replays
TICKS = os.sysconf("SC_CLK_TCK")


def build_files(folder: Path, count: int) -> list[Path]:
    """``count`` symbol files: the three real series, then scaled copies of them."""
    heads = {s: gzip.decompress(p.read_bytes()).decode().splitlines()[: ROWS + 1] for s, p in SOURCES.items()}
    paths = []
    for index in range(count):
        source = list(SOURCES)[index % 3]
        lines = heads[source]
        if index < 3:
            symbol, body = source, lines
        else:
            symbol, factor = f"S{index - 2:02d}USDT", Decimal(1) + Decimal(index) / 10
            places = 5 if source == "DOGEUSDT" else 2
            body = [lines[0]]
            for line in lines[1:]:
                t, *prices, volume = line.split(",")
                scaled = [f"{Decimal(p) * factor:.{places}f}" for p in prices]
                body.append(",".join([t, *scaled, volume]))
        path = folder / f"{symbol}_1m_bench.csv.gz"
        path.write_bytes(gzip.compress(("\n".join(body) + "\n").encode()))
        paths.append(path)
    return paths


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(paths: list[Path], speed: float, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_SIM_")}
    env.update(
        {
            "EXCHANGE_SIM_PORT": str(port),
            "EXCHANGE_SIM_SPEED": str(speed),
            "EXCHANGE_SIM_DATA": ",".join(map(str, paths)),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.exchange_sim"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"simulator exited:\n{log.read_text()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v3/ping", timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"simulator did not start:\n{log.read_text()}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(pid: int, port: int | None, symbols: list[str], seconds: float) -> dict[str, float]:
    """Run one client (or none when ``port`` is None) for ``seconds``; returns the figures."""
    counts = {"messages": 0, "closes": 0, "lag_ms_max": 0.0}
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    if port is None:
        await asyncio.sleep(seconds)
    else:
        streams = "/".join(f"{s.lower()}@{kind}" for s in symbols for kind in ("miniTicker", "kline_1m"))
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"ws://127.0.0.1:{port}/stream?streams={streams}") as ws:
                t0 = time.monotonic()
                cpu0 = cpu_seconds(pid)
                while (left := seconds - (time.monotonic() - t0)) > 0:
                    try:
                        message = await asyncio.wait_for(ws.receive(), left)
                    except TimeoutError:
                        break
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        continue
                    counts["messages"] += 1
                    data = json.loads(message.data)["data"]
                    if data["e"] == "kline" and data["k"]["x"]:
                        counts["closes"] += 1
    elapsed = time.monotonic() - t0
    return {
        "msg_s": counts["messages"] / elapsed,
        "closes_s": counts["closes"] / elapsed,
        "cpu_pct": 100 * (cpu_seconds(pid) - cpu0) / elapsed,
        "rss_mb": rss_mb(pid),
        "seconds": elapsed,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", nargs="?", type=float, default=30.0, help="length of the main run")
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--speed", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_exchange_sim_") as tmp:
        folder = Path(tmp)
        paths = build_files(folder, args.symbols)
        symbols = [p.name.split("_")[0] for p in paths]
        results = []
        baseline_seconds = max(5.0, args.seconds / 3)
        for label, files, client, seconds in (
            ("1 symbol, 1 client (baseline)", paths[:1], True, baseline_seconds),
            (f"{len(paths)} symbols, no client (idle)", paths, False, baseline_seconds),
            (f"{len(paths)} symbols, 1 client", paths, True, args.seconds),
        ):
            proc, port = start(files, args.speed, folder / "sim.log")
            try:
                await asyncio.sleep(1.0)  # let start-up work settle
                names = [f.name.split("_")[0] for f in files]
                results.append((label, await measure(proc.pid, port if client else None, names, seconds)))
                if proc.poll() is not None:
                    raise SystemExit(f"simulator died during '{label}':\n{(folder / 'sim.log').read_text()[-4000:]}")
            finally:
                proc.terminate()
                proc.wait(10)
    print(
        f"\nexchange simulator market-stream benchmark: speed {args.speed:g}, "
        f"streams miniTicker + kline_1m per symbol, {os.cpu_count()} CPU(s)"
    )
    print(f"{'run':<34} {'seconds':>8} {'msgs/s':>9} {'closes/s':>9} {'sim CPU %':>10} {'sim RSS MB':>11}")
    for label, r in results:
        print(
            f"{label:<34} {r['seconds']:>8.1f} {r['msg_s']:>9.1f} {r['closes_s']:>9.2f} "
            f"{r['cpu_pct']:>10.1f} {r['rss_mb']:>11.1f}"
        )
    expected = len(symbols) * args.speed / 60
    print(f"expected kline closes/s with {len(symbols)} symbols: {expected:.2f} (one per symbol per replayed minute)")
    print(
        f"reproduce: cd {REPO} && .venv/bin/python bench/bench_exchange_sim.py {args.seconds:g} "
        f"--symbols {args.symbols} --speed {args.speed:g}"
    )


if __name__ == "__main__":
    asyncio.run(main())
