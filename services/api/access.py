"""Who is calling: a session cookie (the owner's or an account's) or a bearer token, and its role.

The role check lives here, once, for every route behind ``deps.Protected``: a method that
changes something (anything but GET, HEAD, OPTIONS) needs at least ``operator``, so a viewer
(session or token) gets 403 from every acting route, including routes added later.
Managing tokens and the owner's password needs ``admin`` on top (``deps.AdminOnly``).
"""

from __future__ import annotations

from fastapi import HTTPException, Request, status
from redis.asyncio import Redis

from services.api import auth
from shared.account_cache import AccessCache
from shared.accounts import OWNER, Caller, Role

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def session_caller(redis: Redis, cache: AccessCache, token: str | None) -> Caller | None:
    """The caller a session cookie speaks for, or None (no live session, account gone or its password changed).

    The account comes from ``cache``: read from the database once, then again after any commit
    to it, so a role change, a removal or a new password applies to the very next request."""
    record = await auth.read_session(redis, token)
    if record is None:
        return None
    name = str(record.get("account") or "")
    if not name:
        return Caller(OWNER, Role.ADMIN)
    account = await cache.account(name)
    if account is None or not account_session_current(record, account.password_hash):
        await auth.delete_session(redis, token)
        return None
    return Caller(name, Role(account.role))


def account_session_current(record: dict[str, object], password_hash: str) -> bool:
    """Whether an account's session was opened under its password in force."""
    return record.get("epoch") == auth.epoch(password_hash)


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header ("" for any other scheme), None without the header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, credentials = header.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


async def identify(request: Request, redis: Redis, cache: AccessCache) -> Caller | None:
    """A bearer token when the request carries one (the cookie is then ignored), else the session cookie."""
    token = bearer(request)
    if token is not None:
        return await cache.token_caller(token) if token else None
    return await session_caller(redis, cache, request.cookies.get(auth.COOKIE_NAME))


def authorise(request: Request, caller: Caller) -> None:
    """403 unless ``caller`` may use this method: acting needs at least an operator."""
    if request.method not in READ_METHODS and not caller.role.allows(Role.OPERATOR):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{caller.role.value} access is read-only")


def require_role(caller: Caller, needed: Role) -> None:
    if not caller.role.allows(needed):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"needs {needed.value} access ({caller.account} is {caller.role.value})"
        )
