"""`make user` and `make token`: the dashboard's accounts and personal API tokens.

    python scripts/access.py user                          list accounts
    python scripts/access.py user --add NAME --role viewer a new account; its password is printed once
    python scripts/access.py user --name NAME --role operator   change an account's role
    python scripts/access.py user --reset NAME             a new password (printed once); its sessions end
    python scripts/access.py user --remove NAME            remove an account and revoke its tokens
    python scripts/access.py token                         list tokens
    python scripts/access.py token --add LABEL --role viewer [--user NAME]   a new token, printed once
    python scripts/access.py token --revoke ID             revoke a token

Accounts and tokens live in the ledger database (``DATABASE_URL`` from the environment or
``.env``, as the services read it), so this works whether `make run` is running or not; a
change applies to open sessions and tokens at their next request. Passwords and tokens are
printed once and kept only as hashes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from dotenv import dotenv_values
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared import accounts
from shared.accounts import OWNER, AccessError
from shared.store.database import DatabaseUrlError, migrate_with_retries, open_engine


def database_url() -> str:
    values = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v} if (ROOT / ".env").exists() else {}
    values.update({k: v for k, v in os.environ.items() if v})
    return values.get("DATABASE_URL", "sqlite:///var/bot.sqlite3")


def when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


async def users(engine: AsyncEngine, args: argparse.Namespace) -> str:
    if args.add:
        if not args.role:
            raise AccessError("role: give ROLE=viewer or ROLE=operator")
        password = await accounts.create_account(engine, args.add, args.role)
        return (
            f"account {args.add} ({args.role}) created; its password (shown this once, kept only hashed): {password}\n"
            f"sign in with account {args.add!r} and this password"
        )
    if args.remove:
        await accounts.remove_account(engine, args.remove)
        return f"account {args.remove} removed; its sessions and tokens no longer work"
    if args.reset:
        password = await accounts.reset_password(engine, args.reset)
        return f"new password of {args.reset} (shown this once, kept only hashed; its sessions ended): {password}"
    if args.name:
        if not args.role:
            raise AccessError("role: give ROLE=viewer or ROLE=operator")
        await accounts.set_role(engine, args.name, args.role)
        return f"account {args.name} is now {args.role} (applies to its sessions and tokens at once)"
    rows = await accounts.list_accounts(engine)
    lines = [f"{'account':<32} {'role':<9} created", f"{OWNER:<32} {'admin':<9} (DASHBOARD_PASSWORD)"]
    lines += [f"{row.name:<32} {row.role.value:<9} {when(row.created_at_ms)}" for row in rows]
    return "\n".join(lines)


async def tokens(engine: AsyncEngine, args: argparse.Namespace) -> str:
    if args.add:
        view, secret = await accounts.create_token(engine, args.user or OWNER, args.add, args.role or "viewer")
        return (
            f"token {view.id} {view.name!r} ({view.role.value}) of {view.account} created; send it as "
            f"'Authorization: Bearer <token>' (shown this once, kept only hashed):\n{secret}"
        )
    if args.revoke:
        try:
            token_id = int(args.revoke)
        except ValueError:
            raise AccessError("id: the number shown by `make token`") from None
        view = await accounts.revoke_token(engine, token_id)
        return f"token {view.id} {view.name!r} of {view.account} revoked"
    rows = await accounts.list_tokens(engine)
    lines = [f"{'id':>4} {'name':<24} {'account':<16} {'role':<9} {'created':<21} revoked"]
    lines += [
        f"{row.id:>4} {row.name:<24} {row.account:<16} {row.role.value:<9} {when(row.created_at_ms):<21} "
        f"{when(row.revoked_at_ms)}"
        for row in rows
    ]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> str:
    url = database_url()
    await migrate_with_retries(url, attempts=5)
    engine = open_engine(url)
    try:
        return await (users(engine, args) if args.command == "user" else tokens(engine, args))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/access.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    user = sub.add_parser("user", help="list, add, change, reset or remove accounts")
    user.add_argument("--add", default="")
    user.add_argument("--name", default="", help="the account whose role --role sets")
    user.add_argument("--role", default="")
    user.add_argument("--reset", default="")
    user.add_argument("--remove", default="")
    token = sub.add_parser("token", help="list, add or revoke API tokens")
    token.add_argument("--add", default="", help="the token's label")
    token.add_argument("--role", default="")
    token.add_argument("--user", default="", help="the account the token belongs to (default: the owner)")
    token.add_argument("--revoke", default="")
    args = parser.parse_args(argv)
    try:
        print(asyncio.run(run(args)))
    except AccessError as e:
        print(f"error: {e}")
        return 2
    except (DatabaseUrlError, OSError) as e:
        print(f"error: the database cannot be opened ({e})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
