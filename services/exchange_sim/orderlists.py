"""Order lists (OCO): the pair of orders, its statuses and its JSON shapes (REST and listStatus).

The list holds the balance its orders share (one lock for both legs, as on Binance: an OCO
SELL locks its quantity once). The lock moves to the leg that starts working, when the other
one expires (``OCO_TRIGGER``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from .orders import Order


@dataclass
class OrderList:
    """One OCO: its two order ids (below leg first) and its status."""

    order_list_id: int
    list_client_order_id: str
    symbol: str
    order_ids: list[int]
    transaction_time: int
    list_status_type: str = "EXEC_STARTED"
    list_order_status: str = "EXECUTING"
    contingency_type: str = "OCO"
    lock_asset: str = ""
    locked: Decimal = Decimal(0)

    @property
    def is_open(self) -> bool:
        return self.list_order_status == "EXECUTING"

    def finish(self, now: int) -> None:
        self.list_status_type = self.list_order_status = "ALL_DONE"
        self.transaction_time = now

    def summary(self, orders: dict[int, Order]) -> dict[str, object]:
        """The shape of ``GET /api/v3/orderList`` (and of each row of openOrderList / allOrderList)."""
        return {
            "orderListId": self.order_list_id,
            "contingencyType": self.contingency_type,
            "listStatusType": self.list_status_type,
            "listOrderStatus": self.list_order_status,
            "listClientOrderId": self.list_client_order_id,
            "transactionTime": self.transaction_time,
            "symbol": self.symbol,
            "orders": [
                {"symbol": self.symbol, "orderId": i, "clientOrderId": orders[i].client_order_id}
                for i in self.order_ids
            ],
        }

    def response(self, orders: dict[int, Order], reports: list[dict[str, object]]) -> dict[str, object]:
        """Placement and cancel responses: the summary plus one report per order."""
        return {**self.summary(orders), "orderReports": reports}

    def status_event(self, orders: dict[int, Order], now: int) -> dict[str, object]:
        """The ``listStatus`` user-data event (user-data-stream.md)."""
        return {
            "e": "listStatus",
            "E": now,
            "s": self.symbol,
            "g": self.order_list_id,
            "c": self.contingency_type,
            "l": self.list_status_type,
            "L": self.list_order_status,
            "r": "NONE",
            "C": self.list_client_order_id,
            "T": self.transaction_time,
            "O": [{"s": self.symbol, "i": i, "c": orders[i].client_order_id} for i in self.order_ids],
        }

    def to_state(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["locked"] = str(self.locked)
        return data

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> OrderList:
        return cls(**{**data, "locked": Decimal(data["locked"])})
