"""Sign-in, sign-out and password change; guessing is slowed down by ``services.api.throttle``."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, HTTPException, Response, status
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from services.api import auth, throttle
from services.api.config import ApiSettings
from services.api.deps import ClientIp, Protected, RedisDep, SessionCookie, SettingsDep

router = APIRouter(prefix="/api", tags=["session"])
logger = logging.getLogger(__name__)
DeviceCookie = Annotated[str | None, Cookie(alias=throttle.DEVICE_COOKIE, include_in_schema=False)]
THROTTLED: dict[int | str, dict[str, Any]] = {429: {"description": "too many failed attempts; see Retry-After"}}


class Login(BaseModel):
    password: str = Field(min_length=1, max_length=512)


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=512)
    new_password: str = Field(min_length=8, max_length=512)


class SessionState(BaseModel):
    authenticated: bool


async def _guarded_check(
    redis: Redis, settings: ApiSettings, password: str, ip: str, device: str | None, action: str = "sign-in"
) -> str:
    """Check ``password`` within the throttle budgets; returns the client name on success.

    Raises 429 while this client (or, for an untrusted client, everyone untrusted) must wait,
    and ``_Refused`` (with the delay now imposed) after recording a wrong password.
    """
    client = await throttle.trusted_device(redis, device) or ip
    wait = await throttle.blocked_for(redis, client)
    if not wait and not client.startswith("device:"):
        wait = await throttle.take_global_slot(redis, settings)
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "too many failed sign-ins; wait and retry", {"Retry-After": str(wait)}
        )
    if await auth.check_password(redis, settings, password):
        await throttle.clear_failures(redis, client)
        await throttle.reset_global(redis)
        return client
    delay = await throttle.record_failure(redis, settings, client)
    wait_text = f"; next attempt allowed in {delay} s" if delay else ""
    logger.warning("dashboard %s refused from %s (wrong password%s)", action, ip, wait_text)
    raise _Refused(delay)


class _Refused(Exception):
    def __init__(self, delay: int) -> None:
        self.headers = {"Retry-After": str(delay)} if delay else None


async def _open_session(response: Response, redis: Redis, settings: ApiSettings, ip: str, device: str | None) -> None:
    token = await auth.create_session(redis, settings, ip)
    secure = settings.session_cookie_secure
    response.set_cookie(
        auth.COOKIE_NAME, token, max_age=settings.session_ttl_s, path="/", httponly=True, samesite="strict", secure=secure
    )
    device_token = await throttle.remember_device(redis, settings, device)
    response.set_cookie(
        throttle.DEVICE_COOKIE, device_token, max_age=settings.login_device_ttl_s, path="/api",
        httponly=True, samesite="strict", secure=secure,
    )


@router.post("/login", responses={401: {"description": "wrong password"}, **THROTTLED})
async def login(
    body: Login, response: Response, redis: RedisDep, settings: SettingsDep, ip: ClientIp, device: DeviceCookie = None
) -> SessionState:
    """Open a session (HttpOnly, SameSite=Strict cookie) when the password is right."""
    try:
        await _guarded_check(redis, settings, body.password, ip, device)
    except _Refused as refused:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong password", refused.headers) from None
    logger.info("dashboard sign-in from %s", ip)
    await _open_session(response, redis, settings, ip, device)
    return SessionState(authenticated=True)


@router.post(
    "/password",
    dependencies=Protected,
    responses={
        403: {"description": "the current password is wrong"},
        409: {"description": "the password is set by DASHBOARD_PASSWORD"},
        **THROTTLED,
    },
)
async def change_password(
    body: PasswordChange,
    response: Response,
    redis: RedisDep,
    settings: SettingsDep,
    ip: ClientIp,
    device: DeviceCookie = None,
) -> SessionState:
    """Change the sign-in password; every other session ends, this one is renewed."""
    if settings.dashboard_password is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "the password is set by DASHBOARD_PASSWORD: change it there and restart")
    try:
        await _guarded_check(redis, settings, body.current_password, ip, device, "password change")
    except _Refused as refused:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the current password is wrong", refused.headers) from None
    await auth.change_password(redis, body.new_password)
    logger.warning("dashboard password changed from %s; every other session ended", ip)
    await _open_session(response, redis, settings, ip, device)
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
