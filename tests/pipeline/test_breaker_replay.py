"""The account circuit breaker in a replay of real candles through simulator -> services.

A tight daily loss limit and parameters that trade often: the first losses trip the breaker,
new entries pause (an ``entry_skipped`` alert names the limit) while open positions still exit,
the tripped state survives a restart of every service, and the next UTC day of market time (the
simulator's replayed clock, started shortly before a midnight) clears it and entries resume.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from shared import streams
from shared.codec import decode, loads
from shared.events import ExecutorAlert
from shared.trading.breaker import DAY_MS
from tests.pipeline.ledger import MINUTE, REPLAYS
from tests.support.stack import Stack, Warm, prepare_data, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# From these rows of the bundled files both symbols open a position on the first live candle,
# so one is usually still open when the other's loss trips the breaker (live fills, and with
# them the exits, depend on the machine's timing: the exact case is a component test's).
STARTS = {"BTCUSDT": 1450, "ETHUSDT": 400}
SYMBOLS = list(STARTS)
SPEED, HISTORY = 240, 70
BEFORE_MIDNIGHT = 90  # live candles of market time before the UTC midnight
ROWS = HISTORY + BEFORE_MIDNIGHT + 120
BUSY = {
    "EMA_SHORT_PERIOD": "3",
    "EMA_LONG_PERIOD": "8",
    "USE_EMA_FILTER": "false",
    "STOP_LOSS_PERCENTAGE": "0.002",
    "TAKE_PROFIT_PERCENTAGE": "0.004",
    "SIGNAL_MAX_LAG_CANDLES": "12",
}
# One stop-loss on half the account loses about 0.2 % of equity: the first loss trips 0.05 %.
LIMITS = {"BREAKER_DAILY_LOSS_PCT": "0.05", "CAPITAL_ALLOCATION": "0.5"}


def breaker(stack: Stack) -> dict:
    record = loads(stack.client().get(streams.BREAKER))
    return record if isinstance(record, dict) else {}


def alerts(stack: Stack, code: str) -> list[ExecutorAlert]:
    found = [decode(fields).payload for _, fields in stack.client().xrange(streams.EXECUTOR_EVENTS)]
    return [a for a in found if isinstance(a, ExecutorAlert) and a.code == code]


def refused_since(stack: Stack, index: int) -> list[str]:
    """The ``entry_skipped`` messages after the first ``index`` that name the tripped daily limit."""
    return [
        a.message
        for a in alerts(stack, "entry_skipped")[index:]
        if "circuit breaker tripped on daily_loss" in a.message
    ]


def positions(stack: Stack) -> list[tuple[str, str, int | None, int | None]]:
    """(symbol, status, entry market ms, exit market ms) of every position, in order."""
    with sqlite3.connect(stack.folder / "bot.sqlite3") as connection:
        return connection.execute(
            "SELECT symbol, status, entry_market_time_ms, exit_market_time_ms FROM positions ORDER BY id"
        ).fetchall()


RESTARTED = ("market_data", "strategy", "executor")


def restart_every_service(stack: Stack, warm: dict[str, Warm]) -> None:
    """SIGKILL market_data, strategy and executor together and let the imported ones run."""
    old = {name: stack.processes[name][0] for name in RESTARTED}
    stack.wait_for(lambda: all(w.held.exists() or not w.process.alive() for w in warm.values()), 180, "fresh imports")
    for service in old.values():
        service.process.kill()
        service.process.wait(10)
    time.sleep(0.5)
    for w in warm.values():
        assert w.process.process.stdin is not None
        w.process.process.stdin.write(b"run\n")
        w.process.process.stdin.close()


def test_a_tight_daily_limit_trips_pauses_entries_survives_restarts_and_clears_at_the_next_market_day(
    tmp_path: Path,
) -> None:
    data = [prepare_data(tmp_path, REPLAYS[s][0], s, STARTS[s], ROWS) for s in SYMBOLS]
    # The replay's market opens BEFORE_MIDNIGHT candles before a UTC midnight (a day ahead of the
    # wall clock, as a fast replay is anyway).
    midnight = (time.time_ns() // 1_000_000 // DAY_MS + 2) * DAY_MS
    env = {**BUSY, **LIMITS, "EXCHANGE_SIM_START_MS": str(midnight - BEFORE_MIDNIGHT * MINUTE)}
    stack = start_stack(
        tmp_path / "stack", data=data, symbols=SYMBOLS, speed=SPEED, history=HISTORY, extra_env=env, exchange_last=True
    )
    try:
        # Imported beside the running stack from the start: on a loaded machine imports take
        # tens of seconds, hours of market time at this speed, which would leave the restarted
        # services no market time before the midnight that clears the breaker.
        warm = {name: stack.prepare(name) for name in RESTARTED}
        tripped = stack.wait_for(lambda: (breaker(stack).get("state") or {}).get("tripped"), 150, "the breaker to trip")
        assert tripped["limit"] == "daily_loss" and tripped["at_ms"] < midnight, tripped
        [trip] = alerts(stack, "breaker_daily_loss")
        assert "limit_pct 0.05" in trip.message

        restart_every_service(stack, warm)
        restarted = len(alerts(stack, "entry_skipped"))
        # The restarted executor still refuses entries, naming the limit, until the market day ends.
        stack.wait_for(
            lambda: refused_since(stack, restarted) or alerts(stack, "breaker_cleared"),
            150,
            "an entry refused after the restart",
        )
        stack.wait_for(lambda: alerts(stack, "breaker_cleared"), 150, "the next UTC market day")
        assert (breaker(stack).get("state") or {}).get("tripped") is None
        stack.wait_for(
            lambda: any(p[2] is not None and p[2] >= midnight for p in positions(stack)),
            150,
            "an entry on the new market day",
        )

        assert refused_since(stack, restarted), "an entry was refused by the breaker after the restart"
        rows = positions(stack)
        # No entry decided while tripped (a signal decided within a candle of the trip may have
        # been taken by the other symbol's executor before the trip was written).
        during = [p for p in rows if p[2] is not None and tripped["at_ms"] + 2 * MINUTE < p[2] < midnight]
        assert during == [], during
        # Every position open when the breaker tripped still exited while it was tripped.
        open_at_trip = [
            p
            for p in rows
            if p[2] is not None and p[2] <= tripped["at_ms"] and (p[3] is None or p[3] > tripped["at_ms"])
        ]
        assert all(p[1] == "CLOSED" and p[3] < midnight for p in open_at_trip), rows
    finally:
        stack.stop_all()
