"""The @connections API requiring SigV4 (management.auth: iam): boto3's apigatewaymanagementapi and
the AWS JS SDK v3 client with the gateway's keys just work; a missing or bad signature, or a key
without execute-api:ManageConnections, gets AWS's 403s (aws-contract.md §1.7, §5.5)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
import websockets
from aiohttp.test_utils import TestServer
from botocore.exceptions import ClientError

from server.auth.policy import parse_policy
from server.config.model import IamCredentialConfig, ManagementSettings
from tests.connections.conftest import GatewayFactory, chat_api, ws_url
from tests.connections.test_management import whoami

JS = Path(__file__).resolve().parents[1] / "js"
MANAGER = IamCredentialConfig(
    "AKIDMANAGER",
    parse_policy(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "execute-api:ManageConnections",
                    "Resource": "arn:aws:execute-api:us-east-1:*:chatapi/dev/*/@connections/*",
                }
            ]
        }
    ),
    secret_access_key="manager-secret",
)
INVOKER = IamCredentialConfig(
    "AKIDINVOKER",
    parse_policy({"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}]}),
    secret_access_key="invoker-secret",
)


def client(server: TestServer, key_id: str = "AKIDMANAGER", secret: str = "manager-secret") -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"http://127.0.0.1:{server.port}/dev",
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


async def iam_gateway(ws_gateway: GatewayFactory) -> TestServer:
    server: TestServer = await ws_gateway(
        chat_api(), iam_credentials=(MANAGER, INVOKER), management=ManagementSettings(auth="iam")
    )
    return server


async def test_boto3_with_the_gateways_keys(ws_gateway: GatewayFactory) -> None:
    server = await iam_gateway(ws_gateway)
    mgmt = client(server)
    async with websockets.connect(ws_url(server)) as ws:
        connection_id = await whoami(ws)
        await asyncio.to_thread(mgmt.post_to_connection, ConnectionId=connection_id, Data=b"signed")
        assert await ws.recv() == "signed"
        info = await asyncio.to_thread(mgmt.get_connection, ConnectionId=connection_id)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        deleted = await asyncio.to_thread(mgmt.delete_connection, ConnectionId=connection_id)
        assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204


@pytest.mark.parametrize(
    ("key_id", "secret", "code", "message"),
    [
        ("AKIDMANAGER", "wrong", "InvalidSignatureException", "The request signature we calculated"),
        (
            "AKIDNOBODY",
            "x",
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        (
            "AKIDINVOKER",
            "invoker-secret",
            "ForbiddenException",
            "User: arn:aws:iam::123456789012:user/AKIDINVOKER",
        ),
    ],
    ids=["wrong-secret", "unknown-key", "no-ManageConnections"],
)
async def test_boto3_refusals(
    ws_gateway: GatewayFactory, key_id: str, secret: str, code: str, message: str
) -> None:
    server = await iam_gateway(ws_gateway)
    async with websockets.connect(ws_url(server)) as ws:
        connection_id = await whoami(ws)
        with pytest.raises(ClientError) as caught:
            await asyncio.to_thread(
                client(server, key_id, secret).post_to_connection, ConnectionId=connection_id, Data=b"x"
            )
        assert caught.value.response["Error"]["Code"] == code
        assert caught.value.response["Error"]["Message"].startswith(message)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        await ws.send('{"action":"echo","data":"still here"}')  # nothing was delivered or closed
        assert "still here" in await ws.recv()


async def test_unsigned_calls_are_refused(ws_gateway: GatewayFactory) -> None:
    server = await iam_gateway(ws_gateway)
    async with aiohttp.ClientSession() as http:
        for method, path in (
            ("GET", "/dev/@connections"),
            ("POST", "/dev/@broadcast"),
            ("POST", "/dev/@channels/a"),
        ):
            async with http.request(method, f"http://127.0.0.1:{server.port}{path}", data=b"x") as r:
                assert r.status == 403
                assert r.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
                assert await r.json() == {"message": "Missing Authentication Token"}


async def _node(endpoint: str, connection_id: str, secret: str) -> tuple[int | None, bytes, bytes]:
    node = shutil.which("node")
    assert node is not None, "node is needed (Debian package nodejs)"
    assert (JS / "node_modules" / "@aws-sdk").is_dir(), "run: npm ci --prefix tests/js (scripts/test.sh does)"
    env = {**os.environ, "PORTWAY_TEST_KEY_ID": "AKIDMANAGER", "PORTWAY_TEST_SECRET": secret}
    proc = await asyncio.create_subprocess_exec(
        node,
        str(JS / "mgmt.mjs"),
        endpoint,
        connection_id,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(30):
        stdout, stderr = await proc.communicate()
    return proc.returncode, stdout, stderr


async def test_js_sdk_v3_with_the_gateways_keys(ws_gateway: GatewayFactory) -> None:
    server = await iam_gateway(ws_gateway)
    endpoint = f"http://127.0.0.1:{server.port}/dev"
    async with websockets.connect(ws_url(server)) as ws:
        connection_id = await whoami(ws)
        code, _, stderr = await _node(endpoint, connection_id, "wrong")
        assert code != 0 and b"InvalidSignatureException" in stderr
        code, stdout, stderr = await _node(endpoint, connection_id, "manager-secret")
        assert code == 0, stderr.decode()
        assert await ws.recv() == "from js"
    assert json.loads(stdout)["post"] == 200 and json.loads(stdout)["delete"] == 204


async def test_signed_calls_through_a_proxy_are_accepted(ws_gateway: GatewayFactory) -> None:
    server = await iam_gateway(ws_gateway)
    mgmt = client(server)

    def add_forwarded(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-For"] = "203.0.113.9"  # a relayed request: the signature decides

    mgmt.meta.events.register("before-sign.apigatewaymanagementapi.*", add_forwarded)
    async with websockets.connect(ws_url(server)) as ws:
        connection_id = await whoami(ws)
        await asyncio.to_thread(mgmt.post_to_connection, ConnectionId=connection_id, Data=b"via proxy")
        assert await ws.recv() == "via proxy"
