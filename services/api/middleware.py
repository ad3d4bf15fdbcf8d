"""ASGI middleware: security headers, and closing the event stream of a dropped client.

A client that stops reading blocks its response inside the server's write; nothing in the
route can end it then. ``DroppableStream`` runs the event route inside a cancel scope that the
hub cancels when it drops the client, which ends the response and frees the connection.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import MutableMapping
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DROP_KEY = "dashboard.drop_stream"
_dropped_here: contextvars.ContextVar[bool] = contextvars.ContextVar("dropped_event_stream", default=False)

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class SecurityHeaders:
    """Adds no-sniff, no-referrer, no-framing everywhere, and a strict CSP outside the API docs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = list(_SECURITY_HEADERS)
        if not scope["path"].startswith("/api/docs"):
            headers.append((b"content-security-policy", _CSP))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class DroppableStream:
    """Runs requests to ``path`` in a cancel scope exposed as ``scope[DROP_KEY]``."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        completed = False

        async def tracking_send(message: Message) -> None:
            nonlocal completed
            if message["type"] == "http.response.start":
                # An event stream is never reused for another request: closing the connection
                # with the response is what frees a dropped reader's socket.
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                completed = True

        with anyio.CancelScope() as cancel_scope:
            scope[DROP_KEY] = cancel_scope.cancel
            await self.app(scope, receive, tracking_send)
        if cancel_scope.cancelled_caught and not completed:
            _dropped_here.set(True)
            # A reader that stopped reading may never drain this; the server then closes.
            with anyio.move_on_after(0.2):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


class DroppedStreamFilter(logging.Filter):
    """Silences the server's 'response not completed' error for a deliberately dropped client."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_dropped_here.get() and "without completing response" in str(record.msg))


def install_log_filter(logger_name: str = "uvicorn.error") -> None:
    """Attach ``DroppedStreamFilter`` once to the server's error logger."""
    target = logging.getLogger(logger_name)
    if not any(isinstance(existing, DroppedStreamFilter) for existing in target.filters):
        target.addFilter(DroppedStreamFilter())


def drop_callback(scope: MutableMapping[str, Any]) -> Any:
    """The function that ends this request's stream, if it runs under ``DroppableStream``."""
    return scope.get(DROP_KEY)
