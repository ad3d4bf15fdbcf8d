"""Pure bookkeeping: fills from every source, totals, candle of a tick."""

from __future__ import annotations

from decimal import Decimal as D

from shared.events import ExecutionReport
from shared.trading import ledger


def test_fill_from_a_full_response_computes_the_quote_amount() -> None:
    fill = ledger.fill_from_response(
        {"price": "100.5", "qty": "0.2", "commission": "0.0002", "commissionAsset": "BTC", "tradeId": 7}, 5
    )
    assert fill == ledger.FillData(7, D("100.5"), D("0.2"), D("20.10"), D("0.0002"), "BTC", 5)


def test_fill_from_my_trades_keeps_the_exchange_quote() -> None:
    row = {
        "id": 9,
        "orderId": 3,
        "price": "10",
        "qty": "2",
        "quoteQty": "20.00000001",
        "commission": "0.02",
        "commissionAsset": "USDT",
        "time": 77,
    }
    fill = ledger.fill_from_trade(row)
    assert fill.trade_id == 9 and fill.quote_quantity == D("20.00000001") and fill.time_ms == 77


def test_totals_split_commission_by_asset() -> None:
    fills = [
        ledger.FillData(1, D("100"), D("1"), D("100"), D("0.001"), "BTC", 10),
        ledger.FillData(2, D("110"), D("1"), D("110"), D("0.001"), "BTC", 12),
        ledger.FillData(3, D("110"), D("1"), D("110"), D("0.5"), "BNB", 11),
    ]
    totals = ledger.totals(fills, "BTC", "USDT")
    assert totals.quantity == D("3") and totals.quote == D("320")
    assert totals.credited_base == D("2.998") and totals.commission_quote == 0
    assert totals.average_price == D("320") / 3 and totals.last_time_ms == 12
    sell = ledger.totals([ledger.FillData(4, D("120"), D("2"), D("240"), D("0.24"), "USDT", 20)], "BTC", "USDT")
    assert sell.received_quote == D("239.76")
    assert ledger.totals([], "BTC", "USDT").average_price is None


def test_order_from_response_and_query() -> None:
    body = {
        "symbol": "BTCUSDT",
        "orderId": 4,
        "clientOrderId": "EB-BTCUSDT-1",
        "transactTime": 1000,
        "executedQty": "0.5",
        "cummulativeQuoteQty": "50",
        "status": "FILLED",
        "fills": [{"price": "100", "qty": "0.5", "commission": "0.0005", "commissionAsset": "BTC", "tradeId": 11}],
    }
    state = ledger.order_from_response(body)
    assert state.status == "FILLED" and state.exchange_order_id == 4 and state.fills[0].time_ms == 1000
    query = ledger.order_from_response(
        {
            "orderId": 4,
            "clientOrderId": "x",
            "status": "NEW",
            "executedQty": "0",
            "cummulativeQuoteQty": "0",
            "updateTime": 5,
        }
    )
    assert query.fills == () and query.time_ms == 5 and ledger.stored_status(query.status, "INTENT") == "SUBMITTED"


def test_stored_status_never_goes_back_from_a_final_status() -> None:
    assert ledger.stored_status("FILLED", "UNKNOWN") == "FILLED"
    assert ledger.stored_status("PARTIALLY_FILLED", "FILLED") == "FILLED"
    assert ledger.stored_status("NEW", "EXPIRED") == "EXPIRED"
    assert ledger.stored_status("EXPIRED", "PARTIALLY_FILLED") == "EXPIRED"
    # market_data replays trades found during its own reconciliation with status RECONCILED.
    assert ledger.stored_status("RECONCILED", "UNKNOWN") == "UNKNOWN"


def _report(**changes) -> ExecutionReport:
    values = {
        "symbol": "BTCUSDT",
        "client_order_id": "EB-BTCUSDT-1",
        "order_id": 4,
        "side": "BUY",
        "order_type": "MARKET",
        "execution_type": "TRADE",
        "status": "PARTIALLY_FILLED",
        "quantity": D("1"),
        "price": D("0"),
        "last_quantity": D("0.4"),
        "last_price": D("100"),
        "cumulative_quantity": D("0.4"),
        "cumulative_quote": D("40"),
        "commission": D("0.0004"),
        "commission_asset": "BTC",
        "trade_id": 21,
        "transact_time_ms": 99,
    }
    values.update(changes)
    return ExecutionReport(**values)


def test_order_from_report_carries_its_fill_only_when_it_traded() -> None:
    state = ledger.order_from_report(_report())
    assert state.fills[0].trade_id == 21 and state.fills[0].quote_quantity == D("40.0")
    assert ledger.order_from_report(_report(execution_type="NEW", trade_id=-1, last_quantity=D(0))).fills == ()
    expired = ledger.order_from_report(
        _report(execution_type="EXPIRED", status="EXPIRED", trade_id=-1, last_quantity=D(0))
    )
    assert expired.status == "EXPIRED" and expired.executed_quantity == D("0.4")


def test_candle_of_a_tick() -> None:
    assert ledger.candle_open_ms(1_747_699_259_999, 60_000) == 1_747_699_200_000
    assert ledger.candle_open_ms(1_747_699_260_000, 60_000) == 1_747_699_260_000
