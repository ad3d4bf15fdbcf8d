"""Who may use the dashboard besides the owner: accounts with a role, and personal API tokens.

Both live in the ledger database (``accounts``, ``api_tokens``), which outlives Redis: an
emptied Redis ends sessions, never accounts. An account's password is generated, shown once and
kept as its scrypt hash (``shared.passwords.hash_password``, as the owner's). A token is 256 random bits
shown once; only its SHA-256 is kept (a token is no guessable password, so a slow hash would
only slow every request down). Nothing here logs or returns a password or a token after it
was created.

Roles, weakest first: ``viewer`` reads the dashboard and the API; ``operator`` also sends
commands and parameter changes; ``admin`` (the owner only) also manages tokens and the password.
A token acts with its own role, never more than its holder's role at the time of the request.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.events import now_ms
from shared.passwords import hash_password, verify_hash
from shared.store.models import Account, ApiToken

OWNER = "owner"  # the holder of DASHBOARD_PASSWORD; no account may take this name
TOKEN_PREFIX = "bsb_"
NAME_RULE = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
TOKEN_NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_. -]{0,63}")


class Role(StrEnum):
    """What a caller may do, weakest first."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


ACCOUNT_ROLES = (Role.VIEWER, Role.OPERATOR)


class AccessError(ValueError):
    """A refused account or token change; the message names the field and says why."""


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the account (``owner`` for the owner), its role, the token used if any."""

    account: str
    role: Role
    token: str | None = None

    def author(self, ip: str) -> str:
        """How the audit trail (commands, parameter changes) names this caller."""
        via = f"[token {self.token}]" if self.token is not None else ""
        return f"{self.account}{via}@{ip}"


@dataclass(frozen=True)
class AccountView:
    name: str
    role: Role
    created_at_ms: int
    updated_at_ms: int


@dataclass(frozen=True)
class TokenView:
    id: int
    name: str
    account: str
    role: Role
    created_at_ms: int
    revoked_at_ms: int | None


def check_name(name: str) -> str:
    """An account name: lower-case letters, digits, ``_.-``, starting with a letter; not ``owner``."""
    if not NAME_RULE.fullmatch(name):
        raise AccessError("name: 1-32 characters, lower-case letters, digits, '_', '.', '-', starting with a letter")
    if name == OWNER:
        raise AccessError(f"name: '{OWNER}' is the holder of DASHBOARD_PASSWORD")
    return name


def check_role(role: str, allowed: tuple[Role, ...] = ACCOUNT_ROLES) -> Role:
    if role not in {r.value for r in allowed}:
        raise AccessError(f"role: one of {', '.join(r.value for r in allowed)}")
    return Role(role)


def new_password() -> str:
    return secrets.token_urlsafe(15)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _session(engine: AsyncEngine) -> AsyncSession:
    # Rows stay readable after the commit that wrote them (their views are built from them).
    return AsyncSession(engine, expire_on_commit=False)


def _account_view(row: Account) -> AccountView:
    return AccountView(row.name, Role(row.role), row.created_at_ms, row.updated_at_ms)


def _token_view(row: ApiToken) -> TokenView:
    return TokenView(row.id, row.name, row.account, Role(row.role), row.created_at_ms, row.revoked_at_ms)


# -- accounts ----------------------------------------------------------------------------------


async def create_account(engine: AsyncEngine, name: str, role: str) -> str:
    """Add an account; returns its generated password (the caller shows it once)."""
    name, chosen = check_name(name), check_role(role)
    password = new_password()
    stored = await asyncio.to_thread(hash_password, password)
    stamp = now_ms()
    try:
        async with _session(engine) as session, session.begin():
            session.add(
                Account(name=name, role=chosen.value, password_hash=stored, created_at_ms=stamp, updated_at_ms=stamp)
            )
    except IntegrityError:
        raise AccessError(f"name: an account {name!r} exists already") from None
    return password


async def get_account(engine: AsyncEngine, name: str) -> Account | None:
    async with _session(engine) as session:
        return (await session.execute(select(Account).where(Account.name == name))).scalar_one_or_none()


async def list_accounts(engine: AsyncEngine) -> list[AccountView]:
    async with _session(engine) as session:
        rows = (await session.execute(select(Account).order_by(Account.name))).scalars().all()
    return [_account_view(row) for row in rows]


async def set_role(engine: AsyncEngine, name: str, role: str) -> None:
    """Change an account's role; it applies to its open sessions and tokens at their next request."""
    chosen = check_role(role)
    async with _session(engine) as session, session.begin():
        result = await session.execute(
            update(Account).where(Account.name == name).values(role=chosen.value, updated_at_ms=now_ms())
        )
    if not result.rowcount:  # type: ignore[attr-defined]  # an UPDATE answers a CursorResult
        raise AccessError(f"name: no account {name!r}")


