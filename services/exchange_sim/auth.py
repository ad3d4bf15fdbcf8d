"""Request signing (HMAC-SHA256) and timing rules (rest-api.md "Request Security", pure).

REST signatures are checked over the raw bytes the client sent: the query string and the body
concatenated, each without its ``signature`` parameter. Nothing is re-sorted or re-encoded,
because clients differ (python-binance sorts its parameters, ccxt does not). WebSocket API
signatures cover the parameters sorted by name and joined as ``k=v&...`` (web-socket-api.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from decimal import Decimal
from urllib.parse import urlencode

from . import errors
from .params import Params
from .timeunit import MICROS_FROM

MAX_RECV_WINDOW = 60_000
DEFAULT_RECV_WINDOW = Decimal(5000)
_KEY_FORMAT = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


def hmac_hex(secret: str, payload: bytes | str) -> str:
    """Lowercase hex HMAC-SHA256 of ``payload`` keyed with ``secret``."""
    data = payload.encode() if isinstance(payload, str) else payload
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def verify(secret: str, payload: bytes | str, signature: str) -> bool:
    """True when ``signature`` is the HMAC of ``payload``; HMAC hex is compared case-insensitively."""
    return hmac.compare_digest(hmac_hex(secret, payload), signature.lower())


def strip_signature(raw: str) -> str:
    """``raw`` (a query string or form body) without its ``signature=...`` part, bytes untouched."""
    return "&".join(part for part in raw.split("&") if part and not part.startswith("signature="))


def rest_payload(raw_query: str, body: str) -> str:
    """The REST signature payload: query string then body, without separator."""
    return strip_signature(raw_query) + strip_signature(body)


def ws_payload(params: dict[str, object], encode: bool = False) -> str:
    """The WebSocket API payload: every param but ``signature``, sorted, ``k=v`` joined by ``&``."""
    items = [(k, Params.from_mapping({k: v}).values.get(k, "")) for k, v in sorted(params.items()) if k != "signature"]
    if encode:
        return urlencode(items)
    return "&".join(f"{k}={v}" for k, v in items)


def check_api_key(sent: str | None, expected: str) -> None:
    """``-2014`` for a missing or malformed key, ``-2015`` for an unknown one."""
    if sent is None or not _KEY_FORMAT.match(sent):
        raise errors.bad_api_key_format()
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise errors.rejected_api_key()


def recv_window(params: Params) -> Decimal:
    """``recvWindow`` (ms, up to 3 decimals), default 5000, at most 60000."""
    value = params.decimal("recvWindow", places=3)
    if value is None:
        return DEFAULT_RECV_WINDOW
    if value > MAX_RECV_WINDOW:
        raise errors.too_large("recvWindow", MAX_RECV_WINDOW)
    return value


def timestamp_ms(params: Params) -> Decimal:
    """``timestamp`` in milliseconds; microsecond timestamps (16 digits) are scaled down."""
    value = params.long("timestamp")
    if value is None:
        raise errors.mandatory("timestamp")
    return Decimal(value) / 1000 if value >= MICROS_FROM else Decimal(value)


def check_timing(timestamp: Decimal, window: Decimal, server_time: int) -> None:
    """Reject unless ``timestamp < serverTime + 1000`` and ``serverTime - timestamp <= recvWindow``."""
    if timestamp >= server_time + 1000:
        raise errors.timestamp_ahead()
    if server_time - timestamp > window:
        raise errors.timestamp_outside_window()
