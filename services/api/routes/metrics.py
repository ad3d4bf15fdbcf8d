"""``GET /api/metrics``: the api process's Prometheus metrics, behind the api's sign-in (a viewer
token is enough: ``make token ADD=prometheus ROLE=viewer``). Only counters and gauges of this
process: no secret, no account name, nothing a viewer may not read anyway. Rendering the
registry is the whole cost; no middleware measures requests, so other routes pay nothing."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.api.deps import Protected
from shared import metrics

router = APIRouter(prefix="/api", tags=["metrics"], dependencies=Protected)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def get_metrics() -> Response:
    """The Prometheus text exposition format."""
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
