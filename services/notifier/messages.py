"""What is worth telling the owner, in words: executor events and the daily summary as messages.

Pure: an event (or a day's profit figures) in, a ``Notification`` (or None) out. Each
notification carries the key it is delivered under exactly once per target: the event id for
events, the period's end for a daily summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from shared.events import CommandOutcome, Envelope, ExecutorAlert, Outcome, PositionClosed, PositionOpened
from shared.precision import Precision, pct, split_symbol
from shared.trading.profit import Figures


class NotifyKind(StrEnum):
    """The kinds ``NOTIFY_EVENTS`` chooses from."""

    ENTRY_FILL = "entry_fill"
    EXIT_FILL = "exit_fill"
    ALERT = "alert"
    BREAKER = "breaker"
    DAILY_SUMMARY = "daily_summary"
    COMMAND = "command"


class Severity(StrEnum):
    """Apprise's notification types (how a chat shows the message)."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"


ALERT_LEVELS = ("info", "warning", "error")
# Alerts of the account circuit breaker carry codes starting with this: they are ``breaker``
# notifications, chosen on their own in NOTIFY_EVENTS.
BREAKER_CODE_PREFIX = "breaker"


@dataclass(frozen=True)
class Notification:
    key: str
    kind: NotifyKind
    title: str
    body: str
    severity: Severity = Severity.INFO


def _number(value: Decimal | None) -> str:
    return "—" if value is None else format(value.normalize(), "f")


def _precision(symbol: str) -> Precision:
    return Precision(symbol, *split_symbol(symbol))


def _signed(text: str | None) -> str:
    if text is None:
        return "—"
    return text if text.startswith("-") else f"+{text}"


def classify(event: Envelope, alert_level: str = "warning") -> Notification | None:
    """The notification an executor event makes, or None (not one of the notified kinds,
    an alert below ``alert_level``, a command answer that is not final)."""
    payload = event.payload
    if isinstance(payload, PositionOpened):
        precision = _precision(payload.symbol)
        base, quote = split_symbol(payload.symbol)
        return Notification(
            event.event_id,
            NotifyKind.ENTRY_FILL,
            f"{payload.symbol} entry filled",
            f"Bought {_number(payload.quantity)} {base} at {_number(payload.entry_price)} "
            f"({precision.quote(payload.quote_spent)} {quote} spent). Stop-loss {_number(payload.stop_loss)}, "
            f"take-profit {_number(payload.take_profit)}.",
        )
    if isinstance(payload, PositionClosed):
        precision = _precision(payload.symbol)
        base, quote = split_symbol(payload.symbol)
        result = payload.quote_received - payload.quote_spent
        return Notification(
            event.event_id,
            NotifyKind.EXIT_FILL,
            f"{payload.symbol} exit filled: {payload.exit_reason}",
            f"Sold {_number(payload.quantity)} {base} at {_number(payload.exit_price)} (entry "
            f"{_number(payload.entry_price)}). Result {_signed(precision.quote(result))} {quote} "
            f"({_signed(pct(payload.return_pct))} %).",
            Severity.SUCCESS if result > 0 else Severity.WARNING,
        )
    if isinstance(payload, ExecutorAlert):
        if _level_rank(payload.level) < _level_rank(alert_level):
            return None
        kind = NotifyKind.BREAKER if payload.code.startswith(BREAKER_CODE_PREFIX) else NotifyKind.ALERT
        where = f"{payload.symbol} " if payload.symbol else ""
        severity = {"error": Severity.FAILURE, "warning": Severity.WARNING}.get(payload.level, Severity.INFO)
        return Notification(event.event_id, kind, f"{where}{payload.level}: {payload.code}", payload.message, severity)
    if isinstance(payload, CommandOutcome):
        if payload.outcome is Outcome.ACCEPTED:
            return None  # its final answer follows
        where = f" ({payload.symbol})" if payload.symbol else ""
        return Notification(
            event.event_id,
            NotifyKind.COMMAND,
            f"Command {payload.command}{where}: {payload.outcome.value}",
            payload.reason or payload.outcome.value,
            Severity.WARNING if payload.outcome is Outcome.REFUSED else Severity.INFO,
        )
    return None


def _level_rank(level: str) -> int:
    return ALERT_LEVELS.index(level) if level in ALERT_LEVELS else len(ALERT_LEVELS)


def daily_summary(label: str, end_ms: int, day: Figures, total: Figures, quote_asset: str) -> Notification:
    """The summary of one market day (``label``, ending at ``end_ms``) with the profit figures of
    its closed trades (``day``) and of every trade so far (``total``)."""
    money = Precision("", "", quote_asset).quote

    def amount(value: Decimal | None) -> str:
        return f"{_signed(money(value))} {quote_asset}"

    if day.trades:
        body = (
            f"{day.trades} trade(s) closed, {day.wins} won ({pct(day.win_rate_pct)} %); realised "
            f"{amount(day.realised_quote)}, fees {money(day.fees_quote)} {quote_asset}"
        )
        if day.best_trade is not None and day.worst_trade is not None:
            body += (
                f"; best #{day.best_trade.id} {amount(day.best_trade.profit_quote)}, "
                f"worst #{day.worst_trade.id} {amount(day.worst_trade.profit_quote)}"
            )
        body += "."
    else:
        body = "No trade closed."
    body += f" Since the start: {total.trades} trade(s), realised {amount(total.realised_quote)}"
    if total.trades:
        body += f", win rate {pct(total.win_rate_pct)} %"
    body += f"; {total.open_trades} open"
    if total.open_trades:
        body += f" (unrealised {amount(total.unrealised_quote)})"
    severity = (
        Severity.SUCCESS if day.realised_quote > 0 else Severity.WARNING if day.realised_quote < 0 else Severity.INFO
    )
    return Notification(
        f"daily_summary:{end_ms}", NotifyKind.DAILY_SUMMARY, f"Daily summary {label}", body + ".", severity
    )
