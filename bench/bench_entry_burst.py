"""The executor's entry path under a burst (a script that prints tables; nothing is asserted).

At a minute close many symbols can signal at once, and one executor handles their entries one
after the other: the last order of a burst of N waits for the N - 1 before it, so a burst's
kline -> order p99 is about N times the cost of one entry. This measures that cost apart from
market_data and the strategy: N BUY signals of N symbols (``EXCHANGE_SIM_SCALE_SYMBOLS``
copies) are published at once, as the strategy publishes them, to one executor built exactly as
``python -m services.executor`` builds it (``tests.executor.harness.start_in_process``, default
settings), against the simulator at speed 1, and each order's time from its signal's publication
to the simulator's receipt of its ``POST /api/v3/order`` (``received_wall_ms``) is taken.

    .venv/bin/python bench/bench_entry_burst.py [--entries 1,10,100] [--rounds 3] \
        [--baseline REF] [--bare] [--serial] [--json FILE]

With ``--serial``, one more row per tree and size: the N entries one at a time in one executor
process, each signal published once the order before it was received (the first is left out:
it pays the process' first statements and connections), the latency of a lone entry in a
running executor (``entries`` is then N - 1, the samples).

With ``--bare``, two more rows per burst size give the floor that no executor goes below on
this machine: the same N MARKET buys sent straight to the same simulator by the exchange client
the executor uses (python-binance's ``AsyncClient``, signed), with nothing of the bot around
them, timed from the first request's start: ``bare sequential`` (one after the other, each
awaiting its answer, as one executor sends a burst's entries) and ``bare concurrent`` (all at
once, the simulator's own throughput on the cores it shares with the client).

Per row: ``run`` (this tree, or the tree of ``--baseline`` exported with ``git archive``, in
alternating order round by round; or a bare row), ``entries``, publication -> order ``first``/``p50``/``p99``/
``last`` in ms, the executor process' CPU per entry in ms (its SQLite thread included) and its
wall time per entry (the last order's latency over N). Each row runs in a fresh process with its
own redis-server, simulator and SQLite ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# The executor's own defaults where the test harness shortens them (``harness.FAST_ENV``).
DEFAULTS = {
    "ORDER_QUERY_DELAY_S": "1",
    "INTENT_GRACE_S": "10",
    "EXIT_RETRY_S": "10",
    "RECONCILE_INTERVAL_S": "30",
    "EXECUTOR_POLL_MS": "500",
    "LEASE_TTL_MS": "5000",
    "MAX_RETRY_AFTER_WAIT_S": "10",
    "ORDER_TIMEOUT_S": "10",
    "LOG_LEVEL": "WARNING",
    # The signals are of the candle that closed last; a burst that runs over the next minute
    # boundary would see its later entries refused as too old at the exchange (rightly: the
    # default allowance is one candle), which is not the cost this measures.
    "SIGNAL_MAX_AGE_CANDLES": "2",
    # One book level per order: 1,000 USDT at risk of a 100 M paper balance, whatever N.
    "RISK_PER_TRADE": "0.00001",
    "STOP_LOSS_PERCENTAGE": "0.01",
    "TAKE_PROFIT_PERCENTAGE": "0.02",
}
BALANCE = "USDT=100000000"
BARE_MODES = ("sequential", "concurrent")
SERIAL = "serial"
SETTLE_S = 1.0  # after the last order: its answer is applied before the process ends


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(entries: int, latencies: list[float], cpu: float) -> dict[str, Any]:
    """A row: the orders' latencies (ms) of a burst of ``entries`` and the process' CPU (s) over it."""
    if not latencies:
        return {"entries": entries, "orders": 0}
    return {
        "entries": entries,
        "orders": len(latencies),
        "first_ms": min(latencies),
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "last_ms": max(latencies),
        "cpu_ms_per_entry": round(cpu * 1000 / entries, 2),
        "wall_ms_per_entry": round(max(latencies) / entries, 2),
    }


async def burst(entries: int, folder: Path, serial: bool = False) -> dict[str, Any]:
    """One burst of ``entries`` entries in this process (imports from ``sys.path[0]``'s tree);
    ``serial``: one entry at a time instead, each signal published once the order before it was
    received, the first left out (it pays the process' first statements and connections)."""
    import aiohttp

    from shared import signing, streams
    from shared.bus import publish_atomically
    from shared.store.database import migrate

    # Looked up at run time: the tree imported from is the row's (this one or the baseline's).
    start_in_process = importlib.import_module("tests.executor.harness").start_in_process
    start_redis = importlib.import_module("tests.support.redis_server").start_redis
    start_simulator = importlib.import_module("tests.support.simulator").start_simulator

    os.environ.setdefault("BUS_SIGNING_KEY", signing.new_key())
    signing.install(signing.parse_key(os.environ["BUS_SIGNING_KEY"]))
    server = start_redis(folder / "redis")
    sim = start_simulator(
        folder / "sim",
        speed=1,
        history=60,
        balances=BALANCE,
        extra_env={"EXCHANGE_SIM_SCALE_SYMBOLS": str(entries)},
    )
    try:
        url = f"sqlite:///{folder / 'ledger.sqlite3'}"
        migrate(url)
        async with aiohttp.ClientSession() as http, http.get(f"{sim.base_url}/api/v3/ticker/price") as response:
            prices = {row["symbol"]: row["price"] for row in await response.json()}
        symbols = sorted(prices)
        executor = await start_in_process(sim, server.url, url, symbols=",".join(symbols), **DEFAULTS)
        try:
            await executor.owns(*symbols)
            await asyncio.sleep(1.0)  # the first reconciliation of every symbol is over
            candle = int(time.time() * 1000) // 60_000 * 60_000 - 60_000
            for symbol in symbols:
                await executor.bus.fresh(symbol, candle + 60_000 + 500)
            events = {s: executor.bus.signal_event(s, "BUY", candle, prices[s]) for s in symbols}
            published: dict[str, int] = {}
            received: dict[str, int] = {}
            cpu_before = time.process_time()
            async with aiohttp.ClientSession() as http:

                async def wait_for(count: int, poll_s: float) -> dict[str, int]:
                    deadline = time.monotonic() + 60 + entries
                    got: dict[str, int] = {}
                    while len(got) < count and time.monotonic() < deadline:
                        await asyncio.sleep(poll_s)
                        async with http.get(f"{sim.base_url}/_sim/state") as response:
                            state = await response.json()
                        got = {cid: ms for cid, ms in state["received_wall_ms"].items() if cid.startswith("EB-")}
                    return got

                for count, symbol in enumerate(symbols, 1):
                    published[symbol] = int(time.time() * 1000)
                    event = events[symbol]
                    await publish_atomically(
                        executor.redis, [(streams.SIGNALS, event), (streams.executor_inbox(symbol), event)]
                    )
                    if serial:
                        received = await wait_for(count, 0.02)
                        await asyncio.sleep(0.3)  # its answer is applied before the next signal
                received = received if serial else await wait_for(entries, 0.05)
            await asyncio.sleep(SETTLE_S)
            cpu = time.process_time() - cpu_before  # the settle wait after the last order is mostly idle
        finally:
            await executor.close()
    finally:
        sim.stop()
        server.stop()
    by_symbol = {cid.split("-")[1]: ms for cid, ms in received.items()}
    latencies = [float(by_symbol[s] - published[s]) for s in symbols[1 if serial else 0 :] if s in by_symbol]
    return summary(len(symbols) - 1 if serial else entries, latencies, cpu)


async def bare(entries: int, folder: Path, concurrent: bool) -> dict[str, Any]:
    """``entries`` MARKET buys of ``entries`` symbols straight to the simulator, no bot."""
    import aiohttp
    from binance import AsyncClient

    start_simulator = importlib.import_module("tests.support.simulator").start_simulator
    sim = start_simulator(
        folder / "sim", speed=1, history=60, balances=BALANCE, extra_env={"EXCHANGE_SIM_SCALE_SYMBOLS": str(entries)}
    )
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{sim.base_url}/api/v3/ticker/price") as response:
            symbols = sorted(row["symbol"] for row in await response.json())
        client = AsyncClient(sim.api_key, sim.api_secret)
        client.API_URL = f"{sim.base_url}/api"
        try:
            await client.ping()  # the connection is open before the clock starts, as the executor's is

            async def buy(symbol: str) -> None:
                await client.create_order(
                    symbol=symbol,
                    side="BUY",
                    type="MARKET",
                    quoteOrderQty="1000",
                    newClientOrderId=f"EB-{symbol}",
                    newOrderRespType="FULL",
                )

            started = int(time.time() * 1000)
            cpu_before = time.process_time()
            if concurrent:
                await asyncio.gather(*(buy(symbol) for symbol in symbols))
            else:
                for symbol in symbols:
                    await buy(symbol)
            cpu = time.process_time() - cpu_before
        finally:
            await client.close_connection()
        async with aiohttp.ClientSession() as http, http.get(f"{sim.base_url}/_sim/state") as response:
            received = (await response.json())["received_wall_ms"]
    finally:
        sim.stop()
    latencies = [float(received[f"EB-{symbol}"] - started) for symbol in symbols if f"EB-{symbol}" in received]
    return summary(entries, latencies, cpu)


def run_row(root: Path, entries: int, run: str, mode: str = "bot") -> dict[str, Any]:
    """``burst`` (or a ``bare`` mode) in a fresh interpreter importing from ``root``."""
    with tempfile.TemporaryDirectory(prefix="entry-burst-") as folder:
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(entries), "--folder", folder]
        command += ["--mode", mode]
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{run} {entries}: {done.stderr[-2000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
    if row.get("orders", 0) < row.get("entries", entries):
        # Entries the executor did not send: its warnings say why.
        print(f"{run} {entries}: {row.get('orders', 0)} orders; executor log:\n{done.stderr[-3000:]}", file=sys.stderr)
    return {"run": run, **row}


def checkout(ref: str, folder: Path) -> Path:
    """The tree of ``ref`` exported into ``folder`` (``git archive``: no worktree, no index touched)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


COLUMNS = (
    "run",
    "entries",
    "orders",
    "first_ms",
    "p50_ms",
    "p99_ms",
    "last_ms",
    "cpu_ms_per_entry",
    "wall_ms_per_entry",
)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row.get(c, "-")) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run and burst size: the median of each figure over the rounds."""
    keys = sorted({(r["run"], r["entries"]) for r in rows}, key=lambda k: (k[1], k[0]))
    result = []
    for run, entries in keys:
        mine = [r for r in rows if r["run"] == run and r["entries"] == entries and r.get("orders")]
        row: dict[str, Any] = {"run": run, "entries": entries}
        for column in COLUMNS[2:]:
            values = [r[column] for r in mine if column in r]
            row[column] = round(statistics.median(values), 2) if values else "-"
        result.append(row)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", default="1,10,100", help="burst sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="a git ref to compare with, in the same run")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--bare", action="store_true", help="also the bare client's floor rows")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serial", action="store_true", help="also one entry at a time, N of them in one process")
    parser.add_argument("--mode", default="bot", choices=("bot", SERIAL, *BARE_MODES), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, os.getcwd())
        if args.mode in ("bot", SERIAL):
            print(json.dumps(asyncio.run(burst(args.worker, args.folder, args.mode == SERIAL))))
        else:
            print(json.dumps(asyncio.run(bare(args.worker, args.folder, args.mode == "concurrent"))))
        return
    sys.path.insert(0, str(REPO))
    from bench.bench_backtest import machine

    sizes = [int(part) for part in args.entries.split(",")]
    with tempfile.TemporaryDirectory(prefix="entry-burst-trees-") as trees:
        roots = {"this": REPO}
        if args.baseline:
            roots[f"baseline {args.baseline}"] = checkout(args.baseline, Path(trees) / "baseline")
        rows = []
        for round_index in range(args.rounds):
            order = list(roots.items())
            if round_index % 2:
                order.reverse()  # neither tree always runs first
            for entries in sizes:
                runs = [(run, root, "bot") for run, root in order]
                if args.serial:
                    runs += [(f"{run} serial", root, SERIAL) for run, root in order]
                if args.bare:
                    runs += [(f"bare {mode}", REPO, mode) for mode in BARE_MODES]
                for run, root, mode in runs:
                    row = run_row(root, entries, run, mode)
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    rows.append(row)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at the end")
    print(f"median of {args.rounds} rounds:")
    print(table(medians(rows)))
    print("every round:")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "medians": medians(rows)}, indent=2))


if __name__ == "__main__":
    main()
