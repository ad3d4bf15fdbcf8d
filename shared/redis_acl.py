"""Redis users built from ``shared.streams.ACCESS``: ACL rules, passwords, connection URLs.

One table, three consumers: ``make run`` (scripts/supervisor.py) writes an ACL file and hands
each service its own URL, docker compose mounts the file written by
``python -m shared.redis_acl compose``, and the test stack runs on the same rules, so a
permission missing from the table breaks the pipeline tests instead of production.

Rules are Redis 7 ACL syntax: read-only patterns are ``%R~``, written ones ``~``, and a
selector ``(...)`` grants the consumer-group commands on the streams a service consumes, so it
can read, acknowledge and claim them but never append to them. Passwords are stored in the
ACL file only as SHA-256 (``#<hex>``); the clear text lives in ``var/`` (mode 600) or in the
compose secret files, never in Redis.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from shared.streams import ACCESS, BusGrant, BusUser

ADMIN_USER = "default"  # the operator's account (redis-cli, rotation); every service has its own

# No CLIENT SETINFO: it does not exist before Redis 7.2, and redis-py ignores its refusal.
CONNECTION_COMMANDS = (
    "ping",
    "hello",
    "select",
    "echo",
    "time",
    "client|setname",
    "client|getname",
    "client|id",
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    "scan",
)
READ_COMMANDS = (
    "get",
    "mget",
    "exists",
    "ttl",
    "pttl",
    "type",
    "strlen",
    "hget",
    "hmget",
    "hgetall",
    "hlen",
    "hexists",
    "xrange",
    "xrevrange",
    "xread",
    "xlen",
    "xinfo|stream",
    "xinfo|groups",
    "xinfo|consumers",
    "xpending",
    "zcard",
    "zrange",
)
WRITE_COMMANDS = (
    "set",
    "del",
    "unlink",
    "expire",
    "pexpire",
    "incr",
    "hset",
    "hdel",
    "hincrby",
    "xadd",
    "xtrim",
    # replica membership (shared.leases): a sorted set scored by Redis time
    "zadd",
    "zrem",
    "zremrangebyscore",
    "zcount",
)
GROUP_COMMANDS = (
    "xreadgroup",
    "xack",
    "xgroup|create",
    "xgroup|setid",  # the executor moves the groups of ticker streams it does not read (services/executor/watch.py)
    "xautoclaim",
    "xpending",
    "xinfo|groups",
    "xinfo|consumers",
    "xrange",
    "xrevrange",
    "xlen",
)
SCRIPT_COMMANDS = ("eval", "evalsha", "script|load")


def user_rules(grant: BusGrant) -> str:
    """The ACL rules (after ``on`` and the password) of one service's grant."""
    commands = [*CONNECTION_COMMANDS, *READ_COMMANDS, *WRITE_COMMANDS, *(SCRIPT_COMMANDS if grant.scripts else ())]
    parts = ["resetkeys", "resetchannels", "-@all", *(f"+{c}" for c in commands)]
    parts += [f"~{pattern}" for pattern in grant.writes]
    parts += [f"%R~{pattern}" for pattern in grant.reads]
    if grant.groups:
        selector = [*(f"+{c}" for c in GROUP_COMMANDS), *(f"~{pattern}" for pattern in grant.groups)]
        parts.append("(" + " ".join(selector) + ")")
    return " ".join(parts)


