"""What a request must pass before any route runs: same origin, body size, free capacity.

``Admission`` is one ASGI middleware, in this order:

1. **Same origin** for state-changing methods: a browser tells where a request comes from
   (``Sec-Fetch-Site``, ``Origin``); a page of another origin, even another port of the same
   host, is refused with 403. Clients that send neither (curl, scripts) are not browsers and
   carry no ambient cookie by accident, so they pass to the session check like before.
2. **Body limit**: ``Content-Length`` over the limit is refused with 413 before a byte is read;
   a body without a length is read up to the limit and refused as soon as it goes past it.
   This happens before the session check, so an anonymous caller cannot make the server parse
   (or hold) a large body.
3. **Capacity**: at most ``max_requests`` ordinary requests and ``max_streams`` event streams
   run at once; past that the answer is an immediate 503 with ``Retry-After`` instead of a
   queue that keeps growing after the load has stopped.
4. **Cancel on disconnect**: a request whose client went away is cancelled, so its slot, its
   Redis connection and its event subscription are freed at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

import anyio
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# "none": the user typed the address or used a bookmark; never a page's doing.
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
RETRY_AFTER_S = 1


class Refused(Exception):
    """A request turned away before the app saw it."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


async def send_refusal(send: Send, refused: Refused) -> None:
    """Answer ``{"detail": ...}`` with the refusal's status and headers."""
    body = orjson.dumps({"detail": refused.detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in refused.headers.items()]
    if refused.status == 413:
        # The rest of the body is not read: the connection cannot carry another request.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def origin_refusal(scope: Scope, trusted_origins: Iterable[str]) -> str | None:
    """Why a state-changing request is cross-origin, or None when it may proceed."""
    origin = _header(scope, b"origin")
    if origin is not None and origin.rstrip("/") in trusted_origins:
        return None
    site = _header(scope, b"sec-fetch-site")
    if site is not None:
        return (
            None
            if site.strip().lower() in ALLOWED_FETCH_SITES
            else f"cross-origin request refused (Sec-Fetch-Site: {site})"
        )
    if origin is None:
        return None
    host = (_header(scope, b"host") or "").strip().lower()
    parts = urlsplit(origin.strip().lower())
    if parts.scheme in ("http", "https") and parts.netloc and parts.netloc == host:
        return None
    return "cross-origin request refused (Origin does not match this server)"


class ClientGone(Exception):
    """The client disconnected while its body was being read."""


class Admission:
    """Same-origin check, body limit, capacity limits and cancel-on-disconnect (see module doc)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        stream_path: str,
        max_body_bytes: int,
        max_requests: int,
        max_streams: int,
        max_stream_s: float = 0,
        trusted_origins: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.stream_path = stream_path
        self.max_body_bytes = max_body_bytes
        self.max_requests = max_requests
        self.max_streams = max_streams
        self.max_stream_s = max_stream_s
        self.trusted_origins = frozenset(origin.rstrip("/") for origin in trusted_origins)
        self.requests = 0
        self.streams = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if scope["method"] in STATE_CHANGING:
                reason = origin_refusal(scope, self.trusted_origins)
                if reason is not None:
                    logger.warning("%s %s: %s", scope["method"], scope["path"], reason)
                    raise Refused(403, reason)
            body = await self._read_body(scope, receive)
        except Refused as refused:
            await send_refusal(send, refused)
            return
        except ClientGone:
            return
        is_stream = scope["path"] == self.stream_path
        if is_stream:
            if self.streams >= self.max_streams:
                await send_refusal(send, Refused(503, "too many live event clients; retry later", _retry_after()))
                return
            self.streams += 1
        else:
            if self.requests >= self.max_requests:
                await send_refusal(send, Refused(503, "the server is busy; retry later", _retry_after()))
                return
            self.requests += 1
        try:
            await self._run_until_disconnect(scope, receive, send, body, is_stream)
        finally:
            if is_stream:
                self.streams -= 1
            else:
                self.requests -= 1

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise Refused(400, "invalid Content-Length") from None
            if declared > self.max_body_bytes:
                raise Refused(413, f"request body larger than {self.max_body_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise Refused(413, f"request body larger than {self.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _run_until_disconnect(
        self, scope: Scope, receive: Receive, send: Send, body: bytes, is_stream: bool
    ) -> None:
        gone = asyncio.Event()
        replayed = False
        complete = False
        started = False

        async def app_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def tracking_send(message: Message) -> None:
            nonlocal complete, started
            await send(message)
            started = True
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                complete = True

        deadline = anyio.current_time() + self.max_stream_s if is_stream and self.max_stream_s else float("inf")
        with anyio.CancelScope(deadline=deadline) as cancel_scope:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone.set()
                if not complete:
                    if is_stream:
                        logger.info("a dashboard event client disconnected")
                    else:
                        logger.info("%s %s cancelled: the client went away", scope["method"], scope["path"])
                    cancel_scope.cancel()

            watcher = asyncio.create_task(watch(), name="disconnect-watch")
            try:
                await self.app(scope, app_receive, tracking_send)
            finally:
                watcher.cancel()
        if cancel_scope.cancelled_caught and not gone.is_set():
            if not started:
                # SSE_MAX_STREAM_S passed before the stream could even start (its backlog took
                # that long on a busy machine): an answer to retry, not the server's bare 500.
                await send_refusal(
                    send, Refused(503, "the event stream could not start in time; retry", _retry_after())
                )
            elif not complete:
                # A stream past SSE_MAX_STREAM_S ends cleanly; the browser reconnects and resumes.
                with anyio.move_on_after(0.2):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _retry_after() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_S)}
