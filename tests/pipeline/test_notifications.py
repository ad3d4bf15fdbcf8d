"""Notifications of a real replay (simulator -> market_data -> strategy -> executor -> notifier)
at a local JSON receiver: trading goes on while the receiver is down, and every entry fill,
exit fill and alert arrives exactly once, across a SIGKILL and a clean restart of the notifier."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from services.notifier.messages import classify
from shared import streams
from shared.codec import decode
from tests.pipeline.ledger import REPLAYS
from tests.pipeline.test_replay import settle
from tests.support.receiver import Receiver
from tests.support.stack import Stack, prepare_data, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

ROWS, HISTORY, SPEED = 300, 70, 240
ENV = {
    "STOP_LOSS_PERCENTAGE": "0.002",
    "TAKE_PROFIT_PERCENTAGE": "0.004",
    "SIGNAL_MAX_LAG_CANDLES": "12",
    "NOTIFY_EVENTS": "entry_fill,exit_fill,alert",
    "NOTIFY_ALERT_LEVEL": "info",
    "NOTIFY_RETRY_MAX_S": "1",
}


def closed_positions(stack: Stack) -> int:
    with sqlite3.connect(stack.folder / "bot.sqlite3") as db:
        try:
            return db.execute("select count(*) from positions where status = 'CLOSED'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0  # not migrated yet


def group_of(stack: Stack) -> dict | None:
    client = stack.client()
    if not client.exists(streams.EXECUTOR_EVENTS):
        return None
    return next((g for g in client.xinfo_groups(streams.EXECUTOR_EVENTS) if g["name"] == streams.GROUP_NOTIFIER), None)


def expected_notifications(stack: Stack) -> Counter[tuple[str, str]]:
    """What the executor's events say should arrive: one message per entry fill, exit fill and alert."""
    notes = [classify(decode(fields), "info") for _, fields in stack.client().xrange(streams.EXECUTOR_EVENTS)]
    return Counter(
        (n.title, n.body) for n in notes if n is not None and n.kind.value in ("entry_fill", "exit_fill", "alert")
    )


def test_notifications_arrive_once_across_restarts_and_a_receiver_down_delays_no_trade(tmp_path: Path) -> None:
    receiver = Receiver()  # down at first: nothing listens on its port
    data = [prepare_data(tmp_path, REPLAYS["BTCUSDT"][0], "BTCUSDT", REPLAYS["BTCUSDT"][1], ROWS)]
    stack = start_stack(
        tmp_path / "stack",
        data=data,
        symbols=["BTCUSDT"],
        speed=SPEED,
        history=HISTORY,
        services=("market_data", "strategy", "notifier"),
        extra_env={**ENV, "NOTIFY_URLS": receiver.url},
        exchange_last=True,
    )
    try:
        # The notifier's group exists before the executor publishes anything.
        stack.wait_for(lambda: group_of(stack), 60, "the notifier's consumer group")
        stack.start("executor")
        # The receiver is down: trades still open and close, and nothing was delivered.
        stack.wait_for(lambda: closed_positions(stack) >= 1, 180, "a closed trade while the receiver is down")
        assert receiver.messages() == []
        assert (group_of(stack) or {}).get("pending", 0) + ((group_of(stack) or {}).get("lag") or 0) > 0

        # SIGKILL while it retries, a fresh notifier, then the receiver comes up.
        stack.kill("notifier")
        stack.start("notifier")
        receiver.start()
        stack.wait_for(lambda: len(receiver.messages()) >= 2, 120, "the backlog delivered")
        # A clean restart (SIGTERM) while the replay goes on.
        old = stack.processes["notifier"][-1]
        old.process.terminate()
        old.process.wait(20)
        stack.start("notifier")

        settle(stack, ["BTCUSDT"])

        def drained() -> bool:
            group = group_of(stack) or {}
            return group.get("pending") == 0 and group.get("lag") == 0

        stack.wait_for(drained, 120, "the notifier to drain executor:events")
        expected = expected_notifications(stack)
        kinds = Counter(title.split(": ")[0].removeprefix("BTCUSDT ") for title, _ in expected)
        assert (
            kinds["entry filled"] >= 2
            and kinds["exit filled"] >= 1
            and sum(kinds.values()) > kinds["entry filled"] + kinds["exit filled"]
        ), kinds
        received = Counter((m["title"], m["message"]) for m in receiver.messages())
        assert received == expected, stack.logs("notifier")[-4000:]
        assert "Traceback" not in stack.logs("notifier")
    finally:
        receiver.stop()
        stack.stop_all()