def password_hash(password: str) -> str:
    """How the ACL file stores a password: ``#`` and its SHA-256."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def acl_file_text(admin_password: str, passwords: dict[BusUser, str]) -> str:
    """Every user of the bus, one per line, as ``redis-server --aclfile`` reads them."""
    lines = [f"user {ADMIN_USER} on {password_hash(admin_password)} ~* &* +@all"]
    for user, grant in ACCESS.items():
        lines.append(f"user {user.value} on {password_hash(passwords[user])} {user_rules(grant)}")
    return "\n".join(lines) + "\n"


def new_password() -> str:
    """A random password (256 bits, URL-safe so it fits in a Redis URL as is)."""
    return secrets.token_urlsafe(32)


def write_secret(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` readable by its owner only (created with that mode, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def load_or_create_passwords(path: Path) -> tuple[str, dict[BusUser, str]]:
    """The admin password and one per service, kept in ``path`` (JSON, mode 600).

    Missing entries (a first start, or a service added to the table) are generated and the file
    rewritten; existing ones are kept, so a restart keeps the same passwords.
    """
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for name in (ADMIN_USER, *(user.value for user in BusUser)):
        if not stored.get(name):
            stored[name] = new_password()
            changed = True
    if changed or (path.stat().st_mode & 0o077):
        write_secret(path, json.dumps(stored, indent=2) + "\n")
    return stored[ADMIN_USER], {user: stored[user.value] for user in BusUser}


def url_with_credentials(url: str, username: str, password: str) -> str:
    """``url`` (``redis://``, ``rediss://`` or ``unix://``) logged in as ``username``."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"
    if parts.scheme == "unix":
        # redis-py reads unix URLs' credentials from the query string.
        query = "&".join(
            p
            for p in (parts.query, f"username={quote(username, safe='')}", f"password={quote(password, safe='')}")
            if p
        )
        return f"unix://{parts.path}?{query}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def make_run_url(var: Path, user: BusUser, port: str | int) -> str:
    """How ``user`` reaches `make run`'s Redis from outside it (a tool, not a service): TCP on
    ``port``, the password from ``var/secrets/redis-passwords.json``."""
    passwords = json.loads((var / "secrets" / "redis-passwords.json").read_text())
    return url_with_credentials(f"redis://127.0.0.1:{port}/0", user.value, passwords[user.value])


def configured_url(env: dict[str, str]) -> str:
    """``REDIS_URL`` with ``REDIS_USERNAME`` / ``REDIS_PASSWORD_FILE`` applied, as a service reads them."""
    url = env["REDIS_URL"]
    if env.get("REDIS_PASSWORD_FILE"):
        password = Path(env["REDIS_PASSWORD_FILE"]).read_text().strip()
        url = url_with_credentials(url, env.get("REDIS_USERNAME") or ADMIN_USER, password)
    return url


@dataclass(frozen=True)
class LocalBus:
    """A private redis-server's users, as ``make run`` and the test stack start it."""

    admin_password: str
    passwords: dict[BusUser, str]
    acl_file: Path
    socket: Path | None

    def server_args(self) -> list[str]:
        """redis-server options: the ACL file, and the unix socket only its owner may open."""
        args = ["--aclfile", str(self.acl_file)]
        if self.socket is not None:
            args += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        return args

    def admin_url(self, tcp_url: str) -> str:
        return url_with_credentials(tcp_url, ADMIN_USER, self.admin_password)

    def service_url(self, user: BusUser, tcp_url: str) -> str:
        """Where ``user`` connects: the unix socket when there is one, else ``tcp_url``."""
        base = f"unix://{self.socket}?db=0" if self.socket is not None else tcp_url
        return url_with_credentials(base, user.value, self.passwords[user])


# sockaddr_un holds about 107 bytes; a longer path cannot be a socket.
_MAX_SOCKET_PATH = 100


def prepare_local(redis_folder: Path, secrets_folder: Path, socket: bool = True) -> LocalBus:
    """Passwords (kept in ``secrets_folder``, mode 600) and the ACL file for a private server."""
    secrets_folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(secrets_folder, 0o700)
    admin, passwords = load_or_create_passwords(secrets_folder / "redis-passwords.json")
    # For the operator: REDISCLI_AUTH="$(cat var/secrets/redis-admin.password)" redis-cli -p 6380
    write_secret(secrets_folder / "redis-admin.password", admin + "\n")
    acl = redis_folder / "users.acl"
    write_secret(acl, acl_file_text(admin, passwords))
    path = redis_folder / "redis.sock"
    use_socket = socket and hasattr(os, "fchmod") and len(str(path.resolve())) <= _MAX_SOCKET_PATH
    return LocalBus(admin, passwords, acl, path.resolve() if use_socket else None)


def compose_files(folder: Path, admin_password: str) -> list[Path]:
    """Write what docker-compose.yml mounts: ``users.acl`` and one password file per service.

    Compose bind-mounts these files with their host mode into containers whose user is not the
    host's, so the files are readable (0644) and the folder holding them is 0700: other host
    users cannot reach them, and each container sees only its own password.
    """
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    passwords_file = folder / "passwords.json"
    stored: dict[str, str] = json.loads(passwords_file.read_text()) if passwords_file.exists() else {}
    passwords = {user: stored.get(user.value) or new_password() for user in BusUser}
    write_secret(passwords_file, json.dumps({u.value: p for u, p in passwords.items()}, indent=2) + "\n")
    written = [passwords_file]
    for user, password in passwords.items():
        target = folder / f"redis-{user.value}.password"
        write_secret(target, password, mode=0o644)
        written.append(target)
    acl = folder / "users.acl"
    write_secret(acl, acl_file_text(admin_password, passwords), mode=0o644)
    written.append(acl)
    signing = folder / "bus-signing.key"
    if not signing.exists():
        write_secret(signing, secrets.token_hex(32), mode=0o644)
    written.append(signing)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.redis_acl", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    compose = sub.add_parser("compose", help="write var/compose/: the ACL file, service passwords, bus signing key")
    compose.add_argument("--dir", default="var/compose")
    compose.add_argument("--rotate", action="store_true", help="new passwords for every service user")
    sub.add_parser("rules", help="print the ACL rules of every service user (no passwords)")
    args = parser.parse_args(argv)
    if args.command == "rules":
        for user, grant in ACCESS.items():
            print(f"user {user.value} on <password> {user_rules(grant)}")
        return 0
    from dotenv import dotenv_values

    admin = os.environ.get("REDIS_PASSWORD") or (
        dotenv_values(".env").get("REDIS_PASSWORD") if Path(".env").exists() else None
    )
    if not admin:
        print(
            "REDIS_PASSWORD must be set (in .env or the environment): it is the admin user's password", file=sys.stderr
        )
        return 2
    folder = Path(args.dir)
    if args.rotate:
        (folder / "passwords.json").unlink(missing_ok=True)
    for path in compose_files(folder, admin):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
