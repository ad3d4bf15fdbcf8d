"""The strategy/risk parameters: read, change (validated as a whole, versioned), audit trail."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.api.deps import Protected, RedisDep, RequestedBy, SettingsDep
from shared import streams
from shared.codec import DecodeError, decode
from shared.control import parameters_record, update_parameters
from shared.parameters import ParameterError, StrategyParameters

router = APIRouter(prefix="/api", tags=["parameters"], dependencies=Protected)


class FieldInfo(BaseModel):
    name: str
    type: str
    description: str
    default: Any


class ParameterSet(BaseModel):
    version: int
    parameters: dict[str, Any]
    changed_at_ms: int | None = None
    changed_by: str | None = None
    fields: list[FieldInfo]


class FieldProblem(BaseModel):
    field: str
    message: str


class ParameterProblems(BaseModel):
    detail: list[FieldProblem]


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
            type=kinds.get(getattr(info.annotation, "__name__", ""), "string"),
            description=info.description or "",
            default=defaults[name],
        )
        for name, info in StrategyParameters.model_fields.items()
    ]


async def _current(redis: RedisDep, settings: SettingsDep) -> ParameterSet:
    record = await parameters_record(redis)
    if not record:
        return ParameterSet(version=0, parameters=settings.initial_parameters().model_dump(mode="json"), fields=_fields())
    return ParameterSet(
        version=int(record["version"]),
        parameters=StrategyParameters.model_validate(record["parameters"]).model_dump(mode="json"),
        changed_at_ms=record.get("changed_at_ms"),
        changed_by=record.get("changed_by"),
        fields=_fields(),
    )


@router.get("/parameters")
async def get_parameters(redis: RedisDep, settings: SettingsDep) -> ParameterSet:
    """The set in force (version 0 = start-up values) with each field's type and meaning."""
    return await _current(redis, settings)


@router.put("/parameters", responses={422: {"model": ParameterProblems, "description": "one entry per invalid field"}})
async def put_parameters(
    redis: RedisDep,
    settings: SettingsDep,
    who: RequestedBy,
    values: dict[str, Any] = Body(..., examples=[{"EMA_SHORT_PERIOD": 8, "STOP_LOSS_PERCENTAGE": "0.015"}]),
) -> ParameterSet:
    """Change some parameters. The merged set is validated as a whole; nothing is applied on error."""
    try:
        await update_parameters(redis, values, who, settings.initial_parameters())
    except ParameterError as e:
        problems = [FieldProblem(field=field, message=message) for field, message in e.problems]
        return JSONResponse(status_code=422, content=ParameterProblems(detail=problems).model_dump())
    return await _current(redis, settings)


@router.get("/parameters/history")
async def parameters_history(redis: RedisDep, limit: int = Query(50, ge=1, le=500)) -> list[HistoryEntry]:
    """Accepted changes, newest first: when, who, and each field's old and new value."""
    entries = []
    for entry_id, fields in await redis.xrevrange(streams.CONTROL_PARAMETERS, count=limit):
        try:
            event = decode(fields)
        except DecodeError:
            continue
        payload = event.payload
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
