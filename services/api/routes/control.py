"""Commands: start, stop, pause entries, close a position, close all and stop, reset the breaker.

The executor carries them out and answers each under its ``command_id`` (``command`` events on
``/api/events``: accepted, done or refused with the reason).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel

from services.api.deps import Protected, RedisDep, RequestedBy, SettingsDep
from shared.control import bot_state, send_command

router = APIRouter(prefix="/api", tags=["control"], dependencies=Protected)


class CommandAccepted(BaseModel):
    command: str
    command_id: str
    symbol: str | None = None
    symbols: list[str] = []
    state: str
    reason: str = ""


async def _command(
    redis: RedisDep, command: str, who: str, symbol: str | None = None, symbols: list[str] | None = None
) -> CommandAccepted:
    command_id = await send_command(redis, command, symbol, who, symbols=symbols or ())
    current = await bot_state(redis)
    return CommandAccepted(
        command=command,
        command_id=command_id,
        symbol=symbol,
        symbols=symbols or [],
        state=current["state"],
        reason=current["reason"],
    )


@router.post("/bot/start", status_code=status.HTTP_202_ACCEPTED)
async def start(redis: RedisDep, who: RequestedBy) -> CommandAccepted:
    """running: entries and exits (also resumes after a pause or a stop)."""
    return await _command(redis, "start", who)


@router.post("/bot/stop", status_code=status.HTTP_202_ACCEPTED)
async def stop(redis: RedisDep, who: RequestedBy) -> CommandAccepted:
    """stopped: no new entries and no strategy exits, but stop-loss, take-profit and manual
    close keep working while a position is open."""
    return await _command(redis, "stop", who)


@router.post("/bot/pause-entries", status_code=status.HTTP_202_ACCEPTED)
async def pause_entries(redis: RedisDep, who: RequestedBy) -> CommandAccepted:
    """entries paused: no new entries; strategy exits, stop-loss, take-profit and manual close work."""
    return await _command(redis, "pause_entries", who)


@router.post("/bot/close-all", status_code=status.HTTP_202_ACCEPTED)
async def close_all(redis: RedisDep, settings: SettingsDep, who: RequestedBy) -> CommandAccepted:
    """Stop at once (nothing new opens) and sell every open position at market; each symbol's
    exit is answered on its own under this command's id."""
    return await _command(redis, "close_all", who, symbols=list(settings.symbols))


@router.post("/breaker/reset", status_code=status.HTTP_202_ACCEPTED)
async def reset_breaker(redis: RedisDep, who: RequestedBy) -> CommandAccepted:
    """Clear the account circuit breaker and measure its limits afresh from now; answered by the
    executor, which records who reset it."""
    return await _command(redis, "reset_breaker", who)


@router.post(
    "/positions/{symbol}/close",
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"description": "symbol not traded by this bot"}},
)
async def close_position(
    redis: RedisDep,
    settings: SettingsDep,
    who: RequestedBy,
    symbol: str = Path(pattern=r"^[A-Za-z0-9]{5,20}$"),
) -> CommandAccepted:
    """Sell the open position of ``symbol`` at market now (in every bot state)."""
    symbol = symbol.upper()
    if symbol not in settings.symbols:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{symbol} is not traded here ({', '.join(settings.symbols)})")
    return await _command(redis, "close_position", who, symbol)
