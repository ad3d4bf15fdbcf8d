"""Balances of the single simulated account: free and locked amount per asset (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .decimals import fmt8, q8

COMMISSION_RATE = Decimal("0.001")  # Binance's default 0.1 % for both maker and taker


@dataclass(frozen=True)
class Fees:
    """The account's commission rates (fractions): a resting order's fills pay ``maker``, every
    other fill ``taker``; ``commissionRates`` of ``GET /api/v3/account`` reports both."""

    maker: Decimal = COMMISSION_RATE
    taker: Decimal = COMMISSION_RATE


class BalanceError(ValueError):
    """An amount was taken that the account does not have."""


class Balances:
    """Free/locked amounts; every change keeps both non-negative."""

    def __init__(self, start: dict[str, Decimal] | None = None) -> None:
        self.free: dict[str, Decimal] = dict(start or {})
        self.locked: dict[str, Decimal] = {asset: Decimal(0) for asset in self.free}

    def free_of(self, asset: str) -> Decimal:
        return self.free.get(asset, Decimal(0))

    def locked_of(self, asset: str) -> Decimal:
        return self.locked.get(asset, Decimal(0))

    def _touch(self, asset: str) -> None:
        self.free.setdefault(asset, Decimal(0))
        self.locked.setdefault(asset, Decimal(0))

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from free to locked (an order now rests on the book)."""
        self.debit(asset, amount)
        self.locked[asset] += amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from locked back to free."""
        self._touch(asset)
        if amount > self.locked[asset]:
            raise BalanceError(f"{asset}: unlock {amount} > locked {self.locked[asset]}")
        self.locked[asset] -= amount
        self.free[asset] += amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self._touch(asset)
        self.free[asset] += amount

    def debit(self, asset: str, amount: Decimal) -> None:
        self._touch(asset)
        if amount > self.free[asset]:
            raise BalanceError(f"{asset}: need {amount}, free {self.free[asset]}")
        self.free[asset] -= amount

    def set(self, asset: str, free: Decimal) -> None:
        """Set the free amount directly (admin endpoint)."""
        self._touch(asset)
        self.free[asset] = free

    def rows(self, omit_zero: bool = False, assets: Iterable[str] = ()) -> list[dict[str, str]]:
        """``account.balances`` entries, sorted by asset; ``assets`` are listed even when never held,
        as Binance lists every asset of the account at zero unless ``omitZeroBalances=true``."""
        rows = []
        for asset in sorted(set(self.free) | set(self.locked) | set(assets)):
            free, locked = self.free_of(asset), self.locked_of(asset)
            if omit_zero and free == 0 and locked == 0:
                continue
            rows.append({"asset": asset, "free": fmt8(free), "locked": fmt8(locked)})
        return rows

    def position_event(self, assets: list[str], now: int) -> dict[str, object]:
        """The ``outboundAccountPosition`` user-data event for ``assets``."""
        return {
            "e": "outboundAccountPosition",
            "E": now,
            "u": now,
            "B": [{"a": a, "f": fmt8(self.free_of(a)), "l": fmt8(self.locked_of(a))} for a in assets],
        }

    def to_state(self) -> dict[str, dict[str, str]]:
        return {
            asset: {"free": str(self.free_of(asset)), "locked": str(self.locked_of(asset))}
            for asset in sorted(set(self.free) | set(self.locked))
        }

    @classmethod
    def from_state(cls, data: dict[str, dict[str, str]]) -> Balances:
        balances = cls()
        for asset, row in data.items():
            balances.free[asset] = Decimal(row["free"])
            balances.locked[asset] = Decimal(row["locked"])
        return balances


def commission(side: str, qty: Decimal, quote_qty: Decimal, rate: Decimal = COMMISSION_RATE) -> Decimal:
    """Fee on one fill at ``rate`` (the maker or the taker rate), in the asset received: base for
    a BUY, quote for a SELL (8 decimals, half up)."""
    return q8((qty if side == "BUY" else quote_qty) * rate)
