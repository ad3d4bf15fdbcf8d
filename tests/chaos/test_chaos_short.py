"""The short, seeded chaos run of ``make test``: ``make chaos`` in small.

A clean and a faulted replay of the same real candles run side by side; the faulted one gets
about 20 SIGKILLs over market_data, strategy, executor and api, one Redis SIGKILL + restart on
its AOF and one of each simulator fault. The verdict (tests/chaos/verdict.py) must find no
difference that no rule allows, no duplicate order, nothing lost, the ledger equal to the
exchange and nothing stuck 30 s after the last fault.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.__main__ import run
from tests.chaos.plan import SHORT
from tests.chaos.verdict import compare, table

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

SEED = 18


def test_short_chaos_run_changes_only_what_a_rule_allows(tmp_path: Path) -> None:
    clean, chaos = run(SEED, SHORT, tmp_path, log=lambda line: None)
    report = compare(clean, chaos)
    summary = table(report, f"seed {SEED}, short")
    assert sum(n for k, n in report.kills.items() if not k.startswith("redis")) >= SHORT.kills, summary
    assert report.kills["redis (SIGKILL + AOF restart)"] == SHORT.redis_crashes, summary
    assert report.trades_clean > 0, summary
    assert report.passed, summary
