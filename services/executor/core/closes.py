"""An operator's close of one symbol: sold at market in any bot state, and always answered."""

from __future__ import annotations

from services.executor.core.effects import Answer, Effect, RequestExit
from services.executor.core.state import CloseRequest
from shared.events import Command, Outcome
from shared.trading.protection import ExitReason
from shared.trading.vocabulary import PositionStatus


def on_close(position_status: str | None, request: CloseRequest) -> tuple[CloseRequest | None, tuple[Effect, ...]]:
    """The close to keep waiting (None when it is answered for good at once) and the effects."""
    if position_status is None:
        # Part of a close-all, a flat symbol is simply done; asked for alone, it is refused.
        outcome = Outcome.DONE if request.command == Command.CLOSE_ALL else Outcome.REFUSED
        return None, (Answer(request.command_id, request.command, outcome, "no position"),)
    if position_status == PositionStatus.OPENING:
        # The entry is in flight: the position is sold as soon as the entry settles.
        why = "the entry order is still being filled; the position is sold as soon as it is open"
        return _accepted(request, why)
    if position_status == PositionStatus.CLOSING:
        return _accepted(request, "an exit order is already being executed")
    return request, (RequestExit(ExitReason.MANUAL, None, request.source_event_id, explicit=True, answer_refusal=True),)


def _accepted(request: CloseRequest, why: str) -> tuple[CloseRequest, tuple[Effect, ...]]:
    accepted = CloseRequest(request.command_id, request.command, request.source_event_id, accepted=True)
    return accepted, (Answer(request.command_id, request.command, Outcome.ACCEPTED, why),)
