"""The short, seeded chaos run of ``make test``: ``make chaos`` in small.

A clean and a faulted replay of the same real candles run side by side; the faulted one gets
20 SIGKILLs over market_data, strategy, executor and api, one Redis SIGKILL + restart on its
AOF and one of each simulator fault. Then the verdict (tests/chaos/verdict.py):

the chaos was applied, and the verdict passes: no client order id reached the exchange twice,
the ledger equals the exchange (fills by trade id, balances), nothing is stuck 30 s after the
last fault, no process exited but the kills, nothing was lost, both runs follow their own
inputs and every difference between them is one a rule allows.
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
    assert not report.duplicates, summary
    assert not report.mismatches, summary
    assert not report.stuck, summary
    assert not report.crashes, summary
    assert not report.real and not report.lost and not report.clean_problems, summary
    assert report.passed, summary
