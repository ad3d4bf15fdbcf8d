"""The ledger queries on SQLite and PostgreSQL: intents, idempotent fills, positions, queries."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.executor import store
from shared.store.models import Fill, Order, Position
from shared.trading import ledger
from shared.trading.protection import realised_return_pct

ENTRY = "EB-BTCUSDT-1747699200000"
EXIT = "XS-BTCUSDT-1747699200000"


def fill(
    trade_id: int, qty: str = "0.01", price: str = "100000", commission: str = "0.00001", asset: str = "BTC"
) -> ledger.FillData:
    return ledger.FillData(trade_id, D(price), D(qty), D(price) * D(qty), D(commission), asset, 1_000 + trade_id)


async def write_entry(
    sessions: async_sessionmaker, client_id: str = ENTRY, symbol: str = "BTCUSDT", read: store.EntryRead | None = None
):
    async with sessions.begin() as session:
        return await store.create_entry_intent(
            session,
            symbol=symbol,
            client_order_id=client_id,
            quantity=D("0.02"),
            signal_event_id="sig-1",
            reason="signal ema_cross",
            entry_candle_open_ms=1_747_699_200_000,
            now_ms=1,
            read=read,
        )


async def test_entry_intent_writes_an_opening_position_and_an_intent(sessions: async_sessionmaker) -> None:
    position, _order = await write_entry(sessions)
    async with sessions() as session:
        stored = await store.get_order(session, ENTRY)
        active = await store.active_position(session, "BTCUSDT")
        assert stored is not None and stored.status == "INTENT" and stored.requested_quantity == D("0.02")
        assert stored.position_id == position.id and stored.purpose == "entry" and stored.side == "BUY"
        assert active is not None and active.status == "OPENING" and active.entry_candle_open_ms == 1_747_699_200_000
        assert [o.client_order_id for o in await store.unsettled_orders(session, "BTCUSDT")] == [ENTRY]
        assert await store.active_position(session, "ETHUSDT") is None


async def test_the_written_intent_is_whole_and_changes_to_it_in_its_transaction_are_kept(
    sessions: async_sessionmaker,
) -> None:
    """The rows come back as the ledger holds them, every column readable once the session is
    gone, and they belong to the caller's session: a change to them there is written with it."""
    async with sessions.begin() as session:
        position, order = await store.create_entry_intent(
            session,
            symbol="BTCUSDT",
            client_order_id=ENTRY,
            quantity=D("0.02"),
            signal_event_id="sig-1",
            reason="signal",
            entry_candle_open_ms=1_747_699_200_000,
            now_ms=7,
            market_time_ms=1_747_699_260_000,
            strategy="ema_cross_rsi",
        )
        position.stop_loss = D("99000")
        await store.update_order(session, order, now_ms=8, status="NEW", exchange_order_id=42)
    returned_position = {c: getattr(position, c) for c in (col.name for col in Position.__table__.columns)}
    returned_order = {c: getattr(order, c) for c in (col.name for col in Order.__table__.columns)}
    async with sessions() as session:
        stored_order = await store.get_order(session, ENTRY)
        stored_position = await store.get_position(session, position.id)
        assert stored_order is not None and stored_position is not None
        assert returned_order == {c: getattr(stored_order, c) for c in returned_order}
        assert returned_position == {c: getattr(stored_position, c) for c in returned_position}
    assert (stored_position.stop_loss, stored_position.status, stored_position.quantity) == (D("99000"), "OPENING", 0)
    assert (stored_order.status, stored_order.exchange_order_id, stored_order.position_id) == ("NEW", 42, position.id)
    assert (stored_order.updated_at_ms, stored_order.created_at_ms, stored_position.strategy) == (8, 7, "ema_cross_rsi")


async def test_a_limit_entry_keeps_its_price_and_the_bid_it_came_from(sessions: async_sessionmaker) -> None:
    """The ledger keeps the LIMIT_MAKER's limit and best bid (migration 0005), and the price it is
    re-priced to; a MARKET entry has neither."""
    async with sessions.begin() as session:
        await store.create_entry_intent(
            session,
            symbol="BTCUSDT",
            client_order_id=ENTRY,
            quantity=D("0.02"),
            signal_event_id="sig-1",
            reason="signal",
            entry_candle_open_ms=1_747_699_200_000,
            now_ms=1,
            order_type="LIMIT_MAKER",
            limit_price=D("99990.12"),
            best_bid=D("100000.13"),
        )
    async with sessions() as session:
        stored = await store.get_order(session, ENTRY)
        assert stored is not None and stored.order_type == "LIMIT_MAKER"
        assert (stored.limit_price, stored.best_bid, stored.stop_price) == (D("99990.12"), D("100000.13"), None)
    async with sessions.begin() as session:
        stored = await store.get_order(session, ENTRY)
        assert stored is not None
        await store.update_order(session, stored, now_ms=2, limit_price=D("99980.01"), best_bid=D("99990.02"))
    async with sessions() as session:
        stored = await store.get_order(session, ENTRY)
        assert stored is not None and (stored.limit_price, stored.best_bid) == (D("99980.01"), D("99990.02"))
    await write_entry(sessions, "EB-ETHUSDT-1747699200000", "ETHUSDT")
    async with sessions() as session:
        market = await store.get_order(session, "EB-ETHUSDT-1747699200000")
        assert market is not None and market.limit_price is None and market.best_bid is None


