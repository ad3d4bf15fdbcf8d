"""Parameters over HTTP: 422 naming every field with nothing applied; versioned, audited changes."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from shared import streams
from shared.codec import decode, loads


async def _snapshot(redis: Redis) -> tuple[str | None, list]:
    return await redis.get(streams.PARAMETERS), await redis.xrange(streams.CONTROL_PARAMETERS)


async def test_defaults_are_version_zero_with_field_descriptions(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/parameters")).json()
    assert body["version"] == 0
    assert body["parameters"]["EMA_SHORT_PERIOD"] == 9 and body["parameters"]["STOP_LOSS_PERCENTAGE"] == "0.02"
    fields = {field["name"]: field for field in body["fields"]}
    assert fields["STOP_LOSS_PERCENTAGE"]["type"] == "decimal"
    assert fields["EMA_SHORT_PERIOD"]["type"] == "integer"
    assert fields["USE_EMA_FILTER"]["type"] == "boolean"
    assert fields["RSI_OVERBOUGHT"]["description"]


async def test_invalid_values_name_each_field_and_change_nothing(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    await client.put("/api/parameters", json={"EMA_SHORT_PERIOD": 8})
    before = await _snapshot(redis_client)
    cases = [
        (
            {"EMA_SHORT_PERIOD": 30, "RSI_PERIOD": 1, "STOP_LOSS_PERCENTAGE": "1.5"},
            {"EMA_SHORT_PERIOD", "RSI_PERIOD", "STOP_LOSS_PERCENTAGE"},
        ),
        ({"EMA_SHORT_PERIOD": "eight"}, {"EMA_SHORT_PERIOD"}),
        ({"NOT_A_PARAMETER": 1}, {"NOT_A_PARAMETER"}),
        ({"RSI_OVERSOLD": 80}, {"RSI_OVERSOLD"}),
    ]
    for values, expected in cases:
        response = await client.put("/api/parameters", json=values)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert {item["field"] for item in detail} == expected
        assert all(item["message"] for item in detail)
        assert await _snapshot(redis_client) == before
    assert (await client.get("/api/parameters")).json()["parameters"]["EMA_SHORT_PERIOD"] == 8


async def test_accepted_change_bumps_the_version_and_is_audited(client: httpx.AsyncClient, redis_client: Redis) -> None:
    response = await client.put("/api/parameters", json={"EMA_SHORT_PERIOD": 7, "STOP_LOSS_PERCENTAGE": "0.015"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 1 and body["parameters"]["EMA_SHORT_PERIOD"] == 7
    assert body["changed_by"] == "owner@10.0.0.2" and body["changed_at_ms"] > 0
    stored = loads(await redis_client.get(streams.PARAMETERS))
    assert stored["version"] == 1 and stored["parameters"]["STOP_LOSS_PERCENTAGE"] == "0.015"

    response = await client.put("/api/parameters", json={"USE_VOLUME_CONFIRMATION": True})
    assert response.json()["version"] == 2
    events = [decode(fields) for _, fields in await redis_client.xrange(streams.CONTROL_PARAMETERS)]
    assert [event.payload.parameters_version for event in events] == [1, 2]
    assert events[0].payload.previous["EMA_SHORT_PERIOD"] == 9 and events[0].payload.parameters["EMA_SHORT_PERIOD"] == 7

    history = (await client.get("/api/parameters/history")).json()
    assert [entry["version"] for entry in history] == [2, 1]
    assert history[1]["changed_by"] == "owner@10.0.0.2"
    assert {(c["field"], c["old"], c["new"]) for c in history[1]["changes"]} == {
        ("EMA_SHORT_PERIOD", 9, 7),
        ("STOP_LOSS_PERCENTAGE", "0.02", "0.015"),
    }
    assert history[0]["changes"] == [{"field": "USE_VOLUME_CONFIRMATION", "old": False, "new": True}]


async def test_a_body_that_is_not_an_object_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/parameters", json=[1, 2])
    assert response.status_code == 422
