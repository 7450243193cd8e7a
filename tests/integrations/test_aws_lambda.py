"""AWS_PROXY to a real Lambda function through aiobotocore, behind a real ``portway serve``.

moto's server cannot execute a function here (its Lambda runs code in Docker, and no Docker daemon
is reachable), so the invoke path is tested against a small aiohttp server that speaks Lambda's
Invoke REST API, the wire protocol botocore uses: ``POST /2015-03-31/functions/{name}/invocations``
answering the payload, with ``X-Amz-Function-Error: Unhandled`` on a function error and
``x-amzn-ErrorType`` + a JSON body on a service error (AWS Lambda API reference, Invoke: errors
ResourceNotFoundException 404, TooManyRequestsException 429). moto's own server answers the
unknown-function case (404 ``ResourceNotFoundException``), which needs no Docker.

Gateway answers: docs/aws-contract.md and reference/aws-api-gateway.md §"Lambda proxy errors"
(function error, invoke failure, malformed proxy response -> 502 ``Internal server error`` on
REST; integration timeout -> 504 ``Endpoint request timed out``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.projects.conftest import moto_url, serve_project

__all__ = ["moto_url"]  # the fixture, shared with tests/projects

CREDENTIALS = {  # the standard chain's environment variables (fake: the fake Lambda checks none)
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
}


class FakeLambda:
    """Lambda's Invoke API for a few named functions; records what it received."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.release = asyncio.Event()

    async def invoke(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.paths.append(request.path)
        event = json.loads(await request.read())
        self.events.append(event)
        if name == "echo" or name.endswith(":function:echo"):
            body = {
                "method": event.get("httpMethod"),
                "path": event.get("path"),
                "id": event["pathParameters"],
            }
            return web.json_response(
                {"statusCode": 201, "headers": {"X-Fn": "echo"}, "body": json.dumps(body)}
            )
        if name == "boom":
            error = {"errorType": "ValueError", "errorMessage": "boom", "stackTrace": []}
            return web.json_response(error, headers={"X-Amz-Function-Error": "Unhandled"})
        if name == "bad":  # an extra key: not a proxy response
            return web.json_response({"statusCode": 200, "body": "x", "bogus": 1})
        if name == "slow":
            async with asyncio.timeout(30):  # bounded: the test releases it when done
                await self.release.wait()
            return web.json_response({"statusCode": 200, "body": "late"})
        if name == "busy":
            return web.json_response(
                {
                    "Type": "User",
                    "message": "Rate Exceeded.",
                    "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
                },
                status=429,
                headers={"x-amzn-ErrorType": "TooManyRequestsException"},
            )
        return web.json_response(
            {"Type": "User", "Message": f"Function not found: {name}"},
            status=404,
            headers={"x-amzn-ErrorType": "ResourceNotFoundException"},
        )


@pytest.fixture
async def fake_lambda() -> AsyncIterator[tuple[str, FakeLambda]]:
    fake = FakeLambda()
    app = web.Application()
    app.router.add_post("/2015-03-31/functions/{name}/invocations", fake.invoke)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", fake
    finally:
        fake.release.set()
        await runner.cleanup()


def _project(tmp_path: Path, moto_url: str) -> Path:
    config = tmp_path / "portway.yml"
    config.write_text(
        f"""
portway: 1
apis:
  - name: fns
    type: rest
    stages: [dev]
    routes:
      POST /items/{{id}}: {{lambda: echo}}
      GET /arn/{{id}}: {{lambda: "arn:aws:lambda:eu-west-1:123456789012:function:echo"}}
      GET /boom: {{lambda: boom}}
      GET /bad: {{aws_proxy: {{function: bad}}}}
      GET /slow: {{lambda: slow, timeout: 300}}
      GET /busy: {{integration: {{type: aws_proxy, function: busy}}}}
      GET /missing: {{lambda: missing}}
      GET /moto-missing: {{aws_proxy: {{function: nothing-here, endpointUrl: "{moto_url}"}}}}
  - name: fns-http
    type: http
    basePath: h
    routes:
      GET /items/{{id}}: {{lambda: echo}}
      GET /boom: {{lambda: boom}}
"""
    )
    return config


async def test_aws_proxy_against_the_invoke_api(
    tmp_path: Path, fake_lambda: tuple[str, FakeLambda], moto_url: str
) -> None:
    endpoint, fake = fake_lambda
    env = {**CREDENTIALS, "PORTWAY_AWS_ENDPOINT_URL": endpoint}
    async with serve_project(_project(tmp_path, moto_url), env) as base, aiohttp.ClientSession() as http:
        async with http.post(f"{base}/dev/items/7?q=1", data=b"hi") as resp:
            assert resp.status == 201 and resp.headers["X-Fn"] == "echo"
            assert await resp.json() == {"method": "POST", "path": "/items/7", "id": {"id": "7"}}
        # The event is the REST v1 proxy event Python handlers get (server/events.py).
        event = fake.events[-1]
        assert event["resource"] == "/items/{id}" and event["body"] == "hi"
        assert event["queryStringParameters"] == {"q": "1"}
        assert event["requestContext"]["stage"] == "dev" and event["isBase64Encoded"] is False
        assert fake.paths[-1] == "/2015-03-31/functions/echo/invocations"

        async with http.get(f"{base}/dev/arn/8") as resp:  # by ARN: the ARN is the FunctionName
            assert resp.status == 201
        # request.path is decoded: the ARN went as the FunctionName, through the eu-west-1 client.
        assert (
            fake.paths[-1]
            == "/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:echo/invocations"
        )

        for path, status, message in [
            ("boom", 502, "Internal server error"),  # FunctionError (Unhandled)
            ("bad", 502, "Internal server error"),  # malformed proxy response
            ("slow", 504, "Endpoint request timed out"),  # the 300 ms integration timeout
            ("missing", 502, "Internal server error"),  # ResourceNotFoundException (404)
            ("moto-missing", 502, "Internal server error"),  # moto's own 404
            ("busy", 429, "Too Many Requests"),  # TooManyRequestsException
        ]:
            async with http.get(f"{base}/dev/{path}") as resp:
                assert (path, resp.status) == (path, status)
                assert (await resp.json())["message"] == message

        # HTTP API, payload 2.0: the 2.0 event, and AWS's HTTP API error (aws-contract.md §0.5).
        async with http.get(f"{base}/h/items/9") as resp:
            assert resp.status == 201
        event = fake.events[-1]
        assert event["version"] == "2.0" and event["routeKey"] == "GET /items/{id}"
        assert event["pathParameters"] == {"id": "9"}
        async with http.get(f"{base}/h/boom") as resp:
            assert resp.status == 500
            assert await resp.json() == {"message": "Internal Server Error"}


async def test_moto_answers_unknown_function_with_404(moto_url: str) -> None:
    """The wire fact the 'missing' case relies on, from moto's real server."""
    from aiobotocore.session import get_session
    from botocore.exceptions import ClientError

    session = get_session()
    async with session.create_client(
        "lambda",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as client:
        with pytest.raises(ClientError) as info:
            await client.invoke(FunctionName="nothing-here", Payload=b"{}")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_where_a_function_is_called(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Region: an ARN's, else the integration's, else the gateway's. Endpoint: the integration's,
    else the config's ``aws.endpointUrl``, else PORTWAY_AWS_ENDPOINT_URL, else AWS's own."""
    from routes.integrations.aws_lambda import lambda_target
    from server.config.load import load_config

    monkeypatch.setenv("PORTWAY_AWS_ENDPOINT_URL", "http://127.0.0.1:3")
    config_file = tmp_path / "portway.yml"
    config_file.write_text(
        """
portway: 1
aws: {endpointUrl: "http://127.0.0.1:2"}
apis:
  - name: fns
    type: http
    routes:
      GET /a: {lambda: "arn:aws:lambda:eu-west-1:123456789012:function:f"}
      GET /b: {lambda: {function: g, region: ap-south-1, endpointUrl: "http://127.0.0.1:1"}}
      GET /c: {lambda: h}
"""
    )
    config = load_config(config_file, env={})
    a, b, c = (lambda_target(route.integration, config) for route in config.apis[0].routes)
    assert (a.function, a.region, a.endpoint_url) == (
        "arn:aws:lambda:eu-west-1:123456789012:function:f",
        "eu-west-1",
        "http://127.0.0.1:2",
    )
    assert (b.function, b.region, b.endpoint_url) == ("g", "ap-south-1", "http://127.0.0.1:1")
    assert (c.function, c.region, c.endpoint_url) == ("h", "us-east-1", "http://127.0.0.1:2")
    config_file.write_text(config_file.read_text().replace('aws: {endpointUrl: "http://127.0.0.1:2"}\n', ""))
    config = load_config(config_file, env={})
    assert lambda_target(config.apis[0].routes[2].integration, config).endpoint_url == "http://127.0.0.1:3"
    monkeypatch.delenv("PORTWAY_AWS_ENDPOINT_URL")
    assert lambda_target(config.apis[0].routes[2].integration, config).endpoint_url is None