async def reset_password(engine: AsyncEngine, name: str) -> str:
    """A new generated password for an account (its open sessions end); returned once."""
    password = new_password()
    stored = await asyncio.to_thread(hash_password, password)
    async with _session(engine) as session, session.begin():
        result = await session.execute(
            update(Account).where(Account.name == name).values(password_hash=stored, updated_at_ms=now_ms())
        )
    if not result.rowcount:  # type: ignore[attr-defined]  # an UPDATE answers a CursorResult
        raise AccessError(f"name: no account {name!r}")
    return password


async def remove_account(engine: AsyncEngine, name: str) -> None:
    """Delete an account and revoke its tokens; its open sessions end at their next request."""
    async with _session(engine) as session, session.begin():
        result = await session.execute(delete(Account).where(Account.name == name))
        if not result.rowcount:  # type: ignore[attr-defined]  # a DELETE answers a CursorResult
            raise AccessError(f"name: no account {name!r}")
        await session.execute(
            update(ApiToken)
            .where(ApiToken.account == name, ApiToken.revoked_at_ms.is_(None))
            .values(revoked_at_ms=now_ms())
        )


async def check_account_password(engine: AsyncEngine, name: str, password: str) -> Account | None:
    """The account when ``password`` is its password, else None (unknown names cost a hash too)."""
    account = await get_account(engine, name) if NAME_RULE.fullmatch(name) else None
    stored = account.password_hash if account is not None else _dummy_hash()
    ok = await asyncio.to_thread(verify_hash, password, stored)
    return account if ok and account is not None else None


@functools.cache
def _dummy_hash() -> str:
    """A hash of nothing anyone knows: an unknown name takes as long to refuse as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


# -- tokens ------------------------------------------------------------------------------------


async def holder_role(engine: AsyncEngine, account: str) -> Role | None:
    """The role of ``account`` now (the owner is admin), None when it no longer exists."""
    if account == OWNER:
        return Role.ADMIN
    row = await get_account(engine, account)
    return Role(row.role) if row is not None else None


async def create_token(engine: AsyncEngine, account: str, name: str, role: str) -> tuple[TokenView, str]:
    """A new token for ``account`` acting as ``role`` (at most the account's); returns it and its text once."""
    if not TOKEN_NAME_RULE.fullmatch(name):
        raise AccessError("name: 1-64 characters, letters, digits, space, '_', '.', '-'")
    chosen = check_role(role, (Role.VIEWER, Role.OPERATOR))
    held = await holder_role(engine, account)
    if held is None:
        raise AccessError(f"account: no account {account!r}")
    if not held.allows(chosen):
        raise AccessError(f"role: {account} is {held.value}; its tokens cannot be {chosen.value}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, account=account, role=chosen.value, token_hash=token_hash(secret), created_at_ms=now_ms())
    async with _session(engine) as session, session.begin():
        session.add(row)
    return _token_view(row), secret


async def list_tokens(engine: AsyncEngine, account: str | None = None) -> list[TokenView]:
    """Tokens (revoked ones too), oldest first; never their text, which is not kept."""
    query = select(ApiToken).order_by(ApiToken.id)
    if account is not None:
        query = query.where(ApiToken.account == account)
    async with _session(engine) as session:
        rows = (await session.execute(query)).scalars().all()
    return [_token_view(row) for row in rows]


async def revoke_token(engine: AsyncEngine, token_id: int) -> TokenView:
    """Revoke a token at once (its next request is refused); revoking twice changes nothing."""
    async with _session(engine) as session, session.begin():
        row = await session.get(ApiToken, token_id)
        if row is None:
            raise AccessError(f"id: no token {token_id}")
        if row.revoked_at_ms is None:
            row.revoked_at_ms = now_ms()
        return _token_view(row)


async def token_caller(engine: AsyncEngine, secret: str) -> Caller | None:
    """Who a bearer token speaks for, or None (unknown, revoked, or its holder is gone)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    async with _session(engine) as session:
        row = (
            await session.execute(
                select(ApiToken).where(ApiToken.token_hash == token_hash(secret), ApiToken.revoked_at_ms.is_(None))
            )
        ).scalar_one_or_none()
    if row is None:
        return None
    held = await holder_role(engine, row.account)
    if held is None:
        return None
    role = Role(row.role) if held.allows(Role(row.role)) else held
    return Caller(row.account, role, row.name)
