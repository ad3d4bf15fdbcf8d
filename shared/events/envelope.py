"""The envelope every message on the bus carries, and the payload base class.

An event is immutable once created. ``ts_event_ms`` is when the thing happened (exchange time
when known), ``ts_init_ms`` when this process created the event; their difference is latency.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

PAYLOAD_TYPES: dict[str, type[Payload]] = {}


class Payload(BaseModel):
    """Base of every event payload; subclasses set ``TYPE`` (snake_case) and ``VERSION``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    # Fields added by a later VERSION: an event of an older version is encoded without them, so
    # its entry reads exactly as it was written (and older readers of the stream keep working).
    SINCE: ClassVar[dict[str, int]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.TYPE:
            PAYLOAD_TYPES[cls.TYPE] = cls


class Envelope(BaseModel):
    """One event: identity, provenance, two timestamps (epoch ms) and a typed payload."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    type: str
    version: int = 1
    source: str
    ts_event_ms: int
    ts_init_ms: int = Field(default_factory=lambda: now_ms())
    payload: Payload


def now_ms() -> int:
    """Wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def make_event(
    payload: Payload,
    source: str,
    ts_event_ms: int | None = None,
    event_id: str | None = None,
) -> Envelope:
    """Wrap ``payload`` in an envelope; ``event_id`` is given when it must be deterministic."""
    init = now_ms()
    fields: dict[str, Any] = {
        "type": payload.TYPE,
        "version": payload.VERSION,
        "source": source,
        "ts_event_ms": init if ts_event_ms is None else ts_event_ms,
        "ts_init_ms": init,
        "payload": payload,
    }
    if event_id is not None:
        fields["event_id"] = event_id
    return Envelope(**fields)
