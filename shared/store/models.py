"""Tables of the trading ledger. Money columns are exact decimals stored as text.

SQLite has no exact decimal type, so amounts are kept as text and converted with ``Decimal``
at the edges; PostgreSQL uses the same columns so both back-ends behave identically.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.trading.vocabulary import OrderPurpose, OrderStatus, PositionStatus, Side


class Amount(TypeDecorator[Decimal]):
    """A ``Decimal`` persisted as its exact text form."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: object) -> str | None:
        return None if value is None else format(Decimal(value), "f")

    def process_result_value(self, value: str | None, dialect: object) -> Decimal | None:
        return None if value is None else Decimal(value)


class Word(TypeDecorator[str]):
    """A word of one of the ledger's vocabularies (``shared.trading.vocabulary``), kept as its text.

    A value written must be a word of the vocabulary, so a misspelt status fails at the write
    instead of becoming a row no reader understands; a value read is the enum member.
    """

    impl = String
    cache_ok = True

    def __init__(self, vocabulary: type[StrEnum], length: int) -> None:
        super().__init__(length)
        self.vocabulary = vocabulary

    def process_bind_param(self, value: Any, dialect: object) -> str | None:
        return None if value is None else self.vocabulary(value).value

    def process_result_value(self, value: str | None, dialect: object) -> StrEnum | None:
        return None if value is None else self.vocabulary(value)


class Base(DeclarativeBase):
    pass


class Order(Base):
    """One order the executor intended or sent; ``client_order_id`` is derived from the signal."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(String(36), unique=True)
    symbol: Mapped[str] = mapped_column(String(20))
    side: Mapped[Side] = mapped_column(Word(Side, 4))
    order_type: Mapped[str] = mapped_column(String(16), default="MARKET")
    purpose: Mapped[OrderPurpose] = mapped_column(Word(OrderPurpose, 16))
    status: Mapped[OrderStatus] = mapped_column(Word(OrderStatus, 20))
    requested_quantity: Mapped[Decimal] = mapped_column(Amount)
    executed_quantity: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    cumulative_quote: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    commission_base: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    commission_quote: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    exchange_order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    signal_event_id: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id"), nullable=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)  # wall clock
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)  # wall clock
    # Market time of the decision that sent it: the signal candle's close, the SL/TP tick's
    # exchange time, or the market clock at a command (a replay runs ahead of the wall clock).
    market_time_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The price it rests at: a LIMIT_MAKER entry's limit (the last one sent) and the best bid it
    # was priced from; an OCO leg's limit and stop. NULL for MARKET orders.
    limit_price: Mapped[Decimal | None] = mapped_column(Amount, nullable=True)
    stop_price: Mapped[Decimal | None] = mapped_column(Amount, nullable=True)
    best_bid: Mapped[Decimal | None] = mapped_column(Amount, nullable=True)

    __table_args__ = (Index("ix_orders_symbol_created", "symbol", "created_at_ms"),)


class Fill(Base):
    """One trade of one order; the exchange's trade id makes a fill count once."""

    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(ForeignKey("orders.client_order_id"))
    symbol: Mapped[str] = mapped_column(String(20))
    trade_id: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(Amount)
    quantity: Mapped[Decimal] = mapped_column(Amount)
    quote_quantity: Mapped[Decimal] = mapped_column(Amount)
    commission: Mapped[Decimal] = mapped_column(Amount)
    commission_asset: Mapped[str] = mapped_column(String(16), default="")
    time_ms: Mapped[int] = mapped_column(BigInteger)  # the exchange's trade time
    market_time_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # its order's decision

    __table_args__ = (UniqueConstraint("symbol", "trade_id", name="uq_fills_symbol_trade"),)


class Position(Base):
    """A long position from its entry fill to its exit fill, with the realised % after fees."""

    __tablename__ = "positions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(20))
    status: Mapped[PositionStatus] = mapped_column(Word(PositionStatus, 10))
    entry_client_order_id: Mapped[str] = mapped_column(String(36), unique=True)
    entry_price: Mapped[Decimal | None] = mapped_column(Amount, nullable=True)
    quantity: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    quote_spent: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    stop_loss: Mapped[Decimal | None] = mapped_column(Amount, nullable=True)
    take_profit: Mapped[Decimal | None] = mapped_column(Amount, nullable=True)
    entry_time_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    entry_candle_open_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    exit_client_order_id: Mapped[str | None] = mapped_column(String(36), nullable=True, unique=True)
    exit_price: Mapped[Decimal | None] = mapped_column(Amount, nullable=True)
    quote_received: Mapped[Decimal | None] = mapped_column(Amount, nullable=True)
    exit_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    exit_time_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    exit_candle_open_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    return_pct: Mapped[Decimal | None] = mapped_column(Amount, nullable=True)
    # ``entry_time_ms``/``exit_time_ms`` are the exchange's fill stamps; these the decisions' market time.
    entry_market_time_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    exit_market_time_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Base below one step left by earlier exits (the bot's own), sold with this exit, and what
    # this exit left in turn: the bot's dust of the symbol is the last closed position's dust_out.
    dust_in: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0), server_default="0")
    dust_out: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0), server_default="0")
    parameters_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The strategy whose signal opened it; parameters_version is the version of its symbol's set.
    strategy: Mapped[str | None] = mapped_column(String(64), nullable=True)
    entry_indicators: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON of the signal's indicators

    __table_args__ = (
        Index("ix_positions_symbol_status", "symbol", "status"),
        Index("ix_positions_symbol_exit_market", "symbol", "exit_market_time_ms"),
    )


class Account(Base):
    """A dashboard account besides the owner: its name, its role and its password's scrypt hash.

    Written only by the api and ``make user``; the owner (``DASHBOARD_PASSWORD``) has no row.
    """

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # viewer | operator
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)  # wall clock
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)  # wall clock


class ApiToken(Base):
    """A personal API token (``Authorization: Bearer``): only the SHA-256 of its text is kept.

    ``account`` names its holder (``owner`` or an account's name); it acts with ``role``, never
    more than its holder's role at the time of the request. Revoked tokens keep their row.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)  # wall clock
    revoked_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # wall clock

    __table_args__ = (Index("ix_api_tokens_account", "account"),)
