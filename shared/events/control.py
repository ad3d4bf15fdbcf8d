"""Commands and configuration changes addressed to the services."""

from __future__ import annotations

from typing import Any

from shared.events.envelope import Payload


class BotCommand(Payload):
    """start, stop, pause_entries, or close_position (with ``symbol``)."""

    TYPE = "bot_command"

    command: str
    symbol: str | None = None
    requested_by: str = ""


class ParametersChanged(Payload):
    """A new validated, versioned parameter set; ``previous`` is what it replaces."""

    TYPE = "parameters_changed"

    parameters_version: int
    parameters: dict[str, Any]
    previous: dict[str, Any]
    changed_by: str = ""


class LogRecord(Payload):
    """One log line of one service, for the dashboard's log panel."""

    TYPE = "log"

    service: str
    level: str
    logger: str
    message: str
