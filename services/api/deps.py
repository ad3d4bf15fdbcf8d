"""Request dependencies: the lifespan-owned resources, who is calling and may they, the caller's name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Cookie, Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api import access, auth
from services.api.backtests import BacktestRunner
from services.api.candle_store import CandleStore
from services.api.config import ApiSettings
from services.api.hub import Hub
from services.api.ledger_view import LedgerView
from services.api.live_state import LiveState
from services.api.study_runs import StudyRunner
from shared.account_cache import AccessCache
from shared.accounts import Caller, Role


@dataclass
class Resources:
    """What the lifespan opens and closes: settings, Redis, the ledger engine, the hub."""

    settings: ApiSettings
    redis: Redis
    engine: AsyncEngine
    hub: Hub
    backtests: BacktestRunner
    study_runs: StudyRunner
    ledger: LedgerView
    live: LiveState
    candles: CandleStore
    access: AccessCache


# The dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in a worker
# thread, which costs a thread hop per dependency per request and makes the event loop wait for
# the interpreter lock behind the pool's threads.
def _resources(request: Request) -> Resources:
    return request.app.state.resources


async def _settings(request: Request) -> ApiSettings:
    return _resources(request).settings


async def _redis(request: Request) -> Redis:
    return _resources(request).redis


async def _engine(request: Request) -> AsyncEngine:
    return _resources(request).engine


async def _hub(request: Request) -> Hub:
    return _resources(request).hub


async def _backtests(request: Request) -> BacktestRunner:
    return _resources(request).backtests


async def _study_runs(request: Request) -> StudyRunner:
    return _resources(request).study_runs


async def _ledger(request: Request) -> LedgerView:
    return _resources(request).ledger


async def _live(request: Request) -> LiveState:
    return _resources(request).live


async def _candles(request: Request) -> CandleStore:
    return _resources(request).candles


async def _access(request: Request) -> AccessCache:
    return _resources(request).access


async def _all(request: Request) -> Resources:
    return _resources(request)


# Everything in one dependency: a hot route resolves one instead of one per resource.
ResourcesDep = Annotated[Resources, Depends(_all)]
SettingsDep = Annotated[ApiSettings, Depends(_settings)]
RedisDep = Annotated[Redis, Depends(_redis)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
HubDep = Annotated[Hub, Depends(_hub)]
BacktestsDep = Annotated[BacktestRunner, Depends(_backtests)]
StudyRunsDep = Annotated[StudyRunner, Depends(_study_runs)]
LedgerDep = Annotated[LedgerView, Depends(_ledger)]
LiveDep = Annotated[LiveState, Depends(_live)]
CandlesDep = Annotated[CandleStore, Depends(_candles)]
AccessDep = Annotated[AccessCache, Depends(_access)]
SessionCookie = Annotated[str | None, Cookie(alias=auth.COOKIE_NAME, include_in_schema=False)]


def client_ip(request: Request) -> str:
    """The caller's TCP peer, or what a trusted proxy (``FORWARDED_ALLOW_IPS``) says it is."""
    return request.client.host if request.client else "unknown"


async def _client_ip(request: Request) -> str:
    return client_ip(request)


# Declare the cookie and bearer tokens as the api's security schemes in the OpenAPI document.
session_scheme = APIKeyCookie(name=auth.COOKIE_NAME, auto_error=False, description="set by POST /api/login")
token_scheme = HTTPBearer(auto_error=False, description="a personal API token (POST /api/tokens or make token)")


async def require_session(
    request: Request,
    resources: ResourcesDep,
    _cookie: Annotated[str | None, Depends(session_scheme)] = None,
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(token_scheme)] = None,
) -> Caller:
    """401 unless the request carries a live session cookie or a valid bearer token; 403 when
    the caller's role may not use this method (``access.authorise``)."""
    caller = await access.identify(request, resources.redis, resources.access)
    if caller is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "sign in first",
            {"WWW-Authenticate": "Bearer"} if access.bearer(request) is not None else None,
        )
    access.authorise(request, caller)
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(require_session)]


async def require_admin(caller: CallerDep) -> Caller:
    """403 unless the caller is the owner (tokens and the password are the owner's to manage)."""
    access.require_role(caller, Role.ADMIN)
    return caller


async def requested_by(request: Request, caller: CallerDep) -> str:
    """Who to record as the author of a change: the account (and token) and the caller's address."""
    return caller.author(client_ip(request))


ClientIp = Annotated[str, Depends(_client_ip)]
RequestedBy = Annotated[str, Depends(requested_by)]
Protected = [Depends(require_session)]
AdminOnly = [Depends(require_admin)]
