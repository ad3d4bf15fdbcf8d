"""market_data against simulator faults: dropped, stalled and shut-down streams, lost user data.

Each fault must be recovered from, shown as a `market:status` event, and leave the closed-kline
stream without gaps or duplicates; after a lost subscription, fills still reach the bus.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from shared import streams
from tests.pipeline.ledger import BUNDLED, MINUTE
from tests.support.stack import Stack, prepare_data, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def admin(stack: Stack, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{stack.sim_url}/_sim/{path}",
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def market_buy(stack: Stack, quantity: str) -> dict:
    query = urllib.parse.urlencode(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": quantity,
            "newClientOrderId": f"manual-{time.monotonic_ns()}",
            "timestamp": int(time.time() * 1000),
        }
    )
    signature = hmac.new(b"sim-secret", query.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{stack.sim_url}/api/v3/order",
        data=f"{query}&signature={signature}".encode(),
        method="POST",
        headers={"X-MBX-APIKEY": "sim-key"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def statuses(stack: Stack) -> list[tuple[str, str]]:
    return [(f["state"], f.get("detail", "")) for _, f in stack.client().xrange(streams.MARKET_STATUS)]


def wait_status(stack: Stack, state: str, after: int, timeout: float = 30) -> None:
    stack.wait_for(lambda: any(s == state for s, _ in statuses(stack)[after:]), timeout, f"market status {state}")


def last_open(stack: Stack) -> int:
    return int(stack.client().hget(streams.KLINE_LAST_OPEN, "BTCUSDT") or 0)


def wait_klines_advance(stack: Stack, candles: int = 3) -> None:
    start = last_open(stack)
    stack.wait_for(lambda: last_open(stack) >= start + candles * MINUTE, 30, "closed klines to flow")


def test_every_stream_fault_is_recovered_shown_and_leaves_no_gap(tmp_path: Path) -> None:
    data = prepare_data(tmp_path, BUNDLED["BTCUSDT"], "BTCUSDT", 0, 3000)
    stack = start_stack(
        tmp_path / "stack",
        data=[data],
        symbols=["BTCUSDT"],
        speed=120,
        history=100,
        services=("market_data",),
        extra_env={"MARKET_STALE_AFTER_S": "2", "RECONNECT_MAX_DELAY_S": "1"},
    )
    try:
        wait_status(stack, "user_data_subscribed", 0)
        wait_klines_advance(stack)

        mark = len(statuses(stack))
        admin(stack, "ws/drop")
        wait_status(stack, "disconnected", mark)
        wait_status(stack, "connected", mark)
        wait_status(stack, "user_data_subscribed", mark)
        wait_klines_advance(stack)

        mark = len(statuses(stack))
        admin(stack, "faults/stall", {"seconds": 5})
        wait_status(stack, "stale", mark)
        wait_status(stack, "connected", mark)
        wait_klines_advance(stack)

        mark = len(statuses(stack))
        admin(stack, "ws/terminate")
        wait_status(stack, "user_data_lost", mark)
        wait_status(stack, "user_data_subscribed", mark)
        order = market_buy(stack, "0.001")
        executions = streams.executions_stream("BTCUSDT")
        stack.wait_for(
            lambda: any(f["client_order_id"] == order["clientOrderId"] for _, f in stack.client().xrange(executions)),
            20,
            "the execution report of an order placed after resubscribing",
        )

        mark = len(statuses(stack))
        admin(stack, "ws/shutdown")
        wait_status(stack, "connected", mark)
        wait_status(stack, "user_data_subscribed", mark)
        wait_klines_advance(stack)

        opens = [int(f["open_time_ms"]) for _, f in stack.client().xrange(streams.kline_stream("BTCUSDT"))]
        assert len(opens) > 100
        assert all(b - a == MINUTE for a, b in itertools.pairwise(opens)), "gap or duplicate in the closed-kline stream"
    finally:
        stack.stop_all()