async def test_the_same_client_id_cannot_be_written_twice(sessions: async_sessionmaker) -> None:
    await write_entry(sessions)
    with pytest.raises(store.DuplicateOrderError):
        await write_entry(sessions)
    async with sessions() as session:
        assert len(await store.recent_orders(session)) == 1


async def test_an_intent_read_before_its_id_was_taken_is_still_refused(sessions: async_sessionmaker) -> None:
    # The entry's read says the id is free, and another writer takes the id before the intent.
    async with sessions() as session:
        read = await store.read_entry(session, ENTRY, "BTCUSDT")
    assert read == store.EntryRead(taken=False, dust=D(0))
    await write_entry(sessions)
    with pytest.raises(store.DuplicateOrderError):
        await write_entry(sessions, read=read)
    async with sessions() as session:
        assert len(await store.recent_orders(session)) == 1
        assert (await store.read_entry(session, ENTRY, "BTCUSDT")).taken


async def test_fills_are_recorded_once_per_trade_id(sessions: async_sessionmaker) -> None:
    _, order = await write_entry(sessions)
    async with sessions.begin() as session:
        order = await store.get_order(session, ENTRY)
        assert await store.record_fill(session, order, fill(1))
        assert await store.record_fill(session, order, fill(2))
    async with sessions.begin() as session:
        order = await store.get_order(session, ENTRY)
        # The same trades again, as an execution report or myTrades would bring them.
        assert not await store.record_fill(session, order, fill(1))
        assert not await store.record_fill(session, order, fill(2, qty="0.5"))
    async with sessions() as session:
        fills = await store.fills_of(session, [ENTRY])
        assert [f.trade_id for f in fills] == [1, 2] and fills[1].quantity == D("0.01")
        assert await store.last_trade_id(session, "BTCUSDT") == 2
        assert await store.last_trade_id(session, "ETHUSDT") is None


async def test_a_batch_of_fills_is_recorded_once_per_trade_id(sessions: async_sessionmaker) -> None:
    # A large MARKET order's answer brings a fill per book level; a trade seen twice counts once.
    await write_entry(sessions)
    async with sessions.begin() as session:
        order = await store.get_order(session, ENTRY)
        assert await store.record_fill(session, order, fill(2))
        assert await store.record_fills(session, order, [fill(1), fill(2), fill(3), fill(3, qty="0.5")]) == 2
    async with sessions.begin() as session:
        order = await store.get_order(session, ENTRY)
        assert await store.record_fills(session, order, [fill(3), fill(4)]) == 1
        assert await store.record_fills(session, order, [fill(1), fill(4)]) == 0
        assert await store.record_fills(session, order, []) == 0
    async with sessions() as session:
        fills = await store.fills_of(session, [ENTRY])
        assert [f.trade_id for f in fills] == [1, 2, 3, 4]
        assert all(f.quantity == D("0.01") for f in fills)
        assert {f.market_time_ms for f in fills} == {order.market_time_ms}


