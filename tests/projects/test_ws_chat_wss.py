"""A WebSocket chat written as the AWS samples write one, served unmodified over wss with
``portway serve --tls self-signed``: connection ids in DynamoDB (moto's real server), messages
fanned out by the handler through boto3's ``apigatewaymanagementapi`` at
``https://{domainName}/{stage}`` with TLS verified, stale ids (410 GoneException) removed."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import boto3
import pytest
import websockets

from tests.projects.conftest import AWS_ENV, PROJECTS, serve_project
from tests.store.conftest import eventually

pytestmark = pytest.mark.slow

TABLE = "ws-chat-connections"


def table(moto_url: str):  # type: ignore[no-untyped-def]
    return boto3.resource(
        "dynamodb",
        endpoint_url=moto_url,
        region_name=AWS_ENV["AWS_REGION"],
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    ).Table(TABLE)


def create_table(moto_url: str) -> None:
    client = table(moto_url).meta.client
    if TABLE not in client.list_tables()["TableNames"]:
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )


async def ids(moto_url: str) -> set[str]:
    items = await asyncio.to_thread(lambda: table(moto_url).scan()["Items"])
    return {item["connectionId"] for item in items}


async def test_chat_over_wss_with_dynamodb(moto_url: str, tmp_path: Path) -> None:
    create_table(moto_url)
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": moto_url, "PORTWAY_TLS_DIR": str(tmp_path / "tls")}
    async with serve_project(PROJECTS / "ws-chat" / "serverless.yml", env, "--tls", "self-signed") as base:
        client_tls = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
        url = base.replace("https://", "wss://") + "/dev"
        async with (
            websockets.connect(url, ssl=client_tls) as ada,
            websockets.connect(url, ssl=client_tls) as bob,
            websockets.connect(url, ssl=client_tls) as cy,
        ):
            assert len(await ids(moto_url)) == 3  # $connect stored each id
            # A subscriber that went away without $disconnect (the AWS samples' stale id).
            await asyncio.to_thread(table(moto_url).put_item, Item={"connectionId": "c3RhbGUxMjM0NTY3OD0="})
            await ada.send(json.dumps({"action": "sendmessage", "data": "hello, everyone"}))
            for member in (ada, bob, cy):
                async with asyncio.timeout(20):
                    assert await member.recv() == "hello, everyone"
            assert "c3RhbGUxMjM0NTY3OD0=" not in await ids(moto_url)  # GoneException -> removed
            await cy.close()

            async def disconnected() -> bool:
                return len(await ids(moto_url)) == 2

            await eventually(disconnected, within=20)  # $disconnect deleted cy's id
