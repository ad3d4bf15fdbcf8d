"""``GET /api/metrics``: Prometheus text behind the api's sign-in; a viewer token reads it."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from shared import accounts
from tests.api.test_api_roles import bearer_client, engine_of


async def test_metrics_need_a_sign_in(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/api/metrics")
    assert response.status_code == 401
    assert "bot_" not in response.text


async def test_a_viewer_token_reads_the_prometheus_text(app: FastAPI, anon: httpx.AsyncClient) -> None:
    _, secret = await accounts.create_token(engine_of(app), "owner", "prometheus", "viewer")
    async with bearer_client(app, secret) as viewer:
        response = await viewer.get("/api/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"bot_bus_events", "bot_heartbeat_timestamp_seconds", "process_cpu_seconds"} <= names
    assert secret not in response.text
    bad = await anon.get("/api/metrics", headers={"Authorization": "Bearer bsb_not-a-token"})
    assert bad.status_code == 401
