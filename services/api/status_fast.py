"""``GET /api/status`` for a session cookie in one Redis round trip, beside the framework.

The dashboard asks for the status more than for anything else. Through the router a request
costs two Redis round trips (the session, then the status' keys) and the framework's routing,
request object and dependency solving around them, which together were most of its CPU. Here
the session's two keys are read in the same pipeline as the status' keys, and the answer (the
same bytes ``routes.status.get_status`` returns) is sent from this middleware, which runs
inside ``Admission`` (capacity, cancel on disconnect), ``SecurityHeaders`` and CORS.

Anything but a plainly valid session cookie is handed to the app unchanged: a bearer token,
no cookie, an ended session or one of an account whose password changed, a Redis error. The
route then answers as it always does (200, 401 and its ``WWW-Authenticate``, the session
removed, 503), so every answer other than the common one comes from one place.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api import auth
from services.api.access import account_session_current
from services.api.deps import Resources
from services.api.routes.status import status_bytes, status_commands
from shared import streams

logger = logging.getLogger(__name__)
PATH = "/api/status"
_SESSION_READS = 2  # the session record and the owner's password hash, first in the pipeline


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _session_valid(resources: Resources, raw: Any, stored: Any) -> bool:
    """Whether a session record read from Redis lets its caller read (every role may GET), by the
    rules the route's own check applies (``auth.read_session``, ``access.session_caller``)."""
    record = auth.session_record(raw)
    if record is None:
        return False
    name = str(record.get("account") or "")
    if not name:
        return auth.owner_session_current(record, stored)
    account = await resources.access.account(name)
    return account is not None and account_session_current(record, account.password_hash)


def _stream_entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """An ``XREVRANGE`` reply as redis-py parses it: (id, fields) pairs."""
    return [(entry[0], _pairs(entry[1])) for entry in reply or ()]


def _pairs(reply: Any) -> dict[str, str]:
    if isinstance(reply, dict):  # RESP3 maps
        return reply
    values = iter(reply or ())
    return dict(zip(values, values, strict=False))


class PackedReads:
    """The status' commands packed once (they change only with the symbol filters' presence),
    read on a connection of the client's pool in one write and one pass over the replies:
    redis-py's pipeline machinery (queueing, packing, per-command callbacks) cost more than
    the reads themselves for these fifteen small commands."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._packed: list[bytes] = []
        self._parsers: list[Any] = []

    def _prepare(self, connection: Any, commands: list[tuple[str, ...]]) -> None:
        key = tuple(commands)
        if key != self._key:
            self._packed = connection.pack_commands([("GET", streams.DASHBOARD_PASSWORD_HASH), *commands])
            parse = {"XREVRANGE": _stream_entries, "HGETALL": _pairs}
            self._parsers = [None, *(parse.get(command[0]) for command in commands)]
            self._key = key

    async def read(self, redis: Any, token: str, commands: list[tuple[str, ...]]) -> list[Any]:
        """Replies to GET of the session, GET of the owner's password hash, then ``commands``."""
        pool = redis.connection_pool
        connection = await pool.get_connection()
        try:
            self._prepare(connection, commands)
            await connection.send_packed_command(
                [*connection.pack_command("GET", auth.session_key(token)), *self._packed]
            )
            # One timer for the whole answer (the client's socket timeout), not one per reply:
            # ``math.inf`` is redis-py's "no timeout of its own" for a single read.
            async with asyncio.timeout(connection.socket_timeout):
                replies = [await connection.read_response(timeout=math.inf)]
                for parser in self._parsers:
                    reply = await connection.read_response(timeout=math.inf)
                    replies.append(reply if parser is None else parser(reply))
        except BaseException:
            # Replies may be left unread on it (an error reply, a cancelled request): never reused.
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)
        return replies


async def status_for_cookie(resources: Resources, scope: Scope, reads: PackedReads) -> bytes | None:
    """The status body when the request carries a valid session cookie (and no bearer token), else None."""
    if _header(scope, b"authorization") is not None:
        return None
    cookie = _header(scope, b"cookie")
    token = cookie_parser(cookie.decode("latin-1")).get(auth.COOKIE_NAME) if cookie else None
    if not token or len(token) > 100:
        return None
    commands = status_commands(resources.settings.symbols, resources.ledger.precisions)
    replies = await reads.read(resources.redis, token, commands)
    if not await _session_valid(resources, replies[0], replies[1]):
        return None
    return await status_bytes(resources, replies[_SESSION_READS:])


class StatusFastPath:
    """Answers ``GET /api/status`` with a valid session cookie itself; passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.reads = PackedReads()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        resources = getattr(scope["app"].state, "resources", None) if "app" in scope else None
        body = None
        if resources is not None:
            try:
                body = await status_for_cookie(resources, scope, self.reads)
            except Exception:  # the route answers it (a Redis error: 503)
                logger.debug("status fast path handed a request to the route", exc_info=True)
        if body is None:
            await self.app(scope, receive, send)
            return
        headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
