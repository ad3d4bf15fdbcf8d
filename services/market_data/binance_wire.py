"""The only module that knows Binance's one-letter fields: raw dicts -> shared event payloads.

Prices and quantities are parsed from Binance's decimal strings into ``Decimal`` exactly.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.events import Balances, ExecutionReport, Kline, Ticker
from shared.trading.vocabulary import Side


class StreamError(RuntimeError):
    """python-binance delivered an in-band error message (``{"e": "error", ...}``)."""


def unwrap(message: dict[str, Any]) -> dict[str, Any]:
    """The payload of a combined-stream message; raise ``StreamError`` on an error message."""
    if message.get("e") == "error":
        raise StreamError(f"{message.get('type', 'error')}: {message.get('m', '')}")
    return message.get("data", message)


def ticker(data: dict[str, Any]) -> Ticker:
    """A ``24hrMiniTicker`` event."""
    return Ticker(
        symbol=data["s"],
        price=Decimal(data["c"]),
        open=Decimal(data["o"]),
        high=Decimal(data["h"]),
        low=Decimal(data["l"]),
        volume=Decimal(data["v"]),
        quote_volume=Decimal(data["q"]),
    )


def kline(data: dict[str, Any]) -> Kline:
    """A ``kline`` stream event; ``closed`` is Binance's ``x``."""
    k = data["k"]
    return Kline(
        symbol=data["s"],
        interval=k["i"],
        open_time_ms=int(k["t"]),
        close_time_ms=int(k["T"]),
        open=Decimal(k["o"]),
        high=Decimal(k["h"]),
        low=Decimal(k["l"]),
        close=Decimal(k["c"]),
        volume=Decimal(k["v"]),
        quote_volume=Decimal(k["q"]),
        trades=int(k["n"]),
        closed=bool(k["x"]),
    )


def rest_kline(symbol: str, interval: str, row: list[Any], closed: bool = True) -> Kline:
    """One 12-field row of ``GET /api/v3/klines``."""
    return Kline(
        symbol=symbol,
        interval=interval,
        open_time_ms=int(row[0]),
        close_time_ms=int(row[6]),
        open=Decimal(row[1]),
        high=Decimal(row[2]),
        low=Decimal(row[3]),
        close=Decimal(row[4]),
        volume=Decimal(row[5]),
        quote_volume=Decimal(row[7]),
        trades=int(row[8]),
        closed=closed,
    )


def execution_report(data: dict[str, Any]) -> ExecutionReport:
    """An ``executionReport`` user-data event."""
    return ExecutionReport(
        symbol=data["s"],
        client_order_id=data["c"],
        original_client_order_id=data.get("C") or "",
        order_id=int(data["i"]),
        side=data["S"],
        order_type=data["o"],
        execution_type=data["x"],
        status=data["X"],
        quantity=Decimal(data["q"]),
        price=Decimal(data["p"]),
        last_quantity=Decimal(data["l"]),
        last_price=Decimal(data["L"]),
        cumulative_quantity=Decimal(data["z"]),
        cumulative_quote=Decimal(data.get("Z") or "0"),
        commission=Decimal(data.get("n") or "0"),
        commission_asset=data.get("N"),
        trade_id=int(data.get("t", -1)),
        reject_reason=data.get("r") or "",
        transact_time_ms=int(data.get("T") or data.get("E") or 0),
    )


def account_position(data: dict[str, Any]) -> Balances:
    """An ``outboundAccountPosition`` event: the assets whose balance changed."""
    return Balances(balances={b["a"]: {"free": Decimal(b["f"]), "locked": Decimal(b["l"])} for b in data["B"]})


def account_snapshot(account: dict[str, Any]) -> Balances:
    """``GET /api/v3/account``: every non-zero balance, as a full snapshot."""
    balances = {
        b["asset"]: {"free": Decimal(b["free"]), "locked": Decimal(b["locked"])}
        for b in account.get("balances", [])
        if Decimal(b["free"]) or Decimal(b["locked"])
    }
    return Balances(balances=balances, full=True)


def trade_as_report(trade: dict[str, Any], client_order_id: str) -> ExecutionReport:
    """A fill found through ``myTrades`` during reconciliation, shaped as an execution report."""
    quantity, price = Decimal(trade["qty"]), Decimal(trade["price"])
    return ExecutionReport(
        symbol=trade["symbol"],
        client_order_id=client_order_id,
        order_id=int(trade["orderId"]),
        side=Side.BUY if trade.get("isBuyer") else Side.SELL,
        order_type="MARKET",
        execution_type="TRADE",
        status="RECONCILED",
        quantity=quantity,
        price=price,
        last_quantity=quantity,
        last_price=price,
        cumulative_quantity=quantity,
        cumulative_quote=Decimal(trade["quoteQty"]),
        commission=Decimal(trade["commission"]),
        commission_asset=trade.get("commissionAsset"),
        trade_id=int(trade["id"]),
        transact_time_ms=int(trade["time"]),
    )
