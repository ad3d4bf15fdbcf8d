"""Dashboard sign-in: one password, server-side sessions in Redis, slowed-down guessing.

The password is ``DASHBOARD_PASSWORD`` or, when that is unset, one generated at first start:
only its salted scrypt hash is kept (``api:password_hash``) and the clear text is written once
to this process's stderr, never to the shared log stream. Session ids live only in the
browser's HttpOnly cookie; Redis keeps their SHA-256, so a Redis dump opens no session.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import sys

from redis.asyncio import Redis

from services.api.config import ApiSettings
from shared import streams
from shared.codec import dumps
from shared.events import now_ms

COOKIE_NAME = "bot_session"
SESSION_PREFIX = "api:session:"
FAILURES_PREFIX = "api:login:failures:"
BLOCK_PREFIX = "api:login:block:"
FAILURE_WINDOW_S = 900
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}

# Its own stderr handler and no propagation: the generated password must not reach the
# Redis log stream (and from there the dashboard), only the operator's terminal.
_console = logging.getLogger("services.api.first_start")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def _console_logger() -> logging.Logger:
    if not _console.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s api first-start: %(message)s"))
        _console.addHandler(handler)
        _console.propagate = False
        _console.setLevel(logging.INFO)
    return _console


def hash_password(password: str) -> str:
    """Salted scrypt hash as ``scrypt$n$r$p$salt$hash`` (base64 parts)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return "$".join(["scrypt", str(_SCRYPT["n"]), str(_SCRYPT["r"]), str(_SCRYPT["p"]), *encoded])


def verify_hash(password: str, stored: str) -> bool:
    """Whether ``password`` matches a ``hash_password`` result (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


async def ensure_password(redis: Redis, settings: ApiSettings) -> None:
    """Make sure a password exists: configured, already stored, or generated now.

    ``SET NX`` lets one api replica win the generation; only the winner prints the password.
    """
    if settings.dashboard_password is not None or await redis.exists(streams.DASHBOARD_PASSWORD_HASH):
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
    if stored is None:
        # The hash vanished (Redis emptied): generate a new one so sign-in is possible again.
        await ensure_password(redis, settings)
        return False
    return await asyncio.to_thread(verify_hash, password, stored)


def _session_key(token: str) -> str:
    return SESSION_PREFIX + hashlib.sha256(token.encode()).hexdigest()


async def create_session(redis: Redis, settings: ApiSettings, client_ip: str) -> str:
    """A new random session id, valid for ``SESSION_TTL_S``; the caller puts it in the cookie."""
    token = secrets.token_urlsafe(32)
    await redis.set(_session_key(token), dumps({"created_at_ms": now_ms(), "ip": client_ip}), ex=settings.session_ttl_s)
    return token


async def session_valid(redis: Redis, token: str | None) -> bool:
    """Whether ``token`` names a live session."""
    return bool(token) and bool(await redis.exists(_session_key(token or "")))


async def delete_session(redis: Redis, token: str | None) -> None:
    """End a session (logout); unknown tokens are ignored."""
    if token:
        await redis.delete(_session_key(token))


async def blocked_for(redis: Redis, client_ip: str) -> int:
    """Seconds this client must still wait before another sign-in attempt (0 = may try)."""
    ttl = await redis.ttl(BLOCK_PREFIX + client_ip)
    return max(int(ttl), 0)


async def record_failure(redis: Redis, settings: ApiSettings, client_ip: str) -> int:
    """Count a wrong password; past the free attempts, block the client for a doubling delay.

    Returns the delay in seconds now imposed (0 while free attempts remain).
    """
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(FAILURES_PREFIX + client_ip)
        pipe.expire(FAILURES_PREFIX + client_ip, FAILURE_WINDOW_S)
        failures = int((await pipe.execute())[0])
    extra = failures - settings.login_free_attempts
    if extra <= 0:
        return 0
    delay = min(2 ** (extra - 1), settings.login_max_delay_s)
    await redis.set(BLOCK_PREFIX + client_ip, "1", ex=delay)
    return delay


async def clear_failures(redis: Redis, client_ip: str) -> None:
    """Forget a client's failed attempts after a successful sign-in."""
    await redis.delete(FAILURES_PREFIX + client_ip, BLOCK_PREFIX + client_ip)
