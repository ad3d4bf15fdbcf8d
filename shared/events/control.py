"""Commands and configuration changes addressed to the services."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from shared.events.envelope import Payload


class Command(StrEnum):
    """What an operator can ask for; ``set_parameters`` is a ``ParametersChanged``."""

    START = "start"
    STOP = "stop"
    PAUSE_ENTRIES = "pause_entries"
    CLOSE_POSITION = "close_position"
    CLOSE_ALL = "close_all"
    RESET_BREAKER = "reset_breaker"
    SET_PARAMETERS = "set_parameters"


class Outcome(StrEnum):
    """The executor's answer to an operator command."""

    ACCEPTED = "accepted"  # taken on, the result follows (e.g. an exit order was sent)
    DONE = "done"  # carried out
    REFUSED = "refused"  # not carried out; ``reason`` says why


class BotCommand(Payload):
    """start, stop, pause_entries, close_all, or close_position (with ``symbol``).

    ``command_id`` names the operator's request in every answer to it; the per-symbol
    ``close_position`` entries of a ``close_all`` carry its id and ``origin="close_all"``.
    """

    TYPE = "bot_command"

    command: Command
    symbol: str | None = None
    requested_by: str = ""
    command_id: str = ""
    origin: str = ""


class CommandOutcome(Payload):
    """One answer of the executor to one operator command (published once per outcome)."""

    TYPE = "command_outcome"

    command_id: str
    command: str
    outcome: Outcome
    reason: str = ""
    symbol: str | None = None
    instance: str = ""


class ParametersChanged(Payload):
    """A new validated, versioned parameter set; ``previous`` is what it replaces."""

    TYPE = "parameters_changed"
    VERSION = 2
    SINCE: ClassVar[dict[str, int]] = {"symbol": 2, "strategy": 2}

    parameters_version: int
    parameters: dict[str, Any]
    previous: dict[str, Any]
    changed_by: str = ""
    command_id: str = ""
    # Version 2: each symbol's set is versioned on its own; a switch changes ``strategy``
    # (``previous`` is then the other strategy's set). Version 1 entries were the one global set.
    symbol: str = ""
    strategy: str = ""


class LogRecord(Payload):
    """One log line of one service, for the dashboard's log panel."""

    TYPE = "log"

    service: str
    level: str
    logger: str
    message: str
