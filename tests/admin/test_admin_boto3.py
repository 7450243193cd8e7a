"""End to end: boto3's ``apigateway`` client against a real gateway's admin API (SigV4), on the
embedded store and on Redis: keys, plans, plan keys, a keyed route, GetUsage, CSV import, errors
as boto3's exception classes."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from botocore.exceptions import ClientError

from tests.admin.conftest import Backend, Boto, boto_client


def today() -> str:
    return datetime.datetime.now(datetime.UTC).date().isoformat()


async def call_route(gateway: TestClient[Any, Any], value: str | None, path: str = "/dev/pets") -> int:
    headers = {} if value is None else {"x-api-key": value}
    async with gateway.get(path, headers=headers) as response:
        await response.read()
        return response.status


async def test_keys_plans_usage_with_boto3(
    gateway: TestClient[Any, Any], boto: Boto, backend: Backend
) -> None:
    created = await boto.create_api_key(name="alice", enabled=True, description="first")
    assert created["name"] == "alice" and created["enabled"] is True
    value = created["value"]
    assert len(value) == 40
    plan = await boto.create_usage_plan(
        name="Basic",
        apiStages=[
            {
                "apiId": "petsid",
                "stage": "dev",
                "throttle": {"/pets/GET": {"rateLimit": 50, "burstLimit": 20}},
            }
        ],
        throttle={"rateLimit": 100.0, "burstLimit": 50},
        quota={"limit": 10, "period": "MONTH", "offset": 0},
    )
    assert plan["apiStages"][0]["throttle"] == {"/pets/GET": {"rateLimit": 50.0, "burstLimit": 20}}
    assert plan["quota"] == {"limit": 10, "period": "MONTH", "offset": 0}
    assert await call_route(gateway, value) == 403  # not in a plan yet
    plan_key = await boto.create_usage_plan_key(
        usagePlanId=plan["id"], keyId=created["id"], keyType="API_KEY"
    )
    assert plan_key["id"] == created["id"] and plan_key["type"] == "API_KEY"
    assert [await call_route(gateway, value) for _ in range(3)] == [200, 200, 200]
    assert backend.total == 3

    usage = await boto.get_usage(usagePlanId=plan["id"], startDate=today(), endDate=today())
    assert usage["usagePlanId"] == plan["id"]
    assert usage["items"] == {created["id"]: [[3, 7]]}
    only = await boto.get_usage(
        usagePlanId=plan["id"], startDate=today(), endDate=today(), keyId=created["id"]
    )
    assert only["items"] == {created["id"]: [[3, 7]]}

    # Values are never returned again.
    fetched = await boto.get_api_key(apiKey=created["id"], includeValue=True)
    assert "value" not in fetched and fetched["name"] == "alice"
    listed = await boto.get_api_keys(includeValues=True)
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert listed["warnings"]

    await boto.update_api_key(
        apiKey=created["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
    )
    assert await call_route(gateway, value) == 403
    updated = await boto.update_api_key(
        apiKey=created["id"],
        patchOperations=[
            {"op": "replace", "path": "/enabled", "value": "true"},
            {"op": "replace", "path": "/name", "value": "alice2"},
        ],
    )
    assert updated["enabled"] is True and updated["name"] == "alice2"
    assert await call_route(gateway, value) == 200

    plans = await boto.get_usage_plans(keyId=created["id"])
    assert [p["id"] for p in plans["items"]] == [plan["id"]]
    keys = await boto.get_usage_plan_keys(usagePlanId=plan["id"])
    assert [k["name"] for k in keys["items"]] == ["alice2"]
    assert (await boto.get_usage_plan_key(usagePlanId=plan["id"], keyId=created["id"]))["name"] == "alice2"

    patched = await boto.update_usage_plan(
        usagePlanId=plan["id"],
        patchOperations=[
            {"op": "replace", "path": "/quota/limit", "value": "5"},
            {"op": "replace", "path": "/apiStages/petsid:dev/throttle/~1pets/GET/rateLimit", "value": "7"},
            {"op": "replace", "path": "/apiStages/petsid:dev/throttle/~1/GET/rateLimit", "value": "3"},
            {"op": "replace", "path": "/apiStages/petsid:dev/throttle/~1/GET/burstLimit", "value": "2"},
            {"op": "add", "path": "/apiStages", "value": "petsid:prod"},
        ],
    )
    assert patched["quota"]["limit"] == 5
    dev = next(s for s in patched["apiStages"] if s["stage"] == "dev")
    assert dev["throttle"] == {
        "/pets/GET": {"rateLimit": 7.0, "burstLimit": 20},
        "//GET": {"rateLimit": 3.0, "burstLimit": 2},
    }
    assert await call_route(gateway, value, "/prod/pets") == 200
    assert await call_route(gateway, value, "/dev/pets") == 429  # 5 of 5 used this month
    usage = await boto.get_usage(usagePlanId=plan["id"], startDate=today(), endDate=today())
    assert usage["items"] == {created["id"]: [[5, 0]]}

    await boto.delete_usage_plan_key(usagePlanId=plan["id"], keyId=created["id"])
    assert await call_route(gateway, value, "/prod/pets") == 403
    await boto.delete_usage_plan(usagePlanId=plan["id"])
    await boto.delete_api_key(apiKey=created["id"])
    assert (await boto.get_api_keys())["items"] == []


async def test_rotate_extension_returns_the_new_value_once(gateway: TestClient[Any, Any], boto: Boto) -> None:
    created = await boto.create_api_key(name="bob", enabled=True)
    await boto.create_usage_plan_key(usagePlanId="declared", keyId=created["id"], keyType="API_KEY")
    assert await call_route(gateway, created["value"], "/prod/pets") == 200
    async with gateway.post(
        f"/@admin/apikeys/{created['id']}/rotate", headers={"Authorization": "Bearer admin-token-0123456789"}
    ) as response:
        assert response.status == 200
        rotated = await response.json()
    assert rotated["id"] == created["id"] and rotated["value"] != created["value"]
    assert await call_route(gateway, created["value"], "/prod/pets") == 403
    assert await call_route(gateway, rotated["value"], "/prod/pets") == 200


async def test_import_csv_in_aws_format(gateway: TestClient[Any, Any], boto: Boto) -> None:
    body = (
        b"Name,key,description,Enabled,usageplanIds\n"
        b"first,importedKey0123456789abcdef,An imported key,TRUE,declared\n"
        b"second,importedKey0123456789zzzzzz,,false,\n"
        b"bad,short,,true,\n"
        b"third,importedKey0123456789yyyyyy,,true,nosuchplan\n"
    )
    result = await boto.import_api_keys(body=body, format="csv")
    assert len(result["ids"]) == 2
    assert result["warnings"] == [
        "line 4: Key: an API key value is 20 to 128 letters and digits",
        "line 5: Invalid Usage Plan ID specified: nosuchplan",
    ]
    assert await call_route(gateway, "importedKey0123456789abcdef", "/prod/pets") == 200
    keys = {key["name"]: key for key in (await boto.get_api_keys())["items"]}
    assert keys["first"]["enabled"] is True and keys["second"]["enabled"] is False
    assert keys["first"]["description"] == "An imported key"
    # The same value again updates that key; failonwarnings refuses the whole file.
    again = await boto.import_api_keys(
        body=b"key,name,enabled\nimportedKey0123456789abcdef,renamed,false\n", format="csv"
    )
    assert again == {
        "ids": [keys["first"]["id"]],
        "warnings": [],
        "ResponseMetadata": again["ResponseMetadata"],
    }
    assert await call_route(gateway, "importedKey0123456789abcdef", "/prod/pets") == 403
    with pytest.raises(boto.exceptions.BadRequestException):
        await boto.import_api_keys(body=body, format="csv", failOnWarnings=True)
    assert len((await boto.get_api_keys())["items"]) == 2


async def test_errors_are_boto3_exceptions(gateway: TestClient[Any, Any], boto: Boto) -> None:
    with pytest.raises(boto.exceptions.NotFoundException):
        await boto.get_api_key(apiKey="nosuchkey")
    with pytest.raises(boto.exceptions.NotFoundException):
        await boto.get_usage_plan(usagePlanId="nosuchplan")
    created = await boto.create_api_key(name="carol", value="carolKey0123456789abcdefgh")
    assert created["enabled"] is False  # AWS's default
    with pytest.raises(boto.exceptions.ConflictException):
        await boto.create_api_key(name="dup", value="carolKey0123456789abcdefgh")
    await boto.create_usage_plan_key(usagePlanId="declared", keyId=created["id"], keyType="API_KEY")
    with pytest.raises(boto.exceptions.ConflictException):
        await boto.create_usage_plan_key(usagePlanId="declared", keyId=created["id"], keyType="API_KEY")
    other = await boto.create_usage_plan(name="Other", apiStages=[{"apiId": "petsid", "stage": "prod"}])
    with pytest.raises(boto.exceptions.ConflictException):  # one plan per API stage per key
        await boto.create_usage_plan_key(usagePlanId=other["id"], keyId=created["id"], keyType="API_KEY")
    dev = await boto.create_usage_plan(name="Dev", apiStages=[{"apiId": "petsid", "stage": "dev"}])
    await boto.create_usage_plan_key(usagePlanId=dev["id"], keyId=created["id"], keyType="API_KEY")
    with pytest.raises(boto.exceptions.ConflictException):  # the key would be in two plans for prod
        await boto.update_usage_plan(
            usagePlanId=dev["id"],
            patchOperations=[{"op": "add", "path": "/apiStages", "value": "petsid:prod"}],
        )
    with pytest.raises(boto.exceptions.BadRequestException):
        await boto.create_api_key(name="short", value="tooShort")
    with pytest.raises(boto.exceptions.BadRequestException):
        await boto.update_usage_plan(
            usagePlanId="declared", patchOperations=[{"op": "replace", "path": "/productCode", "value": "x"}]
        )
    with pytest.raises(boto.exceptions.BadRequestException):
        await boto.create_usage_plan(name="Bad", apiStages=[{"apiId": "nosuchapi", "stage": "dev"}])
    with pytest.raises(boto.exceptions.BadRequestException):
        await boto.get_usage(usagePlanId="declared", startDate="2024-02-01", endDate="2024-01-01")


async def test_bad_signature_and_wrong_region_are_403(gateway: TestClient[Any, Any]) -> None:
    for client in (boto_client(gateway, secret="wrong-secret"), boto_client(gateway, region="eu-west-1")):
        with pytest.raises(ClientError) as caught:
            await client.get_api_keys()
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
