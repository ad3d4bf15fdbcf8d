"""One shape for every refusal the api gives, and no input echoed back.

FastAPI's own 422 lists each error with the value that was sent (``input``), so a password
typed into the wrong field came back in the answer. Here every 422, from the request schema
or from the parameter rules, is ``{"detail": [{"field": ..., "message": ...}]}`` and never
carries what was sent. A Redis outage is a 503 with ``Retry-After``, not a 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.parameters import LABELS

logger = logging.getLogger(__name__)
# Where a parameter came from is not part of its name ("body", "query", "header", "path").
_LOCATIONS = {"body", "query", "header", "path", "cookie"}


class FieldProblem(BaseModel):
    field: str
    label: str
    message: str


class ValidationProblems(BaseModel):
    detail: list[FieldProblem]


def problems_of(error: RequestValidationError) -> list[FieldProblem]:
    """Each error's field (dotted path, no location prefix) and message, without the input."""
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item.get("loc", ())]
        if loc and loc[0] in _LOCATIONS:
            loc = loc[1:]
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        field = ".".join(loc) or "body"
        problems.append(FieldProblem(field=field, label=LABELS.get(field, field), message=message))
    return problems


def unprocessable(problems: list[FieldProblem]) -> JSONResponse:
    return JSONResponse(status_code=422, content=ValidationProblems(detail=problems).model_dump())


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return unprocessable(problems_of(error))


async def _redis_error(request: Request, error: Exception) -> JSONResponse:
    logger.warning("%s %s: Redis not usable: %s", request.method, request.url.path, error.__class__.__name__)
    return JSONResponse(
        status_code=503, content={"detail": "Redis is not reachable; retry later"}, headers={"Retry-After": "1"}
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    # Imported here: the route module imports the api's dependencies, which import this module.
    from services.api.routes.backtest import sign_in_instead

    redirect = sign_in_instead(request, error)
    if redirect is not None:
        return redirect
    if error.status_code == 405:
        # Starlette names only the first route of the path; list every method it serves.
        methods: set[str] = set()
        for route in iter_route_contexts(request.app.routes):
            regex = getattr(route, "path_regex", None)
            if regex is not None and regex.match(request.url.path):
                methods |= set(getattr(route, "methods", None) or ())
        if "GET" in methods:
            methods.add("HEAD")  # served for every GET route
        if methods:
            error = StarletteHTTPException(405, error.detail, {"Allow": ", ".join(sorted(methods))})
    return await http_exception_handler(request, error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RedisError, _redis_error)
