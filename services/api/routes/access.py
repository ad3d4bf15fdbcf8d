"""The owner's view of who else may use the api: accounts (managed by ``make user``) and
personal API tokens (created and revoked here or by ``make token``).

A token's text is in the answer that creates it and nowhere else: only its SHA-256 is kept.
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.api.deps import AdminOnly, EngineDep, RequestedBy
from services.api.errors import FieldProblem, unprocessable
from shared import accounts
from shared.accounts import OWNER, AccessError, AccountView, TokenView

router = APIRouter(prefix="/api", tags=["access"], dependencies=AdminOnly)
logger = logging.getLogger(__name__)


class AccountInfo(BaseModel):
    name: str
    role: str
    created_at_ms: int
    updated_at_ms: int


class TokenInfo(BaseModel):
    id: int
    name: str
    account: str
    role: str
    created_at_ms: int
    revoked_at_ms: int | None = None


class NewToken(BaseModel):
    name: str = Field(
        pattern=f"^{accounts.TOKEN_NAME_RULE.pattern}$", description="what the token is for, e.g. 'grafana'"
    )
    role: Literal["viewer", "operator"] = Field("viewer", description="never more than its account's role")
    account: str = Field(
        OWNER,
        pattern=f"^({OWNER}|{accounts.NAME_RULE.pattern})$",
        description="whose token it is: 'owner' or an account's name",
    )


class CreatedToken(BaseModel):
    token: TokenInfo
    secret: str = Field(description="send as 'Authorization: Bearer <secret>'; shown this once, never again")


def _account(view: AccountView) -> AccountInfo:
    return AccountInfo(
        name=view.name, role=view.role.value, created_at_ms=view.created_at_ms, updated_at_ms=view.updated_at_ms
    )


def _token(view: TokenView) -> TokenInfo:
    return TokenInfo(
        id=view.id,
        name=view.name,
        account=view.account,
        role=view.role.value,
        created_at_ms=view.created_at_ms,
        revoked_at_ms=view.revoked_at_ms,
    )


def _problem(e: AccessError) -> JSONResponse:
    """An unknown account is 404, a role above the account's 409, anything else 422, each naming the field."""
    field, _, message = str(e).partition(": ")
    if field in ("account", "role"):
        code = status.HTTP_404_NOT_FOUND if field == "account" else status.HTTP_409_CONFLICT
        return JSONResponse(status_code=code, content={"detail": f"{field}: {message}"})
    return unprocessable([FieldProblem(field=field, label=field, message=message)])


@router.get("/accounts")
async def list_accounts(engine: EngineDep) -> list[AccountInfo]:
    """Accounts besides the owner, with their roles (``make user`` adds, changes and removes them)."""
    return [_account(view) for view in await accounts.list_accounts(engine)]


@router.get("/tokens")
async def list_tokens(engine: EngineDep) -> list[TokenInfo]:
    """Every personal API token, revoked ones too, oldest first (never the token itself)."""
    return [_token(view) for view in await accounts.list_tokens(engine)]


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedToken,
    responses={
        404: {"description": "no such account"},
        409: {"description": "a role above the account's"},
        422: {"description": "a field is invalid"},
    },
)
async def create_token(body: NewToken, engine: EngineDep, who: RequestedBy) -> CreatedToken | JSONResponse:
    """A new token for scripts; its text is in this answer only."""
    try:
        view, secret = await accounts.create_token(engine, body.account.strip().lower() or OWNER, body.name, body.role)
    except AccessError as e:
        return _problem(e)
    logger.warning("api token %d %r (%s) created for %s by %s", view.id, view.name, view.role.value, view.account, who)
    return CreatedToken(token=_token(view), secret=secret)


@router.delete("/tokens/{token_id}", responses={404: {"description": "no such token"}})
async def revoke_token(engine: EngineDep, who: RequestedBy, token_id: int = Path(ge=1, le=2**62)) -> TokenInfo:
    """Revoke a token: its next request is refused."""
    try:
        view = await accounts.revoke_token(engine, token_id)
    except AccessError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    logger.warning("api token %d %r of %s revoked by %s", view.id, view.name, view.account, who)
    return _token(view)
