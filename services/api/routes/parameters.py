"""The strategy/risk parameters: read, change (validated as a whole, versioned), audit trail."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from fastapi import APIRouter, Body, HTTPException, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from services.api.config import ApiSettings
from services.api.deps import Protected, RedisDep, RequestedBy, SettingsDep
from services.api.errors import FieldProblem, ValidationProblems, unprocessable
from services.api.parameter_schema import BODY_SCHEMA, check_bounds
from shared import streams
from shared.codec import DecodeError, decode, loads
from shared.control import current_set, new_command_id, parameters_record, switch_strategy, update_parameters
from shared.events import ParametersChanged
from shared.parameter_sets import SymbolSet, set_model, set_schema
from shared.parameters import LABELS, DangerousParameters, ParameterError, StrategyParameters
from shared.trading.strategies import DEFAULT_STRATEGY, Strategy
from shared.trading.vocabulary import PositionStatus

router = APIRouter(prefix="/api", tags=["parameters"], dependencies=Protected)
logger = logging.getLogger(__name__)


class FieldInfo(BaseModel):
    name: str
    label: str
    type: str
    description: str
    default: Any


class ParameterSet(BaseModel):
    symbol: str | None = None
    strategy: str = DEFAULT_STRATEGY
    version: int
    parameters: dict[str, Any]
    changed_at_ms: int | None = None
    changed_by: str | None = None
    fields: list[FieldInfo]
    command_id: str | None = None
    confirmed_dangers: list[str] = []


class DangerView(BaseModel):
    fields: list[str]
    labels: list[str]
    message: str


class ConfirmationNeeded(BaseModel):
    detail: str
    dangers: list[DangerView]


class Change(BaseModel):
    field: str
    old: Any
    new: Any


class HistoryEntry(BaseModel):
    id: str
    version: int
    changed_at_ms: int
    changed_by: str
    changes: list[Change]
    symbol: str | None = None
    strategy: str = DEFAULT_STRATEGY


class StrategySwitch(BaseModel):
    """The body of ``PUT /api/parameters/strategy``."""

    model_config = ConfigDict(extra="forbid")

    strategy: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    keep_exits: bool = Field(
        False,
        description="required while the symbol has an open position: it keeps its stop-loss and take-profit",
    )


SymbolQuery = Query(
    None,
    pattern=r"^[A-Za-z0-9]{5,20}$",
    description="the symbol whose set is meant; none: the shared set of the ema_cross_rsi symbols without one",
)


def start_set(settings: ApiSettings, symbol: str | None) -> StrategyParameters | SymbolSet:
    """A symbol's start set, or the shared set's start values; 404 for a symbol not traded here."""
    if symbol is None:
        return settings.initial_parameters()
    symbol = symbol.upper()
    sets = settings.initial_sets()
    if symbol not in sets:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{symbol} is not traded here ({', '.join(sets)})")
    return cast("SymbolSet", sets[symbol])


def confirmation_needed(e: DangerousParameters) -> JSONResponse:
    """The 409 of a valid but dangerous change: each danger with its fields' labels."""
    dangers = [
        DangerView(fields=list(d.fields), labels=[LABELS[name] for name in d.fields], message=d.message)
        for d in e.dangers
    ]
    body = ConfirmationNeeded(detail=f"dangerous setting, confirm to apply: {e}", dangers=dangers)
    return JSONResponse(status_code=409, content=body.model_dump())


def _fields(strategy: Strategy) -> list[FieldInfo]:
    kinds = {"Decimal": "decimal", "int": "integer", "float": "number", "bool": "boolean"}
    model = set_model(strategy)
    defaults = strategy.parameters() if model is StrategyParameters else model()
    properties = set_schema(strategy)["properties"]
    return [
        FieldInfo(
            name=name,
            label=properties[name].get("title", name),
            type=kinds.get(getattr(info.annotation, "__name__", ""), "string"),
            description=info.description or "",
            default=defaults.model_dump(mode="json")[name],
        )
        for name, info in model.model_fields.items()
    ]


def labels_of(strategy: Strategy) -> dict[str, str]:
    return {name: prop.get("title", name) for name, prop in set_schema(strategy)["properties"].items()}


@dataclass(frozen=True)
class AskedChange:
    """A parameter change asked for: the values, who asks, the set they apply to, its answer's id."""

    values: dict[str, Any]
    who: str
    start: StrategyParameters | SymbolSet
    command_id: str
    confirm_dangerous: bool


