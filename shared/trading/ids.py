"""Deterministic client order ids: the same decision always names the same order.

Entry:  ``EB-<SYMBOL>-<candle open time ms>``, e.g. ``EB-BTCUSDT-1747699200000`` (E = entry,
B = BUY), from the symbol, the open time of the signal's candle and the side. A signal
delivered twice, or handled again after a restart, yields the same id, so the exchange and the
ledger see one order.

Exit: ``XS-<rest of the entry id>``, e.g. ``XS-BTCUSDT-1747699200000`` (X = exit, S = SELL).
It depends only on the position's entry id, so a stop-loss tick, a SELL signal and a manual
close of the same position all name the same order. Only when an exit order ended on the
exchange without selling everything (expired after a partial fill) does the rest go out as
``XS2-...``, ``XS3-...``.

Ids use ``[A-Za-z0-9_-]`` only and are at most 36 characters (Binance:
``^[.A-Z:/a-z0-9_-]{1,36}$``). A symbol so long that the id would not fit is replaced by the
first 12 hex digits of its SHA-256.
"""

from __future__ import annotations

import hashlib
import re

from shared.trading.vocabulary import Side

CLIENT_ORDER_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
ENTRY_PREFIX = "E"
EXIT_PREFIX = "XS"
# Room left for an exit attempt number (XS<n>-) after replacing the entry prefix.
_ENTRY_MAX = 34
_SIDES = {Side.BUY: "B", Side.SELL: "S"}


class ClientOrderIdError(ValueError):
    """An id cannot be derived from the given values."""


def entry_client_order_id(symbol: str, candle_open_time_ms: int, side: str = Side.BUY) -> str:
    """Id of the entry order decided on the candle opening at ``candle_open_time_ms``."""
    if side not in _SIDES:
        raise ClientOrderIdError(f"side must be BUY or SELL, got {side!r}")
    if candle_open_time_ms < 0:
        raise ClientOrderIdError(f"candle open time must be >= 0, got {candle_open_time_ms}")
    symbol = symbol.upper()
    if not symbol.isalnum():
        raise ClientOrderIdError(f"symbol must be alphanumeric, got {symbol!r}")
    prefix = f"{ENTRY_PREFIX}{_SIDES[Side(side)]}"
    value = f"{prefix}-{symbol}-{candle_open_time_ms}"
    if len(value) > _ENTRY_MAX:
        value = f"{prefix}-{hashlib.sha256(symbol.encode()).hexdigest()[:12]}-{candle_open_time_ms}"
    _check(value)
    return value


def exit_client_order_id(entry_id: str, attempt: int = 1) -> str:
    """Id of the ``attempt``-th exit order of the position entered by ``entry_id``."""
    if attempt < 1:
        raise ClientOrderIdError(f"attempt must be >= 1, got {attempt}")
    head, sep, rest = entry_id.partition("-")
    if not sep or not head.startswith(ENTRY_PREFIX) or not rest:
        raise ClientOrderIdError(f"not an entry id: {entry_id!r}")
    prefix = EXIT_PREFIX if attempt == 1 else f"{EXIT_PREFIX}{attempt}"
    value = f"{prefix}-{rest}"
    _check(value)
    return value


def is_exit_id(client_order_id: str) -> bool:
    """True for ids made by ``exit_client_order_id``."""
    head = client_order_id.partition("-")[0]
    return head.startswith(EXIT_PREFIX) and (head == EXIT_PREFIX or head[len(EXIT_PREFIX) :].isdigit())


def is_bot_id(client_order_id: str) -> bool:
    """True for ids this bot makes (entries and exits)."""
    head = client_order_id.partition("-")[0]
    return head in ("EB", "ES") or is_exit_id(client_order_id)


def _check(value: str) -> None:
    if not CLIENT_ORDER_ID.match(value):
        raise ClientOrderIdError(f"derived client order id {value!r} is not valid for Binance")
