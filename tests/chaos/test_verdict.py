"""The chaos verdict on hand-made records: each rule needs its evidence, each defect is caught.

Two runs of six flat candles, then a rise and a fall: a BUY at candle 2, filled at the open of
candle 3 (100.00, stop-loss 99.80, take-profit 100.40); candle 5 falls through the stop-loss.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.chaos.plan import Fault
from tests.chaos.verdict import Rule, compare

M = 60_000
T0 = 1_800_000_000_000  # market open of candle 0
W0 = 1_700_000_000_000  # wall time when candle 0 opened (speed 1: one candle per wall minute)
CANDLES = [  # open, high, low, close
    ("100", "100", "100", "100"),
    ("100", "100", "100", "100"),
    ("100", "100", "100", "100"),
    ("100", "100.1", "99.9", "100"),
    ("100", "100.1", "99.9", "100"),
    ("100", "100", "99.5", "99.6"),
    ("99.6", "99.6", "99.6", "99.6"),
    ("99.6", "99.6", "99.6", "99.6"),
]


def wall(market: int) -> int:
    return W0 + market - T0


def rid(market: int, seq: int = 0) -> str:
    """A Redis entry id written at the wall time of ``market``."""
    return f"{wall(market)}-{seq}"


def steps(index: int) -> list[tuple[int, str]]:
    o, h, low, c = CANDLES[index]
    path = (o, low, h, c) if float(c) >= float(o) else (o, h, low, c)
    return [(T0 + index * M + s * M // 4, path[s]) for s in range(4)]


def make_record(tmp_path: Path, label: str) -> dict:
    data = tmp_path / f"{label}_BTCUSDT_1m_replay.csv"
    data.write_text(
        "open_time,open,high,low,close,volume\n"
        + "".join(f"{T0 + i * M},{o},{h},{low},{c},1\n" for i, (o, h, low, c) in enumerate(CANDLES))
    )
    ticks = [(rid(ts, 1), ts, price) for i in range(len(CANDLES)) for ts, price in steps(i)]
    entry_id, exit_id = f"EB-BTCUSDT-{T0 + 2 * M}", f"XS-BTCUSDT-{T0 + 2 * M}"
    return {
        "label": label,
        "symbols": ["BTCUSDT"],
        "speed": 1.0,
        "history": 0,
        "rows": len(CANDLES),
        "data": [str(data)],
        "allowance_candles": 1.0,
        "calibration": {"wall_ms": W0, "market_ms": T0},
        "per_symbol": {
            "BTCUSDT": {
                "first_open": T0,
                "kline_opens": [T0 + i * M for i in range(len(CANDLES))],
                "ticks": ticks,
                "inbox": [
                    {
                        "id": rid(T0 + 3 * M + 10),
                        "type": "signal",
                        "side": "BUY",
                        "command": None,
                        "candle": T0 + 2 * M,
                        "event_id": f"signal-BTCUSDT-1m-{T0 + 2 * M}-BUY",
                    }
                ],
            }
        },
        "decisions": [
            {
                "id": rid(T0 + (i + 1) * M + 5),
                "symbol": "BTCUSDT",
                "candle": T0 + i * M,
                "entry": i == 2,
                "exit": False,
                "history": False,
            }
            for i in range(len(CANDLES))
        ],
        "signals": [
            {
                "id": rid(T0 + 3 * M + 10),
                "symbol": "BTCUSDT",
                "side": "BUY",
                "candle": T0 + 2 * M,
                "event_id": f"signal-BTCUSDT-1m-{T0 + 2 * M}-BUY",
            }
        ],
        "alerts": [],
        "positions": [
            {
                "id": 1,
                "symbol": "BTCUSDT",
                "status": "CLOSED",
                "entry_client_order_id": entry_id,
                "exit_client_order_id": exit_id,
                "entry_price": "100",
                "stop_loss": "99.80",
                "take_profit": "100.40",
                "entry_candle_open_ms": T0 + 2 * M,
                "exit_reason": "stop_loss",
                "exit_candle_open_ms": T0 + 5 * M,
            }
        ],
        "orders": [{"client_order_id": entry_id, "side": "BUY"}, {"client_order_id": exit_id, "side": "SELL"}],
        "fills": [
            {
                "client_order_id": entry_id,
                "symbol": "BTCUSDT",
                "trade_id": 1,
                "price": "100",
                "quantity": "1",
                "quote_quantity": "100",
                "commission": "0.001",
                "commission_asset": "BTC",
                "time_ms": T0 + 3 * M + 20,  # the exchange stamps market time
            },
            {
                "client_order_id": exit_id,
                "symbol": "BTCUSDT",
                "trade_id": 2,
                "price": "99.5",
                "quantity": "0.999",
                "quote_quantity": "99.4005",
                "commission": "0.0994005",
                "commission_asset": "USDT",
                "time_ms": T0 + 5 * M + 30_000,
            },
        ],
        "exchange": {
            "trades": [
                {"symbol": "BTCUSDT", "id": 1, "price": "100", "qty": "1", "commission": "0.001"},
                {"symbol": "BTCUSDT", "id": 2, "price": "99.5", "qty": "0.999", "commission": "0.0994005"},
            ],
            "balances": {"USDT": {"free": "9999.3010995", "locked": "0"}, "BTC": {"free": "0", "locked": "0"}},
            "orders": [{"clientOrderId": entry_id}, {"clientOrderId": exit_id}],
            "client_order_ids": [entry_id, exit_id],
        },
        "initial_balances": {"USDT": "10000"},
        "timeline": [],
        "faults_end_ms": wall(T0 + 8 * M),
        "stuck": {"pending": [], "dead_letters": {}, "positions": [], "orders": []},
        "crashes": [],
    }


@pytest.fixture
def runs(tmp_path: Path) -> tuple[dict, dict]:
    return make_record(tmp_path, "clean"), make_record(tmp_path, "chaos")


def test_identical_runs_pass(runs: tuple[dict, dict]) -> None:
    report = compare(*runs)
    assert report.passed, report
    assert (report.trades_clean, report.trades_chaos, report.identical) == (1, 1, 1)


def test_an_exit_its_inputs_do_not_give_is_a_real_difference(runs: tuple[dict, dict]) -> None:
    clean, chaos = runs
    chaos["positions"][0]["exit_candle_open_ms"] = T0 + 4 * M  # no price of candle 4 reached the stop
    report = compare(clean, chaos)
    assert not report.passed
    assert any("inputs give 2->5 stop_loss" in d.evidence for d in report.real), report.real


def test_a_skipped_entry_is_allowed_only_with_its_record_and_an_outage(runs: tuple[dict, dict]) -> None:
    clean, chaos = runs
    chaos["positions"], chaos["fills"], chaos["exchange"]["trades"] = [], [], []
    chaos["exchange"]["orders"], chaos["exchange"]["client_order_ids"] = [], []
    chaos["exchange"]["balances"] = {"USDT": {"free": "10000", "locked": "0"}}
    report = compare(clean, chaos)
    assert not report.passed and report.lost  # neither traded nor recorded as skipped

    chaos["alerts"] = [
        {
            "id": rid(T0 + 3 * M + 50),
            "code": "entry_skipped",
            "symbol": "BTCUSDT",
            "level": "warning",
            "message": f"BUY signal of candle {T0 + 2 * M} skipped, no order sent: signal is too old",
        }
    ]
    report = compare(clean, chaos)
    assert [d.rule for d in report.allowed] == [] and len(report.real) == 1  # no outage: a real difference

    # An outage after the BUY's allowance (one candle from its close) did not make it stale.
    chaos["timeline"] = [
        {
            "kind": "kill",
            "target": "executor",
            "start_ms": wall(T0 + 5 * M),
            "restart_ms": wall(T0 + 5 * M + 5),
            "ready_ms": wall(T0 + 5 * M + 40),
        }
    ]
    report = compare(clean, chaos)
    assert [d.rule for d in report.allowed] == [] and len(report.real) == 1, report.allowed

    chaos["timeline"] = [
        {
            "kind": "kill",
            "target": "executor",
            "start_ms": wall(T0 + 3 * M),
            "restart_ms": wall(T0 + 3 * M + 5),
            "ready_ms": wall(T0 + 3 * M + 40),
        }
    ]
    report = compare(clean, chaos)
    assert report.passed, report
    assert [d.rule for d in report.allowed] == [Rule.SKIPPED_STALE]


def test_an_entry_filled_after_its_allowance_is_a_real_difference(runs: tuple[dict, dict]) -> None:
    clean, chaos = runs
    chaos["fills"][0]["time_ms"] = T0 + 4 * M  # the open of candle 4: one candle after the close
    chaos["timeline"] = [
        {
            "kind": "fault",
            "target": Fault.DELAY_BEFORE.value,
            "start_ms": wall(T0 + 3 * M),
            "params": {},
            "consumed_ms": wall(T0 + 4 * M + 20),
        }
    ]
    assert compare(clean, chaos).passed  # within an allowance of one candle
    chaos["allowance_candles"] = 0.5
    report = compare(clean, chaos)
    assert any("entry 2 filled 1.00 candles after its candle closed" in d.evidence for d in report.real), report.real


def test_duplicates_mismatches_and_stuck_items_fail(runs: tuple[dict, dict]) -> None:
    clean, chaos = runs
    broken = copy.deepcopy(chaos)
    broken["exchange"]["client_order_ids"].append(broken["exchange"]["client_order_ids"][0])
    assert compare(clean, broken).duplicates
    broken = copy.deepcopy(chaos)
    broken["exchange"]["balances"]["USDT"]["free"] = "9999.30"
    assert compare(clean, broken).mismatches
    broken = copy.deepcopy(chaos)
    broken["fills"][1]["trade_id"] = 3
    assert compare(clean, broken).mismatches
    for key, item in (
        ("positions", ["BTCUSDT position 1 CLOSING"]),
        ("orders", ["BTCUSDT order EB-1 SUBMITTED"]),
        ("pending", ["executor:inbox:BTCUSDT 1-0 idle 31000 ms, delivered 1x to executor-2 (dead)"]),
        ("dead_letters", {"deadletter:executor:inbox:BTCUSDT": 1}),
    ):
        broken = copy.deepcopy(chaos)
        broken["stuck"][key] = item
        report = compare(clean, broken)
        assert not report.passed and len(report.stuck) == 1, (key, report.stuck)


def test_a_fault_kind_fired_less_than_the_minimum_fails(runs: tuple[dict, dict]) -> None:
    clean, chaos = runs
    chaos["min_fired"] = 1
    chaos["timeline"] = [
        {
            "kind": "fault",
            "target": f.value,
            "start_ms": wall(T0 + 6 * M),
            "params": {},
            "consumed_ms": wall(T0 + 6 * M),
        }
        for f in Fault
        if f is not Fault.THROTTLE_429
    ]
    report = compare(clean, chaos)
    assert not report.passed
    assert report.too_few_faults == [f"{Fault.THROTTLE_429.value} fired 0 times (at least 1 required)"]
    chaos["timeline"].append(
        {"kind": "fault", "target": Fault.THROTTLE_429.value, "start_ms": wall(T0 + 6 * M), "params": {}}
    )  # armed, never hit: does not count
    assert compare(clean, chaos).too_few_faults
