"""``python -m tests.chaos --seed N [--kills N] [--short] [--json FILE]``: the chaos comparison.

Runs a clean replay and a chaos replay of the same real candles (at the same time, each on its
own stack), prints the comparison table and exits 0 only when the verdict passes.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from tests.chaos.plan import LONG, SHORT
from tests.chaos.runner import ABORT, run_replay
from tests.chaos.verdict import compare, rules_text, table

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def run(seed: int, sizes, folder: Path, sequential: bool = False, log=print) -> tuple[dict, dict]:
    """Both replays; returns (clean record, chaos record)."""
    if sequential:
        clean = run_replay(folder / "clean", SYMBOLS, sizes, None, log)
        return clean, run_replay(folder / "chaos", SYMBOLS, sizes, seed, log)
    with ThreadPoolExecutor(2) as pool:
        clean = pool.submit(run_replay, folder / "clean", SYMBOLS, sizes, None, log)
        chaos = pool.submit(run_replay, folder / "chaos", SYMBOLS, sizes, seed, log)
        try:
            return clean.result(), chaos.result()
        except BaseException:
            ABORT.set()  # the other replay stops too, and each stops its stack
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--kills", type=int, help="SIGKILLs of services (default: 104, or 20 with --short)")
    parser.add_argument("--rows", type=int, help="candles per symbol, history included")
    parser.add_argument("--speed", type=float, help="replay speed (default 60, 120 with --short)")
    parser.add_argument("--short", action="store_true", help="the short version of make test")
    parser.add_argument("--sequential", action="store_true", help="run the clean replay first, then the chaos one")
    parser.add_argument("--json", type=Path, help="write both records and the verdict here")
    parser.add_argument("--folder", type=Path, help="keep the stacks' files here (default: a temporary folder)")
    args = parser.parse_args(argv)
    sizes = SHORT if args.short else LONG
    if args.kills is not None:
        sizes = replace(sizes, kills=args.kills)
    if args.speed is not None:
        sizes = replace(sizes, speed=args.speed)
    if args.rows is not None:
        sizes = replace(sizes, rows=args.rows)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="chaos-") as temporary:
        folder = args.folder or Path(temporary)
        clean, chaos = run(args.seed, sizes, folder, args.sequential)
        if args.json:  # the records first: a verdict that fails to run leaves them to study
            args.json.write_text(json.dumps({"clean": clean, "chaos": chaos}, default=str))
        report = compare(clean, chaos)  # reads the candle files of the runs' folders
    title = (
        f"seed {args.seed}: {sizes.rows} candles x {len(SYMBOLS)} symbols at {sizes.speed:g}x, "
        f"{platform.node()} ({platform.machine()}, Python {platform.python_version()}), "
        f"{time.time() - started:.0f} s"
    )
    print(table(report, title))
    print("\nAllowed differences (rules):\n" + rules_text())
    if args.json:
        args.json.write_text(
            json.dumps(
                {"clean": clean, "chaos": chaos, "table": table(report, title), "passed": report.passed}, default=str
            )
        )
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
