"""Partial fills against a thin simulated book: a MARKET order that sweeps every level and
expires, fills arriving as several execution reports, dust after the exit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from shared import streams
from shared.bus import publish
from shared.events import ExecutionReport, make_event
from shared.trading.ids import entry_client_order_id, exit_client_order_id
from tests.executor.harness import InProcess, candle, start_in_process, wait_until
from tests.support.simulator import SimulatorProcess, start_simulator

SYMBOL = "BTCUSDT"


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    # 3000 USDT over 10 levels: an entry of ~5000 USDT fills ten times and expires.
    with start_simulator(
        tmp_path_factory.mktemp("thin_book"),
        speed=1,  # exchange time = wall time, as the signals' candles assume (harness.candle)
        history=50,
        extra_env={"EXCHANGE_SIM_MARKET_DEPTH_QUOTE": "3000"},
    ) as sim:
        yield sim


@pytest.fixture
async def ex(simulator: SimulatorProcess, redis_url: str, sqlite_url: str) -> AsyncIterator[InProcess]:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0"})
    handle = await start_in_process(simulator, redis_url, sqlite_url, SYMBOL)
    yield handle
    await handle.close()
    simulator.reset_faults()


async def test_an_entry_that_expires_partly_filled_opens_with_what_was_credited(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    order = await ex.ledger.order(client_id)
    assert order.status == "EXPIRED" and 0 < order.executed_quantity < order.requested_quantity
    fills = await ex.ledger.fills(client_id)
    assert len(fills) > 1
    bought = sum((f.quantity for f in fills), Decimal(0))
    assert bought == order.executed_quantity
    assert position.quantity == bought - sum((f.commission for f in fills), Decimal(0))
    assert position.entry_price == sum((f.quote_quantity for f in fills), Decimal(0)) / bought

    await ex.bus.close_position(SYMBOL)
    [closed] = await wait_until(lambda: ex.ledger.closed(SYMBOL), 10, "position CLOSED")
    exit_order = await ex.ledger.order(exit_client_order_id(client_id))
    assert exit_order.status == "FILLED" and exit_order.executed_quantity <= position.quantity
    assert position.quantity - exit_order.executed_quantity < Decimal("0.00001")  # below one step: dust
    dust = await ex.bus.alerts("dust")
    assert (position.quantity > exit_order.executed_quantity) == bool(dust)
    assert closed.quantity == position.quantity and closed.return_pct is not None


def reports_of(sim: SimulatorProcess, client_id: str) -> list[ExecutionReport]:
    """The execution reports market_data would publish for one order (TRADE per fill, then final)."""
    state = sim.state()
    [order] = [o for o in state["orders"] if o["clientOrderId"] == client_id]
    trades = [t for t in state["trades"] if t["orderId"] == order["orderId"]]
    reports, quantity, quote = [], Decimal(0), Decimal(0)
    for index, trade in enumerate(trades):
        quantity += Decimal(trade["qty"])
        quote += Decimal(trade["quoteQty"])
        last = index == len(trades) - 1 and order["status"] == "FILLED"
        reports.append(
            ExecutionReport(
                symbol=SYMBOL,
                client_order_id=client_id,
                order_id=order["orderId"],
                side=order["side"],
                order_type="MARKET",
                execution_type="TRADE",
                status="FILLED" if last else "PARTIALLY_FILLED",
                quantity=Decimal(order["origQty"]),
                price=Decimal(0),
                last_quantity=Decimal(trade["qty"]),
                last_price=Decimal(trade["price"]),
                cumulative_quantity=quantity,
                cumulative_quote=quote,
                commission=Decimal(trade["commission"]),
                commission_asset=trade["commissionAsset"],
                trade_id=trade["id"],
                transact_time_ms=trade["time"],
            )
        )
    if order["status"] == "EXPIRED":
        reports.append(
            reports[-1].model_copy(
                update={
                    "execution_type": "EXPIRED",
                    "status": "EXPIRED",
                    "last_quantity": Decimal(0),
                    "last_price": Decimal(0),
                    "commission": Decimal(0),
                    "commission_asset": None,
                    "trade_id": -1,
                }
            )
        )
    return reports


async def test_execution_reports_settle_an_order_whose_answer_was_lost(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    # The order executes, its answer is lost and the exchange keeps failing order queries.
    simulator.fail_next(200, status=503, execute=True, path_prefix="/api/v3/order")
    open_time = candle()
    client_id = entry_client_order_id(SYMBOL, open_time)
    await ex.bus.signal(SYMBOL, "BUY", open_time)
    await wait_until(lambda: ex.bus.alerts("order_unsettled"), 10, "order unsettled")
    reports = reports_of(simulator, client_id)
    assert len(reports) > 2
    for report in reports + reports[:2]:  # the first two delivered twice
        await publish(ex.redis, streams.executions_stream(SYMBOL), make_event(report, "market_data"))
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN from reports")
    order = await ex.ledger.order(client_id)
    fills = await ex.ledger.fills(client_id)
    assert order.status == "EXPIRED" and len(fills) == len(reports) - 1
    assert order.executed_quantity == sum((f.quantity for f in fills), Decimal(0)) == reports[-1].cumulative_quantity
    assert position.quantity == order.executed_quantity - sum((f.commission for f in fills), Decimal(0))
    assert len([o for o in simulator.state()["orders"] if o["clientOrderId"] == client_id]) == 1
