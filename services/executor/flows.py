"""The executor's flows built on one shell, and the handlers through which effects start them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.executor.book import SymbolBook
from services.executor.context import Shell
from services.executor.core.exits import ExitRequest
from services.executor.core.refusals import Refusal
from services.executor.entries import Entries
from services.executor.exchange import SymbolInfo
from services.executor.exits import Exits
from services.executor.fills import Fills
from services.executor.follow import StopFollower
from services.executor.guard import Guard
from services.executor.limits import LimitEntries
from services.executor.positions import Positions
from services.executor.sender import Sender
from services.executor.settle import Settler
from shared.store.models import Order


class Flows:
    """Every flow of one executor; also what effects (``context.FlowHandlers``) and reconciliation
    (``reconcile.Settling``) may start."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.positions = Positions(shell)
        self.fills = Fills(shell, self.positions)
        self.settler = Settler(shell, self.fills, self.positions)
        self.sender = Sender(shell, self.settler)
        self.guard = Guard(shell, self.fills, self.settler)
        self.follower = StopFollower(shell, self.guard)
        self.exits = Exits(shell, self.sender, self.settler, self.guard)
        self.entries = Entries(shell, self.sender)
        self.limits = LimitEntries(shell, self.fills, self.settler, self.sender)
        shell.flows = self

    async def request_exit(self, book: SymbolBook, request: ExitRequest) -> str:
        return await self.exits.request_exit(book, request)

    async def refuse_order(self, book: SymbolBook, order: Order, refusal: Refusal) -> None:
        await self.positions.refuse_order(book, order, refusal)

    async def apply_answer(self, book: SymbolBook, order: Order, body: Mapping[str, Any]) -> None:
        await self.fills.apply_answer(book, order, body)

    async def mark_unknown(self, book: SymbolBook, order: Order, reason: str) -> None:
        await self.sender.mark_unknown(book, order, reason)

    async def settle_symbol(self, book: SymbolBook) -> None:
        await self.settler.settle_symbol(book)

    async def symbol_info(self, book: SymbolBook) -> SymbolInfo:
        return await self.shell.symbol_info(book)

    async def finalize(self, book: SymbolBook, client_order_id: str) -> None:
        await self.positions.finalize(book, client_order_id)

    async def protect(self, book: SymbolBook) -> None:
        await self.guard.protect(book)

    async def reload_position(self, book: SymbolBook) -> None:
        await self.positions.reload_position(book)

    async def count_missed(self, book: SymbolBook) -> None:
        await self.positions.count_missed(book)
