"""Two projects shaped like the official Serverless examples aws-python-rest-api-with-dynamodb and
aws-python-http-api-with-dynamodb, served unmodified, talking to DynamoDB on moto's real server.

They exercise what stopped such projects before: ``handler: todos/list.list`` imported as Lambda
imports it (module ``todos.list``, ``from todos import decimalencoder``, the service root as
``sys.path[0]`` and cwd), CloudFormation short-form tags (``!GetAtt``, ``!Sub``) in sections
Portway ignores, and boto3 in handlers reaching the endpoint the operator configured. Each test
replays the requests of the example's README (create, list, get, update, delete)."""

from __future__ import annotations

import json

import aiohttp
import boto3
import pytest

from tests.projects.conftest import AWS_ENV, PROJECTS, serve_project

pytestmark = pytest.mark.slow


def create_table(moto_url: str, name: str) -> None:
    client = boto3.client("dynamodb", endpoint_url=moto_url, **_creds())
    if name not in client.list_tables()["TableNames"]:
        client.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )


def _creds() -> dict[str, str]:
    return {
        "region_name": AWS_ENV["AWS_REGION"],
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    }


async def readme_requests(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/todos", data='{ "text": "Learn Serverless" }') as resp:
            assert resp.status == 200, await resp.text()
            created = json.loads(await resp.text())
        assert created["text"] == "Learn Serverless" and created["checked"] is False
        async with http.get(f"{base}/todos") as resp:
            assert resp.status == 200
            assert [item["id"] for item in json.loads(await resp.text())] == [created["id"]]
        async with http.get(f"{base}/todos/{created['id']}") as resp:
            assert resp.status == 200 and json.loads(await resp.text())["text"] == "Learn Serverless"
        body = '{ "text": "Learn Serverless", "checked": true }'
        async with http.put(f"{base}/todos/{created['id']}", data=body) as resp:
            assert resp.status == 200, await resp.text()
            assert json.loads(await resp.text())["checked"] is True
        async with http.delete(f"{base}/todos/{created['id']}") as resp:
            assert resp.status == 200
        async with http.get(f"{base}/todos") as resp:
            assert json.loads(await resp.text()) == []
        # A bad body: the handler raises; the REST API answers 502, the HTTP API 500 (AWS's shapes).
        async with http.post(f"{base}/todos", data="{}") as resp:
            assert resp.status in (500, 502)


@pytest.mark.parametrize(("project", "prefix"), [("rest-todos", "/dev"), ("http-todos", "")])
async def test_todos_project_runs_unmodified(moto_url: str, project: str, prefix: str) -> None:
    create_table(moto_url, f"{project}-dev")
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": moto_url}
    async with serve_project(PROJECTS / project / "serverless.yml", env) as base:
        await readme_requests(base + prefix)
