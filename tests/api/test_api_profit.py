"""``/api/profit``, periods, equity and trades on a ledger the executor's store functions wrote:
the backtester's trades recorded order by order give exactly the backtest summary's figures."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import httpx
from redis.asyncio import Redis

from backtest.engine import run_backtest
from services.executor import store
from shared import streams
from shared.candles import load_candles
from shared.codec import dumps
from shared.parameters import validate_parameters
from shared.store.database import open_engine, session_factory
from shared.trading import ledger
from shared.trading.protection import realised_return_pct

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"
MIN = 60_000


async def record_backtest(url: str, trades, fee: D) -> None:
    """Write each backtest trade as the executor does: intent, fill (commission in base on the buy,
    in quote on the sell), open, exit intent, fill, close with the dust the exit left."""
    engine = open_engine(url)
    sessions = session_factory(engine)
    trade_id = 0
    try:
        for number, t in enumerate(trades):
            entry_id, exit_id = f"EB-BTCUSDT-{t.entry_time}", f"XS-BTCUSDT-{t.entry_time}"
            async with sessions.begin() as session:
                position, order = await store.create_entry_intent(
                    session,
                    symbol="BTCUSDT",
                    client_order_id=entry_id,
                    quantity=t.quantity,
                    signal_event_id=f"s{number}",
                    reason="signal",
                    entry_candle_open_ms=t.entry_time,
                    now_ms=t.entry_time + MIN,
                    market_time_ms=t.entry_time + MIN,
                    parameters_version=3,
                    entry_indicators=dumps({"rsi": 50.0}),
                )
                assert position.dust_in == t.dust_in  # the store carries the dust as the backtester does
                trade_id += 1
                buy = ledger.FillData(
                    trade_id,
                    t.entry_price,
                    t.quantity,
                    t.quantity * t.entry_price,
                    t.quantity * fee,
                    "BTC",
                    t.entry_time + MIN + 5,
                )
                await store.record_fill(session, order, buy)
                totals = ledger.totals([buy], "BTC", "USDT")
                await store.update_order(
                    session,
                    order,
                    now_ms=1,
                    status="FILLED",
                    executed_quantity=t.quantity,
                    cumulative_quote=totals.quote,
                    commission_base=totals.commission_base,
                )
                await store.mark_position_open(
                    session,
                    position,
                    entry_price=t.entry_price,
                    quantity=totals.credited_base,
                    quote_spent=totals.spent_quote,
                    stop_loss=t.stop_loss,
                    take_profit=t.take_profit,
                    entry_time_ms=buy.time_ms,
                )
                exit_order = await store.create_exit_intent(
                    session,
                    position,
                    client_order_id=exit_id,
                    quantity=t.sold_quantity,
                    exit_reason=t.exit_reason.value,
                    exit_candle_open_ms=t.exit_time,
                    signal_event_id=f"x{number}",
                    reason="exit",
                    now_ms=2,
                    market_time_ms=t.exit_time + MIN,
                )
                trade_id += 1
                gross = t.sold_quantity * t.exit_price
                sell = ledger.FillData(
                    trade_id, t.exit_price, t.sold_quantity, gross, gross * fee, "USDT", t.exit_time + MIN + 5
                )
                await store.record_fill(session, exit_order, sell)
                sold = ledger.totals([sell], "BTC", "USDT")
                await store.update_order(
                    session,
                    exit_order,
                    now_ms=3,
                    status="FILLED",
                    executed_quantity=t.sold_quantity,
                    cumulative_quote=sold.quote,
                    commission_quote=sold.commission_quote,
                )
                await store.mark_position_closed(
                    session,
                    position,
                    exit_price=t.exit_price,
                    quote_received=sold.received_quote,
                    return_pct=realised_return_pct(position.quote_spent, sold.received_quote),
                    exit_time_ms=sell.time_ms,
                    dust_out=position.quantity + position.dust_in - t.sold_quantity,
                )
    finally:
        await engine.dispose()


async def test_profit_of_the_ledger_equals_the_backtest_summary(
    client: httpx.AsyncClient, redis_client: Redis, ledger_url: str
) -> None:
    result = run_backtest(
        load_candles(SAMPLE), validate_parameters({"STOP_LOSS_PERCENTAGE": "0.004", "TAKE_PROFIT_PERCENTAGE": "0.008"})
    )
    trades, summary = result.trades, result.summary
    assert len(trades) > 20 and any(t.dust_in > 0 for t in trades)
    await record_backtest(ledger_url, trades, result.config.fee)
    last = D(repr(float(result.candles.close[-1])))
    cash = result.config.balance + sum((t.quote_received - t.quote_spent for t in trades), D(0))
    f = result.filters
    await redis_client.hset(
        streams.SYMBOL_INFO,
        "BTCUSDT",
        dumps(
            {
                "symbol": "BTCUSDT",
                "base_asset": "BTC",
                "quote_asset": "USDT",
                "tick_size": str(f.tick_size),
                "step_size": str(f.step_size),
                "min_qty": str(f.min_qty),
                "min_notional": str(f.min_notional),
            }
        ),
    )
    await redis_client.hset(streams.MARKET_LAST_PRICE, "BTCUSDT", str(last))
    await redis_client.hset(streams.MARKET_CLOCK, "BTCUSDT", str(int(result.candles.open_time[-1]) + MIN))
    await redis_client.hset(
        streams.ACCOUNT_SNAPSHOT,
        mapping={
            "USDT": dumps({"free": str(cash), "locked": "0"}),
            "BTC": dumps({"free": str(trades[-1].dust_out), "locked": "0"}),
        },
    )

    body = (await client.get("/api/profit", params={"symbol": "BTCUSDT"})).json()
    expected = {k: v for k, v in summary["profit"].items() if k != "quote_asset"}
    assert body["total"] == expected
    assert body["symbols"]["BTCUSDT"] == expected
    assert body["quote_asset"] == "USDT" and expected["starting_equity_quote"] == "10000.00"
    everything = (await client.get("/api/profit")).json()
    assert everything["total"]["realised_quote"] == expected["realised_quote"]
    assert everything["symbols"]["ETHUSDT"]["trades"] == 0

    days = (await client.get("/api/profit/periods", params={"unit": "day"})).json()
    assert sum(p["trades"] for p in days["periods"]) == len(trades) and days["time_zone"] == "UTC"
    assert D(sum(D(p["realised_quote"]) for p in days["periods"])).quantize(D("0.1")) == D(
        expected["realised_quote"]
    ).quantize(D("0.1"))
    months = (await client.get("/api/profit/periods", params={"unit": "month"})).json()
    assert [p["label"] for p in months["periods"]] == ["2025-05"]
    assert (await client.get("/api/profit/periods", params={"unit": "year"})).status_code == 422
    assert (await client.get("/api/profit", params={"symbol": "DOGEUSDT"})).status_code == 404

    curve = (await client.get("/api/profit/equity", params={"symbol": "BTCUSDT"})).json()
    assert len(curve["points"]) == len(trades) + 1 and curve["points"][-1]["equity_quote"] == expected["equity_quote"]
    assert max(D(p["drawdown_quote"]) for p in curve["points"]) == D(expected["max_drawdown_quote"])

    page = (await client.get("/api/trades", params={"limit": 1})).json()
    newest, t = page["items"][0], trades[-1]
    assert page["total"] == len(trades)
    assert newest["entry_time_ms"] == t.entry_time + MIN and newest["exit_time_ms"] == t.exit_time + MIN
    assert newest["exit_candle_open_ms"] == t.exit_time and newest["parameters_version"] == 3
    assert newest["exit_price"] == format(t.exit_price.quantize(D("0.01")), "f")
    assert len(newest["quantity"].split(".")[1]) == 5 and len(newest["quote_spent"].split(".")[1]) == 2
    detail = (await client.get(f"/api/trades/{newest['id']}")).json()
    assert [o["purpose"] for o in detail["orders"]] == ["entry", "exit"]
    assert [o["market_time_ms"] for o in detail["orders"]] == [t.entry_time + MIN, t.exit_time + MIN]
    assert [x["time_ms"] for x in detail["fills"]] == [t.entry_time + MIN, t.exit_time + MIN]
    assert detail["fills"][0]["exchange_ms"] == t.entry_time + MIN + 5 and detail["entry_indicators"] == {"rsi": 50.0}
    assert (await client.get("/api/trades/999999")).status_code == 404


async def test_open_trades_are_listed_first_with_their_unrealised_result(
    client: httpx.AsyncClient, redis_client: Redis, ledger_url: str
) -> None:
    from tests.api.helpers import seed

    await seed(ledger_url, trades=2)
    await redis_client.hset(streams.MARKET_LAST_PRICE, "ETHUSDT", "2600")
    page = (await client.get("/api/trades", params={"status": "all"})).json()
    assert [item["status"] for item in page["items"]] == ["OPEN", "CLOSED", "CLOSED"]
    assert page["items"][0]["unrealised_quote"] == "9.95" and page["items"][0]["unrealised_pct"] == "3.98"
    only_open = (await client.get("/api/trades", params={"status": "open"})).json()
    assert only_open["total"] == 1
    assert (await client.get("/api/trades", params={"status": "bogus"})).status_code == 422
