"""Request parameters as Binance reads them: query string and form body, query winning."""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import parse_qsl

import orjson

from . import errors
from .timeunit import MICROS_FROM

_DECIMAL = re.compile(errors.DECIMAL_RANGE)
_LONG = re.compile(errors.LONG_RANGE)
_CLIENT_ID = re.compile(errors.CLIENT_ID_RANGE)
_SYMBOL = re.compile(r"^[A-Z0-9-_.]{1,20}$")
MAX_DECIMALS = 8


class Params:
    """Named request parameters; empty values count as absent."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.micros = False  # X-MBX-TIME-UNIT: MICROSECOND was sent (set by the REST pipeline)

    @classmethod
    def parse(cls, raw_query: str, body: str = "") -> Params:
        """Decode both sources; a name repeated inside one source is ``-1101``."""
        merged: dict[str, str] = {}
        for source in (body, raw_query):  # query parsed last so it wins over the body
            seen: set[str] = set()
            for name, value in parse_qsl(source, keep_blank_values=True):
                if name in seen:
                    raise errors.duplicate_param()
                seen.add(name)
                merged[name] = value
        return cls(merged)

    @classmethod
    def from_mapping(cls, values: dict[str, object]) -> Params:
        """Parameters of a WebSocket API request (JSON values turned into strings)."""
        return cls({k: _text(v) for k, v in values.items() if v is not None})

    def has(self, name: str) -> bool:
        return self.values.get(name, "") != ""

    def get(self, name: str) -> str | None:
        value = self.values.get(name, "")
        return value if value != "" else None

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise errors.mandatory(name)
        return value

    def decimal(self, name: str, places: int = MAX_DECIMALS) -> Decimal | None:
        """A DECIMAL parameter; bad characters are ``-1100``, too many decimals ``-1111``."""
        value = self.get(name)
        if value is None:
            return None
        if not _DECIMAL.match(value):
            raise errors.illegal_chars(name, errors.DECIMAL_RANGE)
        if "." in value and len(value.split(".")[1].rstrip("0")) > places:
            raise errors.too_much_precision(name)
        return Decimal(value)

    def long(self, name: str) -> int | None:
        """A LONG parameter (ids, times)."""
        value = self.get(name)
        if value is None:
            return None
        if not _LONG.match(value):
            raise errors.illegal_chars(name, errors.LONG_RANGE)
        return int(value)

    def time_ms(self, name: str, round_up: bool = False) -> int | None:
        """A timestamp parameter in ms; microseconds (16+ digits) are converted, rounding down
        (an end of a range) or up (a start, so nothing before it is included)."""
        value = self.long(name)
        if value is None or value < MICROS_FROM:
            return value
        return -(-value // 1000) if round_up else value // 1000

    def limit(self, default: int = 500, maximum: int = 1000) -> int:
        """``limit`` with Binance's default; values above the maximum are capped."""
        value = self.long("limit")
        if value is None:
            return default
        if value < 1:
            raise errors.invalid_value("limit")
        return min(value, maximum)

    def flag(self, name: str, default: bool) -> bool:
        """A BOOLEAN parameter: ``true`` / ``false`` in any case, anything else is ``-1130``."""
        value = self.get(name)
        if value is None:
            return default
        if value.lower() not in ("true", "false"):
            raise errors.invalid_value(name)
        return value.lower() == "true"

    def client_id(self, name: str) -> str | None:
        value = self.get(name)
        if value is not None and not _CLIENT_ID.match(value):
            raise errors.illegal_chars(name, errors.CLIENT_ID_RANGE)
        return value

    def symbols(self) -> list[str] | None:
        """The JSON-array ``symbols`` parameter."""
        value = self.get("symbols")
        if value is None:
            return None
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(s, str) and _SYMBOL.match(s) for s in parsed):
            raise errors.illegal_chars("symbols", errors.SYMBOLS_RANGE)
        if len(set(parsed)) != len(parsed):
            raise errors.ApiError(-1151, "Symbol is present multiple times in the list.")
        return parsed


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
