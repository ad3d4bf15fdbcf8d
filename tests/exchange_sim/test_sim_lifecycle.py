"""Process lifecycle: defaults and re-basing, persistence across SIGKILL, data running out, config errors."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from shared.candles import shared_data_dir
from tests.support.simulator import REPO_ROOT, SimulatorProcess, start_simulator

pytestmark = pytest.mark.integration
SHARED_DOGE = shared_data_dir() / "DOGEUSDT_1m_2023-03-16_2023-05-01.csv.gz"


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_defaults_replay_the_bundled_week_from_now(tmp_path: Path, rest) -> None:
    started = int(time.time() * 1000)
    with start_simulator(tmp_path, data=None, speed=1, history=500) as sim:
        rest.sim = sim
        _status, info, _ = await rest.call("GET", "exchangeInfo")
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
        _status, rows, _ = await rest.call("GET", "klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1000})
        ended = int(time.time() * 1000)
        assert len(rows) in (501, 502)  # candles 0..500, plus 501 if a minute ended meanwhile
        assert rows[500][0] in {started // 60_000 * 60_000, ended // 60_000 * 60_000}  # index HISTORY opens now
        assert rows[0][1] == "105573.73000000" and rows[500][0] - rows[0][0] == 500 * 60_000
        market_time = sim.state()["market"]["market_time"]
        assert abs(market_time - time.time() * 1000) < 2000  # at speed 1 market time is wall time


async def test_state_survives_sigkill(tmp_path: Path, rest) -> None:
    state_file = tmp_path / "sim-state.json"
    with start_simulator(
        tmp_path, speed=600, balances="USDT=5000,BTC=0.1", extra_env={"EXCHANGE_SIM_STATE_FILE": str(state_file)}
    ) as sim:
        rest.sim = sim
        await rest.call(
            "POST",
            "order",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001", "newClientOrderId": "kept-1"},
            signed=True,
        )
        status, resting, _ = await rest.call(
            "POST",
            "order",
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.05",
                "price": "400000.00",
                "newClientOrderId": "kept-2",
            },
            signed=True,
        )
        assert status == 200 and resting["status"] == "NEW"
        before = sim.state()
        sim.kill()
        assert state_file.exists()
        sim.start()
        after = sim.state()
        for key in ("balances", "orders", "trades", "open_order_ids", "client_order_ids"):
            assert after[key] == before[key], key
        assert after["balances"]["BTC"]["locked"] == "0.05"
        assert (
            after["market"]["symbols"]["BTCUSDT"]["candle_index"]
            >= before["market"]["symbols"]["BTCUSDT"]["candle_index"]
        )
        status, cancelled, _ = await rest.call(
            "DELETE", "order", {"symbol": "BTCUSDT", "origClientOrderId": "kept-2"}, signed=True
        )
        assert cancelled["status"] == "CANCELED"
        status, new, _ = await rest.call(
            "POST", "order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}, signed=True
        )
        assert new["orderId"] == max(o["orderId"] for o in before["orders"]) + 1
        assert sim.stop() == 0 and "shutting down" in sim.log_text()


async def test_running_out_of_data_keeps_serving(tmp_path: Path, make_csv, candle_rows, rest) -> None:
    rows = candle_rows(30, base=2500.0)
    short = make_csv("XYZUSDT_1m_test.csv.gz", [(r[0], r[1] + "5", r[2], r[3], r[4], r[5]) for r in rows])
    doge = tmp_path / "DOGEUSDT_1m_head.csv.gz"
    doge.write_bytes(gzip.compress(b"\n".join(gzip.decompress(SHARED_DOGE.read_bytes()).split(b"\n")[:200]) + b"\n"))
    with start_simulator(tmp_path, data=[short, doge], speed=3000, history=25, balances="USDT=1000,DOGE=0") as sim:
        rest.sim = sim
        await wait_until(lambda: sim.state()["market"]["symbols"]["XYZUSDT"]["finished"], timeout=8)
        assert sim.running and "XYZUSDT: candle data exhausted" in sim.log_text()
        _status, price, _ = await rest.call("GET", "ticker/price", {"symbol": "XYZUSDT"})
        assert Decimal(price["price"]) == Decimal(rows[-1][4])
        _status, klines, _ = await rest.call("GET", "klines", {"symbol": "XYZUSDT", "interval": "1m", "limit": 3})
        assert Decimal(klines[-1][4]) == Decimal(rows[-1][4]) and len(klines) == 3
        _status, info, _ = await rest.call("GET", "exchangeInfo")
        filters = {s["symbol"]: {f["filterType"]: f for f in s["filters"]} for s in info["symbols"]}
        assert filters["XYZUSDT"]["PRICE_FILTER"]["tickSize"] == "0.00100000"  # 3 decimals in the data
        assert filters["DOGEUSDT"]["PRICE_FILTER"]["tickSize"] == "0.00001000"
        assert filters["DOGEUSDT"]["LOT_SIZE"]["stepSize"] == "1.00000000"
        _status, body, _ = await rest.call(
            "POST", "order", {"symbol": "DOGEUSDT", "side": "BUY", "type": "MARKET", "quantity": "100.5"}, signed=True
        )
        assert body == {"code": -1013, "msg": "Filter failure: LOT_SIZE"}
        _status, order, _ = await rest.call(
            "POST", "order", {"symbol": "XYZUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}, signed=True
        )
        assert order["status"] == "FILLED" and order["fills"][0]["price"] == f"{Decimal(rows[-1][4]):.8f}"


@pytest.mark.parametrize(("name", "value"), [("EXCHANGE_SIM_SPEED", "abc"), ("EXCHANGE_SIM_DATA", "/tmp/prices.csv")])
def test_bad_configuration_stops_the_start_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    if name == "EXCHANGE_SIM_DATA":
        value = str(tmp_path / "prices.csv")
        Path(value).write_text("open_time,open,high,low,close,volume\n1,1,1,1,1,1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_SIM_")}
    env.update({name: value, "EXCHANGE_SIM_PORT": "0"})
    done = subprocess.run(
        [sys.executable, "-m", "services.exchange_sim"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and name in done.stderr, done.stderr


def test_start_simulator_reports_a_process_that_cannot_start(tmp_path: Path) -> None:
    from tests.support.simulator import SimulatorError

    with pytest.raises(SimulatorError) as caught:
        start_simulator(tmp_path, extra_env={"EXCHANGE_SIM_BALANCES": "USDT=lots"}, ready_timeout=20)
    assert "EXCHANGE_SIM_BALANCES" in str(caught.value)


def test_sync_context_manager_stops_the_process(tmp_path: Path) -> None:
    with start_simulator(tmp_path) as sim:
        assert isinstance(sim, SimulatorProcess) and sim.running
    assert not sim.running and sim.proc is not None and sim.proc.returncode == 0