async def apply_change(
    redis: Redis, settings: ApiSettings, change: AskedChange, labels: dict[str, str]
) -> tuple[int, Any] | JSONResponse:
    """Check ``change`` against the history and the strategy's model and store it as the next
    version: ``(version, parameters)``, or the answer that refuses it (422 naming each field by
    its label, 409 when a dangerous setting needs confirming); nothing is stored then."""
    registry = settings.strategy_registry()
    try:
        await check_bounds(redis, change.values, change.start, settings.history(), registry)
        return await update_parameters(
            redis,
            change.values,
            change.who,
            change.start,
            history=settings.history(),
            confirm_dangerous=change.confirm_dangerous,
            command_id=change.command_id,
            registry=registry,
        )
    except ParameterError as e:
        return unprocessable([FieldProblem(field=f, label=labels.get(f, f), message=m) for f, m in e.problems])
    except DangerousParameters as e:
        return confirmation_needed(e)


async def _current(redis: RedisDep, settings: ApiSettings, symbol: str | None) -> ParameterSet:
    start = start_set(settings, symbol)
    registry = settings.strategy_registry()
    chosen = start if isinstance(start, SymbolSet) else SymbolSet("", DEFAULT_STRATEGY, 0, start)
    record = await parameters_record(redis, chosen.symbol, chosen.strategy)
    found = await current_set(redis, chosen, registry)
    strategy = registry.get(found.strategy)
    view = ParameterSet(
        symbol=found.symbol or None,
        strategy=found.strategy,
        version=found.version,
        parameters=found.parameters.model_dump(mode="json"),
        fields=_fields(strategy),
    )
    if record:
        view.changed_at_ms = record.get("changed_at_ms")
        view.changed_by = record.get("changed_by")
        view.command_id = record.get("command_id") or None
        view.confirmed_dangers = list(record.get("confirmed_dangers") or [])
    return view


@router.get("/parameters", responses={404: {"description": "symbol not traded by this bot"}})
async def get_parameters(redis: RedisDep, settings: SettingsDep, symbol: str | None = SymbolQuery) -> ParameterSet:
    """The set in force of ``symbol`` (version 0 = start-up values): its strategy, values and each
    field's type and meaning (the full schema is in ``GET /api/strategies``)."""
    return await _current(redis, settings, symbol)


@router.put(
    "/parameters",
    response_model=ParameterSet,
    responses={
        404: {"description": "symbol not traded by this bot"},
        409: {
            "model": ConfirmationNeeded,
            "description": "valid but dangerous: send again with confirm_dangerous=true",
        },
        422: {"model": ValidationProblems, "description": "one entry per invalid field"},
    },
)
async def put_parameters(
    redis: RedisDep,
    settings: SettingsDep,
    who: RequestedBy,
    values: dict[str, Any] = Body(
        ..., examples=[{"EMA_SHORT_PERIOD": 8, "STOP_LOSS_PERCENTAGE": "0.015"}], json_schema_extra=BODY_SCHEMA
    ),
    confirm_dangerous: bool = Query(
        False, description="apply a change that makes a dangerous setting (risk above 5 %, ...)"
    ),
    symbol: str | None = SymbolQuery,
) -> ParameterSet | JSONResponse:
    """Change some parameters of ``symbol``'s set, validated with its strategy's model (a field of
    another strategy is unknown). The merged set is validated as a whole (periods against the
    candles the strategy can have); nothing is applied on error. A valid change that makes a
    dangerous setting (risk per trade above 5 %, stop-loss under 0.2 %, the whole balance
    allocated with risk above 2 %) needs ``confirm_dangerous=true`` and is logged as such. The
    executor answers the change under the returned ``command_id``; only this symbol's version
    changes."""
    command_id = new_command_id()
    start = start_set(settings, symbol)
    registry = settings.strategy_registry()
    current = await current_set(redis, start, registry) if isinstance(start, SymbolSet) else None
    applied = await apply_change(
        redis,
        settings,
        AskedChange(values, who, start, command_id, confirm_dangerous),
        labels_of(registry.get(current.strategy if current else DEFAULT_STRATEGY)),
    )
    if isinstance(applied, JSONResponse):
        return applied
    version, _ = applied
    view = await _current(redis, settings, symbol)
    if view.command_id != command_id:
        view.command_id = None  # nothing changed: no new version, nothing to answer
    elif view.confirmed_dangers:
        logger.warning(
            "dangerous parameters confirmed by %s in version %d: %s", who, version, "; ".join(view.confirmed_dangers)
        )
    return view


