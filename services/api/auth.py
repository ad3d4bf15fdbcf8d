"""Dashboard sign-in: the owner's password, server-side sessions in Redis, slowed-down guessing.

The password is ``DASHBOARD_PASSWORD`` or, when that is unset, one generated at first start:
only its salted scrypt hash is kept (``api:password_hash``) and the clear text is written once
to this process's stderr, never to the shared log stream. Session ids live only in the
browser's HttpOnly cookie; Redis keeps their SHA-256, so a Redis dump opens no session.

Each session records a fingerprint of the password hash it was opened under. Changing the
password (``POST /api/password``, a new ``DASHBOARD_PASSWORD`` at the next start, or a new hash
written by ``make reset-password``) changes that hash, so every session opened before ends at
once, without having to find them. Guessing is slowed down by ``services.api.throttle``.
Sessions of accounts (``shared.accounts``) record their account's name and the
fingerprint of that account's password hash instead: a new password ends them the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import sys
from typing import TextIO

from redis.asyncio import Redis

from services.api.config import ApiSettings
from shared import streams
from shared.codec import dumps, loads
from shared.events import now_ms
from shared.passwords import hash_password, verify_hash
from shared.streams import SESSION_PREFIX

COOKIE_NAME = "bot_session"

# Its own stderr handler and no propagation: the generated password must not reach the
# Redis log stream (and from there the dashboard), only the operator's terminal.
_console = logging.getLogger("services.api.first_start")


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time of the record."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _console_logger() -> logging.Logger:
    if not _console.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s api first-start: %(message)s"))
        _console.addHandler(handler)
        _console.propagate = False
        _console.setLevel(logging.INFO)
    return _console


async def ensure_password(redis: Redis, settings: ApiSettings) -> None:
    """Make sure a password hash exists: of the configured password, already stored, or generated now.

    A configured password that no longer matches the stored hash is stored anew, which ends the
    sessions opened under the old one. ``SET NX`` lets one api replica win the generation;
    only the winner prints the password.
    """
    if settings.dashboard_password is not None:
        configured = settings.dashboard_password.get_secret_value()
        stored = await redis.get(streams.DASHBOARD_PASSWORD_HASH)
        if not isinstance(stored, str) or not await asyncio.to_thread(verify_hash, configured, stored):
            await redis.set(streams.DASHBOARD_PASSWORD_HASH, await asyncio.to_thread(hash_password, configured))
        return
    if await redis.exists(streams.DASHBOARD_PASSWORD_HASH):
        return
    password = secrets.token_urlsafe(15)
    stored = await asyncio.to_thread(hash_password, password)
    if await redis.set(streams.DASHBOARD_PASSWORD_HASH, stored, nx=True):
        _console_logger().warning(
            "no DASHBOARD_PASSWORD is set, so one was generated (shown this once, kept only hashed); "
            "sign in to the dashboard with >>> %s <<<",
            password,
        )


async def check_password(redis: Redis, settings: ApiSettings, password: str) -> bool:
    """Compare ``password`` with the configured one or the stored hash."""
    if settings.dashboard_password is not None:
        expected = settings.dashboard_password.get_secret_value().encode()
        return hmac.compare_digest(password.encode(), expected)
    stored = await redis.get(streams.DASHBOARD_PASSWORD_HASH)
    if not isinstance(stored, str):  # None (the client decodes responses)
        # The hash vanished (Redis emptied): generate a new one so sign-in is possible again.
        await ensure_password(redis, settings)
        return False
    return await asyncio.to_thread(verify_hash, password, stored)


def session_key(token: str) -> str:
    return SESSION_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def epoch(stored_hash: str | None) -> str:
    """Fingerprint of the password hash in force (a hash of a salted hash: no oracle)."""
    return hashlib.sha256((stored_hash or "").encode()).hexdigest()[:32]


async def create_session(
    redis: Redis, settings: ApiSettings, client_ip: str, account: str = "", password_hash: str | None = None
) -> str:
    """A new random session id, valid for ``SESSION_TTL_S``; the caller puts it in the cookie.

    ``account`` is empty for the owner, whose session follows ``api:password_hash``; an
    account's session records the fingerprint of ``password_hash``, its own password's hash.
    """
    token = secrets.token_urlsafe(32)
    stored = password_hash if account else await redis.get(streams.DASHBOARD_PASSWORD_HASH)
    record = {
        "created_at_ms": now_ms(),
        "ip": client_ip,
        "account": account,
        "epoch": epoch(stored if isinstance(stored, str) else None),  # None when unset (the client decodes)
    }
    await redis.set(session_key(token), dumps(record), ex=settings.session_ttl_s)
    return token


async def read_session(redis: Redis, token: str | None) -> dict[str, object] | None:
    """The record of a live session (``account`` empty for the owner), or None.

    An owner's session opened under a password changed since is ended here; an account's
    fingerprint is compared by the caller, who holds the account (``session_ended`` ends it).
    """
    if not token or len(token) > 100:
        return None
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(session_key(token))
        pipe.get(streams.DASHBOARD_PASSWORD_HASH)
        raw, stored = await pipe.execute()
    record = session_record(raw)
    if record is None:
        return None
    if not record.get("account") and not owner_session_current(record, stored):
        await redis.delete(session_key(token))  # opened under a password that was changed since
        return None
    return record


def session_record(raw: object) -> dict[str, object] | None:
    """A session record as stored in Redis, or None (missing, or not a record)."""
    try:
        record = loads(raw if isinstance(raw, str | bytes) else None)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def owner_session_current(record: dict[str, object], stored_hash: object) -> bool:
    """Whether an owner's session was opened under the password hash in force (``stored_hash``)."""
    return record.get("epoch") == epoch(stored_hash if isinstance(stored_hash, str) else None)


async def session_valid(redis: Redis, token: str | None) -> bool:
    """Whether ``token`` names a live owner's session opened under the password in force."""
    record = await read_session(redis, token)
    return record is not None and not record.get("account")


async def delete_session(redis: Redis, token: str | None) -> None:
    """End a session (logout); unknown tokens are ignored."""
    if token:
        await redis.delete(session_key(token))


async def change_password(redis: Redis, new_password: str) -> None:
    """Store the hash of ``new_password``; every session opened before ends with it."""
    await redis.set(streams.DASHBOARD_PASSWORD_HASH, await asyncio.to_thread(hash_password, new_password))
