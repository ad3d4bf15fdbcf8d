"""Orders and trades from a migrated SQLite ledger seeded with the store's models."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from shared.store import queries
from shared.store.database import open_engine
from tests.api.helpers import T0, seed


async def test_orders_newest_first_paginated_with_each_closed_trades_return(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    await seed(ledger_url)
    first = (await client.get("/api/orders", params={"limit": 4})).json()
    assert first["total"] == 11 and first["limit"] == 4 and first["offset"] == 0
    ids = [item["client_order_id"] for item in first["items"]]
    assert ids == ["eth-e", "x4", "e4", "x3"]
    exit_order = first["items"][1]
    assert exit_order["return_pct"] == "6.8" and exit_order["exit_reason"] == "take_profit"
    assert exit_order["average_price"] == "107.12" and exit_order["cumulative_quote"] == "53.56"
    assert first["items"][2]["return_pct"] is None  # entry orders carry no result
    # A limit entry shows the price it rested at and the bid it was priced from; MARKET orders none.
    limit_entry = first["items"][0]
    assert limit_entry["order_type"] == "LIMIT_MAKER"
    assert (limit_entry["limit_price"], limit_entry["best_bid"], limit_entry["stop_price"]) == (
        "2500.5",
        "2500.6",
        None,
    )
    assert (exit_order["order_type"], exit_order["limit_price"], exit_order["best_bid"]) == ("MARKET", None, None)
    second = (await client.get("/api/orders", params={"limit": 4, "offset": 4})).json()
    assert [item["client_order_id"] for item in second["items"]] == ["e3", "x2", "e2", "x1"]
    last = (await client.get("/api/orders", params={"limit": 4, "offset": 8})).json()
    assert [item["client_order_id"] for item in last["items"]] == ["e1", "x0", "e0"]
    only_eth = (await client.get("/api/orders", params={"symbol": "ETHUSDT"})).json()
    assert only_eth["total"] == 1 and only_eth["items"][0]["symbol"] == "ETHUSDT"


async def test_trades_are_closed_positions_newest_first(client: httpx.AsyncClient, ledger_url: str) -> None:
    await seed(ledger_url)
    page = (await client.get("/api/trades", params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 5
    assert [item["return_pct"] for item in page["items"]] == ["5.8", "4.8"]
    assert page["items"][0]["exit_price"] == "106.09" and page["items"][0]["status"] == "CLOSED"


async def test_paging_limits_are_validated(client: httpx.AsyncClient, ledger_url: str) -> None:
    assert (await client.get("/api/orders", params={"limit": 0})).status_code == 422
    assert (await client.get("/api/orders", params={"limit": 501})).status_code == 422
    assert (await client.get("/api/orders", params={"offset": -1})).status_code == 422
    assert (await client.get("/api/orders", params={"symbol": "btc'; drop"})).status_code == 422


async def test_without_the_ledger_tables_history_answers_503(client: httpx.AsyncClient, settings) -> None:
    import sqlite3

    # The api brings the schema up to date at start; a ledger that lost its tables since (or a
    # database that cannot answer) is "not available", never a 500.
    with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as db:
        db.execute("drop table orders")
    response = await client.get("/api/orders")
    assert response.status_code == 503 and "not available" in response.json()["detail"]


@pytest.mark.parametrize("symbol", [None, "ETHUSDT"])
async def test_open_positions_query(ledger_url: str, symbol: str | None) -> None:
    await seed(ledger_url, trades=1)
    engine = open_engine(ledger_url)
    try:
        rows = await queries.open_positions(engine, symbol)
        assert [(row["symbol"], row["status"], row["entry_price"]) for row in rows] == [
            ("ETHUSDT", "OPEN", Decimal("2500.5"))
        ]
        assert await queries.open_positions(engine, "BTCUSDT") == []
        since = await queries.positions_since(engine, "BTCUSDT", T0)
        assert [row["return_pct"] for row in since] == [Decimal("2.8")]
    finally:
        await engine.dispose()
