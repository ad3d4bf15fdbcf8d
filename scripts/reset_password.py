"""`make reset-password`: a new dashboard password for someone who lost the generated one.

It is printed once and kept only as its salted hash in Redis (``api:password_hash``), exactly
as a first start does; every open dashboard session ends. With ``DASHBOARD_PASSWORD`` set, that
variable is the password and nothing is changed here. Redis is the one `make run` uses
(``REDIS_URL`` with ``REDIS_USERNAME`` / ``REDIS_PASSWORD_FILE``, else the private server on
``REDIS_PORT``, signed in as the api's Redis user with its password from ``var/secrets/``: the
password hash and the sessions are the api's keys), so `make run` must be running.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from dotenv import dotenv_values
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared import redis_acl, streams
from shared.passwords import hash_password
from shared.streams import BusUser

VAR = Path(os.environ.get("BOT_VAR_DIR", ROOT / "var"))  # as scripts/supervisor.py finds it


def environment() -> dict[str, str]:
    values = (
        {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None} if (ROOT / ".env").exists() else {}
    )
    values.update(os.environ)
    return values


async def reset(redis_url: str) -> str:
    password = secrets.token_urlsafe(15)
    stored = await asyncio.to_thread(hash_password, password)
    redis = Redis.from_url(redis_url, decode_responses=True, socket_connect_timeout=3)
    try:
        sessions = [key async for key in redis.scan_iter(match=f"{streams.SESSION_PREFIX}*", count=500)]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(streams.DASHBOARD_PASSWORD_HASH, stored)
            if sessions:
                pipe.delete(*sessions)
            await pipe.execute()
    finally:
        await redis.aclose()
    return password


def bus_url(env: dict[str, str]) -> str:
    """Where the api's keys are, signed in: REDIS_URL as configured, else `make run`'s Redis."""
    if env.get("REDIS_URL"):
        return redis_acl.configured_url(env)
    port = env.get("REDIS_PORT") or "6380"
    if (VAR / "secrets" / "redis-passwords.json").exists():
        return redis_acl.make_run_url(VAR, BusUser.API, port)
    return f"redis://127.0.0.1:{port}/0"


def redact_url(url: str) -> str:
    """``url`` without its password (never printed)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or parse_qs(parts.query).get("username", [""])[0]
    return f"{parts.scheme}://{user + '@' if user else ''}{host}{parts.path}"


def main() -> int:
    env = environment()
    if env.get("DASHBOARD_PASSWORD"):
        print(
            "DASHBOARD_PASSWORD is set (environment or .env): that is the dashboard password; change it there "
            "and restart the api (make restart SERVICE=api)"
        )
        return 1
    try:
        redis_url = bus_url(env)
    except (OSError, ValueError, KeyError) as e:
        print(f"cannot read the Redis credentials ({e}): start `make run` first")
        return 1
    where = redact_url(redis_url)
    try:
        password = asyncio.run(reset(redis_url))
    except OSError as e:
        print(f"Redis is not reachable at {where} ({e}): start `make run` first")
        return 1
    except Exception as e:  # noqa: BLE001 - redis-py wraps connection errors
        print(f"could not reset the password in Redis at {where}: {e}")
        return 1
    print(f"new dashboard password (shown this once, kept only hashed; open sessions ended): {password}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
