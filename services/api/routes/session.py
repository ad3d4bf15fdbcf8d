"""Sign-in (the owner or an account), sign-out, the owner's password change; guessing is slowed
down by ``services.api.throttle`` for every account alike."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, HTTPException, Response, status
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api import access, auth, throttle
from services.api.config import ApiSettings
from services.api.deps import AccessDep, AdminOnly, ClientIp, EngineDep, RedisDep, SessionCookie, SettingsDep
from shared import accounts
from shared.accounts import OWNER

router = APIRouter(prefix="/api", tags=["session"])
logger = logging.getLogger(__name__)
DeviceCookie = Annotated[str | None, Cookie(alias=throttle.DEVICE_COOKIE, include_in_schema=False)]
THROTTLED: dict[int | str, dict[str, Any]] = {429: {"description": "too many failed attempts; see Retry-After"}}


class Login(BaseModel):
    password: str = Field(min_length=1, max_length=512)
    account: str = Field("", max_length=64, description="empty (or 'owner') for the owner's DASHBOARD_PASSWORD")


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=512)
    new_password: str = Field(min_length=8, max_length=512)


class SessionState(BaseModel):
    authenticated: bool
    account: str | None = None
    role: str | None = None


async def _guarded_check(
    redis: Redis,
    settings: ApiSettings,
    password: str,
    ip: str,
    device: str | None,
    action: str = "sign-in",
    engine: AsyncEngine | None = None,
    account: str = "",
) -> str | None:
    """Check ``password`` (the owner's, or ``account``'s) within the throttle budgets; returns
    the account's password hash for an account, None for the owner.

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
    if account and engine is not None:
        found = await accounts.check_account_password(engine, account, password)
        ok, stored = found is not None, found.password_hash if found is not None else None
    else:
        ok, stored = await auth.check_password(redis, settings, password), None
    if ok:
        await throttle.clear_failures(redis, client)
        await throttle.reset_global(redis)
        return stored
    delay = await throttle.record_failure(redis, settings, client)
    wait_text = f"; next attempt allowed in {delay} s" if delay else ""
    logger.warning("dashboard %s refused from %s (wrong password%s)", action, ip, wait_text)
    raise _Refused(delay)


class _Refused(Exception):
    def __init__(self, delay: int) -> None:
        self.headers = {"Retry-After": str(delay)} if delay else None


async def _open_session(
    response: Response,
    redis: Redis,
    settings: ApiSettings,
    ip: str,
    device: str | None,
    account: str = "",
    password_hash: str | None = None,
) -> str:
    token = await auth.create_session(redis, settings, ip, account, password_hash)
    secure = settings.session_cookie_secure
    response.set_cookie(
        auth.COOKIE_NAME,
        token,
        max_age=settings.session_ttl_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    device_token = await throttle.remember_device(redis, settings, device)
    response.set_cookie(
        throttle.DEVICE_COOKIE,
        device_token,
        max_age=settings.login_device_ttl_s,
        path="/api",
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    return token


@router.post("/login", responses={401: {"description": "wrong account or password"}, **THROTTLED})
async def login(
    body: Login,
    response: Response,
    redis: RedisDep,
    engine: EngineDep,
    cache: AccessDep,
    settings: SettingsDep,
    ip: ClientIp,
    device: DeviceCookie = None,
) -> SessionState:
    """Open a session (HttpOnly, SameSite=Strict cookie) when the password is right: the
    owner's without ``account``, else that account's (``make user``)."""
    account = "" if body.account.strip().lower() in ("", OWNER) else body.account.strip().lower()
    try:
        stored = await _guarded_check(redis, settings, body.password, ip, device, engine=engine, account=account)
    except _Refused as refused:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong account or password", refused.headers) from None
    logger.info("dashboard sign-in account=%s from %s", account or OWNER, ip)
    token = await _open_session(response, redis, settings, ip, device, account, stored)
    caller = await access.session_caller(redis, cache, token)
    return SessionState(
        authenticated=True, account=account or OWNER, role=caller.role.value if caller is not None else None
    )


@router.post(
    "/password",
    dependencies=AdminOnly,
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
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the password is set by DASHBOARD_PASSWORD: change it there and restart"
        )
    try:
        await _guarded_check(redis, settings, body.current_password, ip, device, "password change")
    except _Refused as refused:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the current password is wrong", refused.headers) from None
    await auth.change_password(redis, body.new_password)
    logger.warning("dashboard password changed from %s; every other session ended", ip)
    await _open_session(response, redis, settings, ip, device)
    return SessionState(authenticated=True)


@router.post("/logout")
async def logout(
    response: Response, redis: RedisDep, settings: SettingsDep, token: SessionCookie = None
) -> SessionState:
    """End the session and clear its cookie (also fine without a session)."""
    await auth.delete_session(redis, token)
    response.delete_cookie(
        auth.COOKIE_NAME, httponly=True, samesite="strict", secure=settings.session_cookie_secure, path="/"
    )
    return SessionState(authenticated=False)


@router.get("/session")
async def session_state(redis: RedisDep, cache: AccessDep, token: SessionCookie = None) -> SessionState:
    """Whether the caller is signed in, as which account and role (the dashboard's first request)."""
    caller = await access.session_caller(redis, cache, token)
    if caller is None:
        return SessionState(authenticated=False)
    return SessionState(authenticated=True, account=caller.account, role=caller.role.value)
