"""``python -m shared.bus_key rotate``: a new bus signing key, the stored records sealed with it.

The two records services act on at start (``control:parameters:current``, ``control:bot_state``)
carry a MAC made with the deployment key; after a plain key change they would be refused. This
checks each with the current key (a record that does not verify is not sealed again: it was not
written by the bot), seals both with a new key in one transaction, then replaces the key file,
keeping the old one as ``<file>.old``. Restart the services afterwards so they load the new key.
Runs as the api's Redis user (it may write both records), or any URL given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from shared import signing, streams
from shared.codec import dumps, loads
from shared.redis_acl import make_run_url, write_secret
from shared.redis_conn import connect_redis

RECORDS = (streams.PARAMETERS, streams.BOT_STATE)


async def rotate(redis_url: str, key_file: Path) -> str:
    """Seal the records again with a new key and replace ``key_file``; return what was done."""
    old = signing.parse_key(key_file.read_text())
    new_text = signing.new_key()
    new = signing.parse_key(new_text)
    redis = await connect_redis(redis_url, attempts=3, delay_s=0.5)
    try:
        resealed = {}
        for key in RECORDS:
            record = loads(await redis.get(key))
            if record is None:
                continue
            seal = signing.check_record(record, old)
            if seal is not signing.Seal.VALID:
                raise SystemExit(f"{key} does not verify with the current key (MAC {seal.value}); nothing changed")
            resealed[key] = dumps(signing.seal_record(record, new))
        if resealed:
            async with redis.pipeline(transaction=True) as pipe:
                for key, value in resealed.items():
                    pipe.set(key, value)
                await pipe.execute()
    finally:
        await redis.aclose()
    backup = key_file.with_name(key_file.name + ".old")
    mode = key_file.stat().st_mode & 0o777  # 600 for make run; compose's mounted files stay readable
    write_secret(backup, key_file.read_text(), mode=0o600)
    write_secret(key_file, new_text + "\n", mode=mode)
    names = ", ".join(resealed) or "no stored record"
    return f"new key in {key_file} (old one in {backup}); sealed again: {names}. Restart the services now."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.bus_key", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    command = sub.add_parser("rotate", help="new key; control:parameters:current and control:bot_state sealed with it")
    command.add_argument("--key-file", help="default: BUS_SIGNING_KEY_FILE, else var/secrets/bus-signing.key")
    command.add_argument(
        "--redis-url",
        help="default: REDIS_URL with REDIS_USERNAME/REDIS_PASSWORD_FILE, else make run's Redis as the api",
    )
    args = parser.parse_args(argv)
    var = Path(os.environ.get("BOT_VAR_DIR", "var"))
    key_file = Path(args.key_file or os.environ.get("BUS_SIGNING_KEY_FILE") or var / "secrets" / "bus-signing.key")
    if not key_file.is_file():
        print(f"no key file at {key_file} (a key given as BUS_SIGNING_KEY is rotated by changing it)", file=sys.stderr)
        return 2
    url = args.redis_url
    if url is None and os.environ.get("REDIS_URL"):
        from shared.settings import ServiceSettings

        url = ServiceSettings().redis_url
    print(
        asyncio.run(
            rotate(url or make_run_url(var, streams.BusUser.API, os.environ.get("REDIS_PORT", "6380")), key_file)
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
