"""The admin API over plain HTTP: bearer tokens, the API switched off, unknown paths, the
PutUsagePlan and rotate extensions, AWS's wire shapes (``item``, ``values``)."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from tests.admin.conftest import TOKEN, Backend, Client, gateway_config

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_admin_api_is_off_without_credentials(
    aiohttp_client: Client,
    backend: Backend,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("PORTWAY_ADMIN_TOKEN", "PORTWAY_ADMIN_ACCESS_KEY_ID", "PORTWAY_ADMIN_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.INFO, logger="portway.admin"):
        client = await aiohttp_client(create_app(gateway_config(backend)))
    assert [r.getMessage() for r in caplog.records if "admin API disabled" in r.getMessage()]
    for method, path in (("GET", "/@admin/apikeys"), ("POST", "/@admin/usageplans"), ("GET", "/@admin/x")):
        async with client.request(method, path, headers=AUTH) as response:
            assert response.status == 403
            assert response.headers["x-amzn-ErrorType"] == "AccessDeniedException"
            assert (await response.json())["message"] == "The Portway admin API is disabled"


async def test_bearer_token(gateway: TestClient[Any, Any]) -> None:
    async with gateway.get("/@admin/apikeys") as response:
        assert response.status == 403
        assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    async with gateway.get("/@admin/apikeys", headers={"Authorization": "Bearer wrong"}) as response:
        assert response.status == 403
        assert response.headers["x-amzn-ErrorType"] == "UnrecognizedClientException"
    async with gateway.get("/@admin/apikeys", headers=AUTH) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["x-amzn-RequestId"]
        assert await response.json() == {"item": []}
    async with gateway.get("/@admin/restapis", headers=AUTH) as response:
        assert response.status == 404
        assert response.headers["x-amzn-ErrorType"] == "NotFoundException"
    async with gateway.post("/@admin/apikeys", headers=AUTH, data=b"not json") as response:
        assert response.status == 400
        assert response.headers["x-amzn-ErrorType"] == "BadRequestException"


async def test_put_plan_extension_pagination_and_usage_wire_shape(gateway: TestClient[Any, Any]) -> None:
    plan = {
        "name": "Gold",
        "apiStages": [
            {"apiId": "petsid", "stage": "dev", "throttle": {"GET /pets": {"rateLimit": 5, "burstLimit": 5}}}
        ],
        "quota": {"limit": 1000, "period": "DAY"},
    }
    async with gateway.put("/@admin/usageplans/gold", headers=AUTH, json=plan) as response:
        assert response.status == 200
        stored = await response.json()
    assert stored["id"] == "gold"
    assert stored["apiStages"][0]["throttle"] == {"/pets/GET": {"rateLimit": 5.0, "burstLimit": 5}}
    values = []
    for name in ("k1", "k2", "k3"):
        async with gateway.post(
            "/@admin/apikeys", headers=AUTH, json={"name": name, "enabled": True}
        ) as response:
            assert response.status == 201
            created = await response.json()
            values.append(created["value"])
        async with gateway.post(
            "/@admin/usageplans/gold/keys", headers=AUTH, json={"keyId": created["id"], "keyType": "API_KEY"}
        ) as response:
            assert response.status == 201
    async with gateway.get("/@admin/apikeys?limit=2", headers=AUTH) as response:
        page = await response.json()
    assert [item["name"] for item in page["item"]] == ["k1", "k2"] and page["position"] == "2"
    async with gateway.get("/@admin/apikeys?limit=2&position=2", headers=AUTH) as response:
        page = await response.json()
    assert [item["name"] for item in page["item"]] == ["k3"] and "position" not in page
    async with gateway.get("/dev/pets", headers={"x-api-key": values[0]}) as response:
        assert response.status == 200
    today = datetime.datetime.now(datetime.UTC).date()
    query = f"startDate={today - datetime.timedelta(days=1)}&endDate={today}"
    async with gateway.get(f"/@admin/usageplans/gold/usage?{query}", headers=AUTH) as response:
        usage = await response.json()
    assert usage["usagePlanId"] == "gold" and usage["startDate"] == str(today - datetime.timedelta(days=1))
    assert sorted(usage["values"].values()) == [[[0, 1000], [0, 1000]]] * 2 + [[[0, 1000], [1, 999]]]
    # Deleting the plan drops it from its keys.
    async with gateway.delete("/@admin/usageplans/gold", headers=AUTH) as response:
        assert response.status == 202
        assert await response.read() == b""
    async with gateway.get("/dev/pets", headers={"x-api-key": values[0]}) as response:
        assert response.status == 403
