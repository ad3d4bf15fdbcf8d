"""What the executor should have done with what it was given (pure, no I/O).

The executor's inputs for one symbol are the entries of its streams in arrival order (the Redis
entry ids): ticker prices and signals. Replaying them through the documented rules gives the
trades a run must show:

* a BUY opens a position unless one exists (OPENING, OPEN or CLOSING), or the run recorded
  that it skipped the entry (an ``entry_skipped`` alert or an abandoned, FAILED position); the
  verdict decides whether such a skip is allowed;
* the position's stop-loss and take-profit are the levels stored with it (from its fill);
* only prices and SELL signals from after the entry fill count: a tick whose market time is
  after the fill's exchange time, a SELL whose candle closed after it (the simulator stamps
  fills with the replay's market time, as Binance does with its own clock);
* the first tick at or beyond a level exits, in that tick's candle; a SELL exits in its candle.

The fill step is the step of the simulator's price walk current at the fill's time
(docs/exchange_sim.md: at 120x and 240x each candle is four steps, open, first extreme, second
extreme, close, each a quarter candle long), checked against the fill price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from shared.trading.protection import exit_reason

MINUTE = 60_000
STEPS = 4


@dataclass(frozen=True)
class Candle:
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal

    def points(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """The simulator's walk (services/exchange_sim/walk.py walk_points)."""
        if self.close >= self.open:
            return self.open, self.low, self.high, self.close
        return self.open, self.high, self.low, self.close


@dataclass(frozen=True)
class Trade:
    entry: int
    exit: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.entry}->{'open' if self.exit is None else self.exit} {self.reason}"


@dataclass
class Held:
    entry: int
    position: dict
    fill_ms: int  # the entry fill's exchange (market) time
    arrival: str  # entry id of the BUY


@dataclass
class Walked:
    """The trades one symbol's inputs imply, and what the walk saw on the way."""

    trades: list[Trade] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # BUY candles met while flat with no position
    blocked: dict[int, int] = field(default_factory=dict)  # BUY candle -> entry candle of the position it met
    fills: dict[int, int] = field(default_factory=dict)  # entry candle -> fill step market ms
    fill_times: dict[int, int] = field(default_factory=dict)  # entry candle -> fill exchange ms
    unlocated: list[int] = field(default_factory=list)  # entries whose fill price is not their step's


def step_price(candles: list[Candle], first_open: int, market_ms: int) -> Decimal | None:
    index, offset = divmod(market_ms - first_open, MINUTE)
    if not 0 <= index < len(candles):
        return None
    return candles[index].points()[min(STEPS - 1, offset * STEPS // MINUTE)]


def fill_step(first_open: int, fill_ms: int) -> int:
    """Market time of the walk step current at ``fill_ms``."""
    return fill_ms - (fill_ms - first_open) % (MINUTE // STEPS)


def walk_symbol(
    candles: list[Candle],
    first_open: int,
    ticks: list[tuple[str, int, str]],
    inbox: list[dict],
    positions: list[dict],
    fill_times: dict[int, int],
) -> Walked:
    """Replay one symbol's inputs; ``positions`` are the ledger rows of the symbol (by entry
    candle), ``fill_times`` the exchange time of each entry's fill."""
    walked = Walked()
    by_entry = {(p["entry_candle_open_ms"] - first_open) // MINUTE: p for p in positions}
    events = [(_order(i), "tick", (ts, Decimal(price))) for i, ts, price in ticks]
    events += [(_order(e["id"]), "signal", e) for e in inbox if e["type"] == "signal"]
    events.sort(key=lambda item: item[0])
    held: Held | None = None

    def close(at: int, reason: str) -> None:
        nonlocal held
        assert held is not None
        walked.trades.append(Trade(held.entry, at, reason))
        held = None

    for _, kind, value in events:
        if kind == "tick":
            ts, price = value
            if held is None or ts <= held.fill_ms:
                continue
            position = held.position
            if position["stop_loss"] is None or position["take_profit"] is None:
                continue
            reason = exit_reason(price, Decimal(position["stop_loss"]), Decimal(position["take_profit"]))
            if reason is not None:
                close((ts - first_open) // MINUTE, reason.value)
            continue
        signal = value
        candle = (signal["candle"] - first_open) // MINUTE
        if signal["side"] == "SELL":
            if held is not None and signal["candle"] + MINUTE > held.fill_ms:
                close(candle, "signal")
            continue
        if held is not None:
            walked.blocked[candle] = held.entry
            continue
        position = by_entry.get(candle)
        if position is None or position["status"] == "FAILED" or position["entry_price"] is None:
            walked.skipped.append(candle)
            continue
        fill_ms = fill_times.get(candle)
        if fill_ms is None:  # a position without fills: nothing to locate, nothing before it
            walked.unlocated.append(candle)
            fill_ms = signal["candle"] + MINUTE - 1
        step = fill_step(first_open, fill_ms)
        if step_price(candles, first_open, step) != Decimal(position["entry_price"]):
            walked.unlocated.append(candle)
        walked.fills[candle], walked.fill_times[candle] = step, fill_ms
        held = Held(candle, position, fill_ms, signal["id"])
    if held is not None:
        walked.trades.append(Trade(held.entry, None, "open"))
    return walked


def ledger_trades(positions: list[dict], first_open: int) -> list[Trade]:
    """The run's positions as candle indices (FAILED ones never held anything and are left out)."""
    trades = []
    for p in positions:
        if p["status"] == "FAILED":
            continue
        entry = (p["entry_candle_open_ms"] - first_open) // MINUTE
        if p["status"] == "CLOSED":
            trades.append(Trade(entry, (p["exit_candle_open_ms"] - first_open) // MINUTE, p["exit_reason"]))
        else:
            trades.append(Trade(entry, None, "open"))
    return trades


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
