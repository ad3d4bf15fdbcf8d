"""Seals on what moves money: an HMAC-SHA256 over every field of an entry, one key per deployment.

Redis users limit who may append where (``shared.redis_acl``); the seal makes the content
itself unforgeable by anyone who can write to Redis without holding the key (another service's
user, a leaked Redis password, a Redis replica or backup restored elsewhere). Sealed are the
executor inbox signals, operator commands (``control:commands``, ``control:commands:<SYMBOL>``)
and parameter changes, plus the two records services act on (``control:parameters:current``,
``control:bot_state``). The key is never written to Redis: it comes from ``BUS_SIGNING_KEY`` or
the file named by ``BUS_SIGNING_KEY_FILE`` (``make run`` creates ``var/secrets/bus-signing.key``,
mode 600).

``codec.encode`` seals every sealed type with the key installed in this process, whatever code
path writes it; readers that act on an entry check it (``check_fields`` / ``check_record``)
and drop, with an alert, what does not verify. The MAC covers the envelope too (event id, both
timestamps), so a copied entry cannot be made to look new: the executor's signal age limit and
deterministic order ids refuse replays of old signals.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

MAC_FIELD = "mac"
SEALED_TYPES = frozenset({"signal", "bot_command", "parameters_changed"})
MIN_KEY_CHARS = 32
# Services that seal (strategy: signals; api: commands, parameters) or act on sealed entries
# (executor; strategy follows the parameters): they do not start without the key.
KEY_HOLDERS = frozenset({"strategy", "executor", "api"})
_DOMAIN = b"binance-stream-bot bus seal v1\n"

_installed: bytes | None = None


class Seal(StrEnum):
    """Outcome of checking an entry's MAC."""

    VALID = "valid"
    MISSING = "missing"
    INVALID = "invalid"


class SigningKeyError(ValueError):
    """No usable key where one is required."""


def new_key() -> str:
    """A fresh deployment key (256 bits as hex)."""
    return secrets.token_hex(32)


def parse_key(text: str) -> bytes:
    """The key bytes from its text form; too short a key is refused (named variable in the message)."""
    value = text.strip()
    if len(value) < MIN_KEY_CHARS:
        raise SigningKeyError(
            f"BUS_SIGNING_KEY must be at least {MIN_KEY_CHARS} characters (e.g. `openssl rand -hex 32`)"
        )
    return value.encode()


def read_key(value: str | None, file: str | None) -> bytes | None:
    """The key from ``BUS_SIGNING_KEY`` or the file ``BUS_SIGNING_KEY_FILE``; None when neither is set."""
    if value:
        return parse_key(value)
    if file:
        path = Path(file)
        if not path.is_file():
            raise SigningKeyError(f"BUS_SIGNING_KEY_FILE: {file} does not exist")
        return parse_key(path.read_text())
    return None


def ensure_key_file(path: Path) -> Path:
    """Create ``path`` with a new key (mode 600, folder 700) unless it exists; return it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_key() + "\n")
    os.chmod(path, 0o600)
    return path


def install(key: bytes | None) -> None:
    """Make ``key`` the one this process seals and checks with (``None`` removes it)."""
    global _installed
    _installed = key


def installed_key() -> bytes | None:
    return _installed


def _mac(key: bytes, body: bytes) -> str:
    return hmac.new(key, _DOMAIN + body, hashlib.sha256).hexdigest()


def _verdict(mac: object, key: bytes, body: Callable[[], bytes]) -> Seal:
    if not mac:
        return Seal.MISSING
    return Seal.VALID if hmac.compare_digest(str(mac), _mac(key, body())) else Seal.INVALID


def _canonical_fields(fields: dict[str, str]) -> bytes:
    # Length-prefixed, sorted by name: no two different entries share a byte string.
    parts = []
    for name in sorted(fields):
        if name == MAC_FIELD:
            continue
        n, v = name.encode(), str(fields[name]).encode()
        parts.append(b"%d:%s%d:%s" % (len(n), n, len(v), v))
    return b"".join(parts)


def seal_fields(fields: dict[str, str], key: bytes) -> dict[str, str]:
    """``fields`` plus their MAC."""
    return {**fields, MAC_FIELD: _mac(key, _canonical_fields(fields))}


def check_fields(fields: dict[str, str], key: bytes) -> Seal:
    """Whether the stream entry ``fields`` carries a MAC made with ``key`` over exactly these fields."""
    return _verdict(fields.get(MAC_FIELD), key, lambda: _canonical_fields(fields))


def needs_seal(fields: dict[str, str]) -> bool:
    return fields.get("type") in SEALED_TYPES


def seal_if_sealed_type(fields: dict[str, str]) -> dict[str, str]:
    """Seal an entry of a sealed type with the installed key (unchanged when none is installed)."""
    if _installed is None or not needs_seal(fields):
        return fields
    return seal_fields(fields, _installed)


def record_trusted(record: dict[str, Any] | None) -> bool:
    """Whether a stored record may be built upon: no record, no key in this process, or a valid MAC."""
    if record is None or _installed is None:
        return True
    return check_record(record, _installed) is Seal.VALID


def _canonical_record(record: dict[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k != MAC_FIELD}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=_decimal_text)


def _decimal_text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # as codec.dumps writes it, so the record checks after a round trip
    raise TypeError(f"cannot serialise {type(value).__name__}")


def seal_record(record: dict[str, Any], key: bytes | None = None) -> dict[str, Any]:
    """A JSON record (``control:parameters:current``, ``control:bot_state``) plus its MAC."""
    key = key or _installed
    if key is None:
        return record
    return {**record, MAC_FIELD: _mac(key, _canonical_record(record))}


def check_record(record: dict[str, Any], key: bytes) -> Seal:
    """Whether a JSON record was sealed with ``key`` and not changed since."""
    return _verdict(record.get(MAC_FIELD), key, lambda: _canonical_record(record))
