"""Sign-in and sign-out. Wrong passwords slow the caller down (per client address)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field

from services.api import auth
from services.api.deps import ClientIp, RedisDep, SessionCookie, SettingsDep

router = APIRouter(prefix="/api", tags=["session"])
logger = logging.getLogger(__name__)


class Login(BaseModel):
    password: str = Field(min_length=1, max_length=512)


class SessionState(BaseModel):
    authenticated: bool


@router.post(
    "/login",
    responses={401: {"description": "wrong password"}, 429: {"description": "too many failures; see Retry-After"}},
)
async def login(body: Login, response: Response, redis: RedisDep, settings: SettingsDep, ip: ClientIp) -> SessionState:
    """Open a session (HttpOnly, SameSite=Strict cookie) when the password is right."""
    wait = await auth.blocked_for(redis, ip)
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "too many failed sign-ins; wait and retry", {"Retry-After": str(wait)}
        )
    if not await auth.check_password(redis, settings, body.password):
        delay = await auth.record_failure(redis, settings, ip)
        wait = f"; next attempt allowed in {delay} s" if delay else ""
        logger.warning("dashboard sign-in refused from %s (wrong password%s)", ip, wait)
        headers = {"Retry-After": str(delay)} if delay else None
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong password", headers)
    await auth.clear_failures(redis, ip)
    logger.info("dashboard sign-in from %s", ip)
    token = await auth.create_session(redis, settings, ip)
    response.set_cookie(
        auth.COOKIE_NAME,
        token,
        max_age=settings.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=settings.session_cookie_secure,
        path="/",
    )
    return SessionState(authenticated=True)


@router.post("/logout")
async def logout(response: Response, redis: RedisDep, settings: SettingsDep, token: SessionCookie = None) -> SessionState:
    """End the session and clear its cookie (also fine without a session)."""
    await auth.delete_session(redis, token)
    response.delete_cookie(
        auth.COOKIE_NAME, httponly=True, samesite="strict", secure=settings.session_cookie_secure, path="/"
    )
    return SessionState(authenticated=False)


@router.get("/session")
async def session_state(redis: RedisDep, token: SessionCookie = None) -> SessionState:
    """Whether the caller is signed in (the dashboard's first request)."""
    return SessionState(authenticated=await auth.session_valid(redis, token))
