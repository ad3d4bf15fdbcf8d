"""The strategy/risk parameters: read, change (validated as a whole, versioned), audit trail."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.api.deps import Protected, RedisDep, RequestedBy, SettingsDep
from services.api.errors import FieldProblem, ValidationProblems, unprocessable
from services.api.parameter_schema import BODY_SCHEMA, check_bounds
from shared import streams
from shared.codec import DecodeError, decode
from shared.control import new_command_id, parameters_record, update_parameters
from shared.events import ParametersChanged
from shared.parameters import LABELS, DangerousParameters, ParameterError, StrategyParameters

router = APIRouter(prefix="/api", tags=["parameters"], dependencies=Protected)
logger = logging.getLogger(__name__)


class FieldInfo(BaseModel):
    name: str
    label: str
    type: str
    description: str
    default: Any


class ParameterSet(BaseModel):
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


def _fields() -> list[FieldInfo]:
    kinds = {"Decimal": "decimal", "int": "integer", "float": "number", "bool": "boolean"}
    defaults = StrategyParameters().model_dump(mode="json")
    return [
        FieldInfo(
            name=name,
            label=LABELS.get(name, name),
            type=kinds.get(getattr(info.annotation, "__name__", ""), "string"),
            description=info.description or "",
            default=defaults[name],
        )
        for name, info in StrategyParameters.model_fields.items()
    ]


async def _current(redis: RedisDep, settings: SettingsDep) -> ParameterSet:
    record = await parameters_record(redis)
    if not record:
        return ParameterSet(
            version=0, parameters=settings.initial_parameters().model_dump(mode="json"), fields=_fields()
        )
    return ParameterSet(
        version=int(record["version"]),
        parameters=StrategyParameters.model_validate(record["parameters"]).model_dump(mode="json"),
        changed_at_ms=record.get("changed_at_ms"),
        changed_by=record.get("changed_by"),
        fields=_fields(),
        command_id=record.get("command_id") or None,
        confirmed_dangers=list(record.get("confirmed_dangers") or []),
    )


@router.get("/parameters")
async def get_parameters(redis: RedisDep, settings: SettingsDep) -> ParameterSet:
    """The set in force (version 0 = start-up values) with each field's type and meaning."""
    return await _current(redis, settings)


@router.put(
    "/parameters",
    response_model=ParameterSet,
    responses={
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
) -> ParameterSet | JSONResponse:
    """Change some parameters. The merged set is validated as a whole (periods against the
    candles the strategy can have); nothing is applied on error. A valid change that makes a
    dangerous setting (risk per trade above 5 %, stop-loss under 0.2 %, the whole balance
    allocated with risk above 2 %) needs ``confirm_dangerous=true`` and is logged as such. The
    executor answers the change under the returned ``command_id``."""
    command_id = new_command_id()
    try:
        await check_bounds(redis, values, settings.initial_parameters(), settings.history())
        version, _ = await update_parameters(
            redis,
            values,
            who,
            settings.initial_parameters(),
            history=settings.history(),
            confirm_dangerous=confirm_dangerous,
            command_id=command_id,
        )
    except ParameterError as e:
        return unprocessable(
            [
                FieldProblem(field=field, label=LABELS.get(field, field), message=message)
                for field, message in e.problems
            ]
        )
    except DangerousParameters as e:
        dangers = [
            DangerView(fields=list(d.fields), labels=[LABELS[name] for name in d.fields], message=d.message)
            for d in e.dangers
        ]
        body = ConfirmationNeeded(detail=f"dangerous setting, confirm to apply: {e}", dangers=dangers)
        return JSONResponse(status_code=409, content=body.model_dump())
    current = await _current(redis, settings)
    if current.command_id != command_id:
        current.command_id = None  # nothing changed: no new version, nothing to answer
    elif current.confirmed_dangers:
        logger.warning(
            "dangerous parameters confirmed by %s in version %d: %s", who, version, "; ".join(current.confirmed_dangers)
        )
    return current


@router.get("/parameters/history")
async def parameters_history(redis: RedisDep, limit: int = Query(50, ge=1, le=500)) -> list[HistoryEntry]:
    """Accepted changes, newest first: when, who, and each field's old and new value."""
    entries = []
    for entry_id, fields in await redis.xrevrange(streams.CONTROL_PARAMETERS, count=limit) or []:
        try:
            event = decode(fields)
        except DecodeError:
            continue
        payload = event.payload
        if not isinstance(payload, ParametersChanged):
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
            )
        )
    return entries