async def test_a_fill_stored_by_another_writer_after_the_read_still_counts_once(
    sessions: async_sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another replica stores trade 2 after this one read the known ids: the batch is refused
    # by the unique trade id and each fill is stored on its own.
    await write_entry(sessions)
    async with sessions.begin() as session:
        order = await store.get_order(session, ENTRY)
        assert await store.record_fill(session, order, fill(2))
    async with sessions.begin() as session:
        order = await store.get_order(session, ENTRY)
        real_execute = session.execute
        missed = []

        async def execute(statement, *args, **kwargs):
            result = await real_execute(statement, *args, **kwargs)
            if not missed and "fills.trade_id IN" in str(statement).replace("\n", " "):
                missed.append(statement)
                return await real_execute(statement.where(Fill.trade_id < 0))  # read before the other write
            return result

        monkeypatch.setattr(session, "execute", execute)
        assert await store.record_fills(session, order, [fill(1), fill(2), fill(3)]) == 2
        assert missed
    async with sessions() as session:
        assert [f.trade_id for f in await store.fills_of(session, [ENTRY])] == [1, 2, 3]


async def test_position_round_trip_with_realised_return(sessions: async_sessionmaker) -> None:
    position, _ = await write_entry(sessions)
    async with sessions.begin() as session:
        order = await store.get_order(session, ENTRY)
        await store.record_fill(session, order, fill(1, qty="0.02", price="100000", commission="0.00002"))
        await store.update_order(
            session,
            order,
            now_ms=2,
            status="FILLED",
            exchange_order_id=11,
            executed_quantity=D("0.02"),
            cumulative_quote=D("2000"),
        )
        position = await store.get_position(session, position.id)
        totals = ledger.totals(await store.fills_of(session, [ENTRY]), "BTC", "USDT")
        await store.mark_position_open(
            session,
            position,
            entry_price=totals.average_price,
            quantity=totals.credited_base,
            quote_spent=totals.spent_quote,
            stop_loss=D("98000"),
            take_profit=D("105000"),
            entry_time_ms=1001,
        )
    async with sessions.begin() as session:
        position = await store.active_position(session, "BTCUSDT")
        assert position.status == "OPEN" and position.quantity == D("0.01998") and position.quote_spent == D("2000")
        exit_order = await store.create_exit_intent(
            session,
            position,
            client_order_id=EXIT,
            quantity=D("0.01998"),
            exit_reason="take_profit",
            exit_candle_open_ms=1_747_699_260_000,
            signal_event_id="tick-1",
            reason="take_profit exit",
            now_ms=3,
        )
        assert position.status == "CLOSING" and position.exit_client_order_id == EXIT
        await store.record_fill(
            session, exit_order, fill(3, qty="0.01998", price="105000", commission="2.0979", asset="USDT")
        )
        await store.update_order(
            session,
            exit_order,
            now_ms=4,
            status="FILLED",
            exchange_order_id=12,
            executed_quantity=D("0.01998"),
            cumulative_quote=D("2097.9"),
        )
        totals = ledger.totals(await store.fills_of(session, [EXIT]), "BTC", "USDT")
        pct = realised_return_pct(position.quote_spent, totals.received_quote)
        await store.mark_position_closed(
            session,
            position,
            exit_price=totals.average_price,
            quote_received=totals.received_quote,
            return_pct=pct,
            exit_time_ms=1003,
        )
    async with sessions() as session:
        assert await store.active_position(session, "BTCUSDT") is None
        [closed] = await store.closed_positions(session, "BTCUSDT")
        assert closed.quote_received == D("2095.8021") and closed.return_pct == D("4.790105")
        assert closed.exit_reason == "take_profit" and closed.exit_candle_open_ms == 1_747_699_260_000
        assert [o.client_order_id for o in await store.orders_of_position(session, closed.id)] == [ENTRY, EXIT]
        assert [o.client_order_id for o in await store.orders_of_position(session, closed.id, "exit")] == [EXIT]
        assert [o.client_order_id for o in await store.recent_orders(session, "BTCUSDT")] == [EXIT, ENTRY]
        assert await store.unsettled_orders(session, "BTCUSDT") == []
        assert (await store.get_order_by_exchange_id(session, "BTCUSDT", 12)).client_order_id == EXIT


async def test_a_rejected_exit_id_is_reused_but_nothing_else(sessions: async_sessionmaker) -> None:
    position, _ = await write_entry(sessions)
    async with sessions.begin() as session:
        position = await store.get_position(session, position.id)
        position.status = "OPEN"
        position.quantity = D("0.02")
        order = await store.create_exit_intent(
            session,
            position,
            client_order_id=EXIT,
            quantity=D("0.02"),
            exit_reason="stop_loss",
            exit_candle_open_ms=None,
            signal_event_id="t",
            reason="stop_loss exit",
            now_ms=3,
        )
        await store.update_order(session, order, now_ms=4, status="REJECTED", reason="-2010")
        await store.reopen_position(session, position)
        assert position.status == "OPEN" and position.exit_reason is None
    async with sessions.begin() as session:
        position = await store.get_position(session, position.id)
        again = await store.create_exit_intent(
            session,
            position,
            client_order_id=EXIT,
            quantity=D("0.02"),
            exit_reason="manual",
            exit_candle_open_ms=None,
            signal_event_id="c",
            reason="manual exit",
            now_ms=5,
        )
        assert again.status == "INTENT" and again.signal_event_id == "c"
        await store.update_order(session, again, now_ms=6, status="EXPIRED")
    async with sessions.begin() as session:
        position = await store.get_position(session, position.id)
        with pytest.raises(store.DuplicateOrderError):
            await store.create_exit_intent(
                session,
                position,
                client_order_id=EXIT,
                quantity=D("0.02"),
                exit_reason="manual",
                exit_candle_open_ms=None,
                signal_event_id="d",
                reason="manual exit",
                now_ms=7,
            )


async def test_failed_entry_leaves_the_symbol_flat(sessions: async_sessionmaker) -> None:
    position, _ = await write_entry(sessions)
    async with sessions.begin() as session:
        await store.mark_position_failed(session, await store.get_position(session, position.id))
    async with sessions() as session:
        assert await store.active_position(session, "BTCUSDT") is None
        assert await store.closed_positions(session) == []


async def test_symbols_are_kept_apart(sessions: async_sessionmaker) -> None:
    await write_entry(sessions, ENTRY, "BTCUSDT")
    await write_entry(sessions, "EB-ETHUSDT-1747699200000", "ETHUSDT")
    async with sessions() as session:
        assert [o.symbol for o in await store.unsettled_orders(session, "ETHUSDT")] == ["ETHUSDT"]
        assert len(await store.recent_orders(session)) == 2
        assert len(await store.recent_orders(session, limit=1)) == 1
