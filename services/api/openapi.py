"""The OpenAPI document, made to say what the server does.

FastAPI documents its own 422 shape (``HTTPValidationError``) and none of the answers given
before a route runs. This adds them to every operation: 400 (malformed request), 413 (body
over the limit), 503 (busy, or Redis unreachable), 403 (cross-origin) on state-changing
methods, 401 on routes that need a session, and one 422 shape everywhere.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.api.errors import ValidationProblems

PROBLEMS_REF = "#/components/schemas/ValidationProblems"
DETAIL_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}
STATE_CHANGING = {"post", "put", "patch", "delete"}


def _detail(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Detail"}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


def document(app: FastAPI) -> dict[str, Any]:
    """The schema with every admission answer and the one 422 shape (cached on the app)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["ValidationProblems"] = ValidationProblems.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(components["ValidationProblems"].pop("$defs", {}))
    components["Detail"] = DETAIL_SCHEMA
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                _not_nullable(parameter)
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "invalid fields (no input is echoed)",
                    "content": {"application/json": {"schema": {"$ref": PROBLEMS_REF}}},
                }
            responses.setdefault("400", _detail("malformed request"))
            responses.setdefault("503", _detail("busy or Redis unreachable; see Retry-After", RETRY_AFTER))
            if operation.get("security"):
                responses.setdefault("401", _detail("sign in first"))
            if method in STATE_CHANGING:
                responses.setdefault("403", _detail("cross-origin request refused"))
                responses.setdefault("413", _detail("request body over the size limit"))
    app.openapi_schema = schema
    return schema


def _not_nullable(parameter: dict[str, Any]) -> None:
    """An optional query or header parameter is absent, never null: drop ``null`` from its type."""
    schema = parameter.get("schema", {})
    variants = schema.get("anyOf")
    if not variants:
        return
    kept = [variant for variant in variants if variant.get("type") != "null"]
    if len(kept) == 1:
        del schema["anyOf"]
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept


def install_openapi(app: FastAPI) -> None:
    app.openapi = lambda: document(app)  # type: ignore[method-assign]  # FastAPI's documented override
