"""Envelope <-> Redis stream fields.

Entries are flat field/value pairs of text so ``redis-cli XRANGE`` reads like a table: the
envelope fields first, then each payload field. Only nested values (lists, dicts, models) are
JSON text. Decoding validates against the payload class registered for ``type``.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from shared import signing
from shared.events import PAYLOAD_TYPES, Envelope, Payload

ENVELOPE_FIELDS = ("event_id", "type", "version", "source", "ts_event_ms", "ts_init_ms")


class DecodeError(ValueError):
    """An entry that is not a valid event; it goes to the dead-letter stream."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dict, list, tuple)):
        return orjson.dumps(value, default=_json_default).decode()
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def encode(event: Envelope) -> dict[str, str]:
    """Flatten an envelope into stream fields (all text); money-moving types get their MAC
    (``shared.signing``) when this process holds the bus key."""
    fields = {name: _text(getattr(event, name)) for name in ENVELOPE_FIELDS}
    since = event.payload.SINCE
    for name, value in event.payload.model_dump(mode="python").items():
        if since.get(name, 1) > event.version:
            continue
        if name in fields:
            raise ValueError(f"payload field {name!r} collides with an envelope field")
        fields[name] = _text(value)
    return signing.seal_if_sealed_type(fields)


@cache
def _json_fields(payload_cls: type[Payload]) -> frozenset[str]:
    names = set()
    for name, info in payload_cls.model_fields.items():
        if _is_nested(info.annotation):
            names.add(name)
    return frozenset(names)


def _is_nested(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, dict, tuple, set):
        return True
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_is_nested(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


@cache
def _optional_fields(payload_cls: type[Payload]) -> frozenset[str]:
    return frozenset(
        name for name, info in payload_cls.model_fields.items() if type(None) in typing.get_args(info.annotation)
    )


def decode(fields: Mapping[Any, Any] | None) -> Envelope:
    """Rebuild an envelope from stream fields; raise ``DecodeError`` naming what is wrong.

    ``None`` is what Redis gives for an entry without fields (one deleted while pending)."""
    if fields is None:
        raise DecodeError("entry without fields")
    text = {_str(k): _str(v) for k, v in fields.items()}
    event_type = text.get("type")
    payload_cls = PAYLOAD_TYPES.get(event_type or "")
    if payload_cls is None:
        raise DecodeError(f"unknown event type {event_type!r}")
    json_fields = _json_fields(payload_cls)
    optional = _optional_fields(payload_cls)
    raw: dict[str, Any] = {}
    for name, value in text.items():
        if name in ENVELOPE_FIELDS or name == signing.MAC_FIELD:
            continue
        if name in json_fields and value != "":
            try:
                raw[name] = orjson.loads(value)
            except orjson.JSONDecodeError as e:
                raise DecodeError(f"field {name!r} is not valid JSON: {e}") from e
        elif value == "" and name in optional:
            raw[name] = None
        else:
            raw[name] = value
    try:
        payload = payload_cls.model_validate(raw)
        return Envelope(
            event_id=text["event_id"],
            type=payload_cls.TYPE,
            version=int(text.get("version") or 1),
            source=text.get("source", ""),
            ts_event_ms=int(text["ts_event_ms"]),
            ts_init_ms=int(text["ts_init_ms"]),
            payload=payload,
        )
    except (KeyError, ValueError, ValidationError) as e:
        raise DecodeError(f"invalid {event_type} event: {e}") from e


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def dumps(value: Any) -> str:
    """JSON text for non-event values kept in Redis keys (Decimals as strings)."""
    return orjson.dumps(value, default=_json_default).decode()


def loads(value: str | bytes | None) -> Any:
    """Parse JSON text written by ``dumps``; ``None`` stays ``None``."""
    return None if value is None else orjson.loads(value)
