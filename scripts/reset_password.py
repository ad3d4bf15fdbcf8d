"""`make reset-password`: a new dashboard password for someone who lost the generated one.

It is printed once and kept only as its salted hash in Redis (``api:password_hash``), exactly
as a first start does; every open dashboard session ends. With ``DASHBOARD_PASSWORD`` set, that
variable is the password and nothing is changed here. Redis is the one `make run` uses
(``REDIS_URL``, else the private server on ``REDIS_PORT``), so `make run` must be running.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from pathlib import Path

from dotenv import dotenv_values
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.api.auth import SESSION_PREFIX, hash_password  # noqa: E402
from shared import streams  # noqa: E402


def environment() -> dict[str, str]:
    values = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None} if (ROOT / ".env").exists() else {}
    values.update(os.environ)
    return values


async def reset(redis_url: str) -> str:
    password = secrets.token_urlsafe(15)
    stored = await asyncio.to_thread(hash_password, password)
    redis = Redis.from_url(redis_url, decode_responses=True, socket_connect_timeout=3)
    try:
        sessions = [key async for key in redis.scan_iter(match=f"{SESSION_PREFIX}*", count=500)]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(streams.DASHBOARD_PASSWORD_HASH, stored)
            if sessions:
                pipe.delete(*sessions)
            await pipe.execute()
    finally:
        await redis.aclose()
    return password


def main() -> int:
    env = environment()
    if env.get("DASHBOARD_PASSWORD"):
        print("DASHBOARD_PASSWORD is set (environment or .env): that is the dashboard password; change it there "
              "and restart the api (make restart SERVICE=api)")
        return 1
    redis_url = env.get("REDIS_URL") or f"redis://127.0.0.1:{env.get('REDIS_PORT') or 6380}/0"
    try:
        password = asyncio.run(reset(redis_url))
    except OSError as e:
        print(f"Redis is not reachable at {redis_url} ({e}): start `make run` first")
        return 1
    except Exception as e:  # noqa: BLE001 - redis-py wraps connection errors
        print(f"could not reset the password in Redis at {redis_url}: {e}")
        return 1
    print(f"new dashboard password (shown this once, kept only hashed; open sessions ended): {password}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
