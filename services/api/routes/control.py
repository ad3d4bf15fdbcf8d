"""Commands: start, stop, pause entries, close a position. The executor carries them out."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel

from services.api.deps import Protected, RedisDep, RequestedBy, SettingsDep
from shared.control import bot_state, send_command

router = APIRouter(prefix="/api", tags=["control"], dependencies=Protected)


class CommandAccepted(BaseModel):
    command: str
    symbol: str | None = None
    state: str
    reason: str = ""


async def _command(redis: RedisDep, command: str, who: str, symbol: str | None = None) -> CommandAccepted:
    await send_command(redis, command, symbol, who)
    current = await bot_state(redis)
    return CommandAccepted(command=command, symbol=symbol, state=current["state"], reason=current["reason"])


@router.post("/bot/start", status_code=status.HTTP_202_ACCEPTED)
async def start(redis: RedisDep, who: RequestedBy) -> CommandAccepted:
    """Trade: open and close positions (also resumes after a pause)."""
    return await _command(redis, "start", who)


@router.post("/bot/stop", status_code=status.HTTP_202_ACCEPTED)
async def stop(redis: RedisDep, who: RequestedBy) -> CommandAccepted:
    """Stop trading; an open position keeps its stop-loss/take-profit watch."""
    return await _command(redis, "stop", who)


@router.post("/bot/pause-entries", status_code=status.HTTP_202_ACCEPTED)
async def pause_entries(redis: RedisDep, who: RequestedBy) -> CommandAccepted:
    """No new entries; exits still happen."""
    return await _command(redis, "pause_entries", who)


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
    """Sell the open position of ``symbol`` at market now."""
    symbol = symbol.upper()
    if symbol not in settings.symbols:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{symbol} is not traded here ({', '.join(settings.symbols)})")
    return await _command(redis, "close_position", who, symbol)
