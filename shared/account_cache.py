"""Accounts and tokens as last read from the ledger database, for as long as it has not changed.

Every signed-in request needs its caller's role, and a named account's or a token's role lives
in the database, which ``make user`` / ``make token`` change from another process. A role
change, a removal, a password reset or a revoked token must apply to the very next request, so
the cache cannot expire on a timer: it holds while the database is unchanged. SQLite says so
for free: ``PRAGMA data_version`` on a connection of its own changes whenever any other
connection (any process, this one's engine included) commits, and reading it costs
microseconds, no thread hop, no query. Any commit (an order the executor writes too) empties
the cache, which is conservative: the next request reads again. Another database (PostgreSQL)
gives no such signal here; there every request reads, as before.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import accounts
from shared.accounts import Caller

# Unknown names and tokens are remembered too (as None); the cap bounds what a caller sending
# made-up ones can make this hold between two commits.
MAX_ENTRIES = 1024


class DatabaseRevision:
    """A number that changes whenever the SQLite database is committed to; None when unknown."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.path = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if self.path in ("", ":memory:"):
            self.path = None
        self._connection: sqlite3.Connection | None = None

    def current(self) -> int | None:
        if self.path is None:
            return None
        try:
            if self._connection is None:
                # Autocommit: no transaction is ever left open on this connection; it never writes.
                self._connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            row = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            self.close()
            return None
        return int(row[0])

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass(frozen=True)
class AccountState:
    """What a session check needs of an account: its role and its password hash (the epoch)."""

    role: str
    password_hash: str


class AccessCache:
    """``accounts.get_account`` and ``accounts.token_caller``, read once per database revision."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.revision = DatabaseRevision(engine.url.render_as_string(hide_password=False))
        self._at: int | None = None
        self._accounts: dict[str, AccountState | None] = {}
        self._tokens: dict[str, Caller | None] = {}
        self.reads = 0  # database reads made (the rest were answered from the cache)

    def _valid(self) -> int | None:
        revision = self.revision.current()
        if revision is None or revision != self._at or len(self._accounts) + len(self._tokens) >= MAX_ENTRIES:
            self._accounts.clear()
            self._tokens.clear()
            self._at = revision
        return revision

    async def account(self, name: str) -> AccountState | None:
        revision = self._valid()
        if revision is not None and name in self._accounts:
            return self._accounts[name]
        self.reads += 1
        row = await accounts.get_account(self.engine, name)
        state = None if row is None else AccountState(row.role, row.password_hash)
        # Kept only if nothing was committed while reading: the read may predate that commit.
        if revision is not None and self.revision.current() == revision:
            self._accounts[name] = state
        return state

    async def token_caller(self, secret: str) -> Caller | None:
        key = accounts.token_hash(secret)
        revision = self._valid()
        if revision is not None and key in self._tokens:
            return self._tokens[key]
        self.reads += 1
        caller = await accounts.token_caller(self.engine, secret)
        if revision is not None and self.revision.current() == revision:
            self._tokens[key] = caller
        return caller

    def close(self) -> None:
        self.revision.close()