@router.put(
    "/parameters/strategy",
    response_model=ParameterSet,
    responses={
        404: {"description": "symbol not traded by this bot"},
        409: {
            "model": ConfirmationNeeded,
            "description": "the symbol has an open position: confirm it keeps its exits",
        },
        422: {"model": ValidationProblems, "description": "unknown strategy, or its set does not fit the history"},
    },
)
async def switch(
    redis: RedisDep,
    settings: SettingsDep,
    who: RequestedBy,
    body: StrategySwitch,
    symbol: str = Query(pattern=r"^[A-Za-z0-9]{5,20}$", description="the symbol to switch"),
) -> ParameterSet | JSONResponse:
    """Run another strategy on ``symbol``: its default parameters, the set's risk and SL/TP fields
    kept, as the symbol's next version (other symbols unchanged). Refused with 409 while the symbol
    has an open position unless ``keep_exits`` is true: the position then keeps the stop-loss and
    take-profit it was opened with, and the new strategy's exit signals apply to it. The executor
    answers under the returned ``command_id``."""
    start = cast("SymbolSet", start_set(settings, symbol))  # a symbol is given: its start set
    registry = settings.strategy_registry()
    if body.strategy not in registry:
        known = ", ".join(registry.names())
        return unprocessable([FieldProblem(field="strategy", label="Strategy", message=f"unknown; known: {known}")])
    held = await _held(redis, start.symbol)
    if held and not body.keep_exits:
        detail = (
            f"{start.symbol} has an open position ({held}): switching keeps its stop-loss and take-profit; "
            "send keep_exits=true to switch anyway"
        )
        return JSONResponse(status_code=409, content=ConfirmationNeeded(detail=detail, dangers=[]).model_dump())
    command_id = new_command_id()
    try:
        await switch_strategy(
            redis, body.strategy, who, start, history=settings.history(), command_id=command_id, registry=registry
        )
    except ParameterError as e:
        labels = labels_of(registry.get(body.strategy))
        return unprocessable(
            [
                FieldProblem(field=field, label=labels.get(field, field), message=message)
                for field, message in e.problems
            ]
        )
    view = await _current(redis, settings, start.symbol)
    if view.command_id != command_id:
        view.command_id = None  # already that strategy: nothing to answer
    else:
        logger.info("%s switched %s to %s (version %d)", who, start.symbol, body.strategy, view.version)
    return view


async def _held(redis: RedisDep, symbol: str) -> str:
    """The status of ``symbol``'s active position (empty when flat), from the executor's snapshot."""
    snapshot = loads(await redis.hget(streams.POSITIONS, symbol))
    status_ = snapshot.get("status") if isinstance(snapshot, dict) else None
    return str(status_) if status_ in (PositionStatus.OPENING, PositionStatus.OPEN, PositionStatus.CLOSING) else ""


@router.get("/parameters/history")
async def parameters_history(
    redis: RedisDep, limit: int = Query(50, ge=1, le=500), symbol: str | None = SymbolQuery
) -> list[HistoryEntry]:
    """Accepted changes, newest first: when, who, which symbol's set (none: the shared set) and
    strategy, and each field's old and new value; ``symbol`` keeps that symbol's only."""
    wanted = symbol.upper() if symbol else None
    entries: list[HistoryEntry] = []
    scan = limit if wanted is None else streams.maxlen_for(streams.CONTROL_PARAMETERS)
    for entry_id, fields in await redis.xrevrange(streams.CONTROL_PARAMETERS, count=scan) or []:
        try:
            event = decode(fields)
        except DecodeError:
            continue
        payload = event.payload
        if not isinstance(payload, ParametersChanged) or (wanted is not None and payload.symbol != wanted):
            continue
        changes = [
            Change(field=name, old=payload.previous.get(name), new=value)
            for name, value in payload.parameters.items()
            if payload.previous.get(name) != value
        ]
        entries.append(
            HistoryEntry(
                id=entry_id,
                version=payload.parameters_version,
                changed_at_ms=event.ts_event_ms,
                changed_by=payload.changed_by,
                changes=changes,
                symbol=payload.symbol or None,
                strategy=payload.strategy or DEFAULT_STRATEGY,
            )
        )
        if len(entries) >= limit:
            break
    return entries
