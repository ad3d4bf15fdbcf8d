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

Fallback (``ENTRY_LIMIT_FALLBACK``): a LIMIT_MAKER entry cancelled at its timeout without a fill
is replaced by a MARKET buy ``EM-<rest of the entry id>``, e.g. ``EM-BTCUSDT-1747699200000``; it
opens its own position, whose exits and protection derive from it as from any entry id.

Protection (``PROTECTION=exchange``): the OCO resting after the entry is ``PL-<rest>`` (its
``listClientOrderId``), its stop-loss leg ``PS-<rest>`` and its take-profit leg ``PT-<rest>``,
from the entry id alone: an OCO written and sent again after a restart names the same list, which
the exchange refuses to open twice while it rests. A moved stop replaces the OCO by the next
generation ``PL<g>-<rest>``, ``PS<g>-<rest>``, ``PT<g>-<rest>`` (g = 2, 3, ...): each generation
is named by the entry and its number alone, so a replacement sent again after a restart names the
same list. Should ``<g>`` make an id longer than 36 characters, ``<rest>`` is replaced by the
first 12 hex digits of its SHA-256.

Ids use ``[A-Za-z0-9_-]`` only and are at most 36 characters (Binance:
``^[.A-Z:/a-z0-9_-]{1,36}$``). A symbol so long that the id would not fit is replaced by the
first 12 hex digits of its SHA-256.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

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


FALLBACK_PREFIX = "EM"


def fallback_client_order_id(entry_id: str) -> str:
    """Id of the MARKET buy replacing the limit entry ``entry_id`` that timed out unfilled."""
    head, sep, rest = entry_id.partition("-")
    if not sep or not head.startswith(ENTRY_PREFIX) or not rest:
        raise ClientOrderIdError(f"not an entry id: {entry_id!r}")
    value = f"{FALLBACK_PREFIX}-{rest}"
    _check(value)
    return value


def is_fallback_id(client_order_id: str) -> bool:
    """True for ids made by ``fallback_client_order_id``."""
    return client_order_id.partition("-")[0] == FALLBACK_PREFIX


@dataclass(frozen=True)
class ProtectionIds:
    """Client ids of one generation of the OCO protecting one position: the list and its two legs."""

    list_id: str
    stop_loss: str
    take_profit: str
    generation: int = 1


PROTECTION_PREFIXES = ("PL", "PS", "PT")
_MAX_ID = 36


def protection_ids(entry_id: str, generation: int = 1) -> ProtectionIds:
    """The ids of the ``generation``-th OCO of the position entered by ``entry_id``."""
    head, sep, rest = entry_id.partition("-")
    if not sep or not head.startswith(ENTRY_PREFIX) or not rest:
        raise ClientOrderIdError(f"not an entry id: {entry_id!r}")
    if generation < 1:
        raise ClientOrderIdError(f"generation must be >= 1, got {generation}")
    tag = "" if generation == 1 else str(generation)
    if len(f"PL{tag}-{rest}") > _MAX_ID:
        rest = hashlib.sha256(rest.encode()).hexdigest()[:12]
    made = ProtectionIds(f"PL{tag}-{rest}", f"PS{tag}-{rest}", f"PT{tag}-{rest}", generation)
    for value in (made.list_id, made.stop_loss, made.take_profit):
        _check(value)
    return made


def protection_generation(client_order_id: str) -> int | None:
    """The generation of an id of ``protection_ids`` (None for any other id)."""
    head = client_order_id.partition("-")[0]
    number = head[2:]
    if head[:2] not in PROTECTION_PREFIXES or not (number == "" or (number.isdigit() and int(number) >= 2)):
        return None
    return int(number) if number else 1


def is_protection_id(client_order_id: str) -> bool:
    """True for the ids of ``protection_ids`` (the list and its legs, of any generation)."""
    return protection_generation(client_order_id) is not None


def is_stop_leg_id(client_order_id: str) -> bool:
    """True for the id of an OCO's stop-loss leg (of any generation)."""
    return client_order_id.startswith("PS") and is_protection_id(client_order_id)


def is_exit_id(client_order_id: str) -> bool:
    """True for ids made by ``exit_client_order_id``."""
    head = client_order_id.partition("-")[0]
    return head.startswith(EXIT_PREFIX) and (head == EXIT_PREFIX or head[len(EXIT_PREFIX) :].isdigit())


def is_bot_id(client_order_id: str) -> bool:
    """True for ids this bot makes (entries and exits)."""
    head = client_order_id.partition("-")[0]
    return head in ("EB", "ES", FALLBACK_PREFIX) or is_exit_id(client_order_id) or is_protection_id(client_order_id)


def _check(value: str) -> None:
    if not CLIENT_ORDER_ID.match(value):
        raise ClientOrderIdError(f"derived client order id {value!r} is not valid for Binance")
