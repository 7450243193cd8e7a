"""A configured access log format: one line per REST/HTTP request in AWS's ``$context`` syntax,
written by the running app (real aiohttp client)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.access_format import CONTEXT_VARIABLES, compile_format
from server.access_log import AccessLog
from server.app import create_app
from server.config.errors import ConfigError
from server.config.load import load_config
from tests.server.test_metrics import config
from tests.store.conftest import eventually

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
    '"requestTime":"$context.requestTime","httpMethod":"$context.httpMethod",'
    '"resourcePath":"$context.resourcePath","routeKey":"$context.routeKey","stage":"$context.stage",'
    '"apiId":"$context.apiId","status":"$context.status","protocol":"$context.protocol",'
    '"responseLength":"$context.responseLength","errorType":"$context.error.responseType",'
    '"caller":"$context.identity.caller"}'
)


async def test_requests_are_logged_in_the_configured_format(aiohttp_client: Client) -> None:
    stream = io.StringIO()
    access = AccessLog(stream, line_format=compile_format(FORMAT))
    client = await aiohttp_client(create_app(config(), access_log=access))
    async with client.get("/dev/one") as response:
        assert response.status == 200
        request_id = response.headers["x-amzn-RequestId"]
    async with client.get("/dev/one") as response:
        assert response.status == 429  # the method throttle of config(): burst 1
    await eventually(lambda: len(stream.getvalue().splitlines()) == 2)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["requestId"] == request_id
    assert first["ip"] == "127.0.0.1"
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", first["requestTime"])
    assert first["httpMethod"] == "GET"
    assert first["resourcePath"] == "/one"
    assert first["stage"] == "dev"
    assert first["apiId"] == "metricsapi"
    assert first["status"] == "200"
    assert first["protocol"] == "HTTP/1.1"
    assert first["responseLength"] == "2"  # the mock's "ok"
    assert first["errorType"] == "-"
    assert first["caller"] == "-"  # a variable Portway does not fill
    assert second["status"] == "429"
    assert second["errorType"] == "TooManyRequestsException"


async def test_without_a_format_the_console_line_is_kept(aiohttp_client: Client) -> None:
    stream = io.StringIO()
    client = await aiohttp_client(create_app(config(), access_log=AccessLog(stream)))
    async with client.get("/dev/one") as response:
        assert response.status == 200
    await eventually(lambda: stream.getvalue().endswith("\n"))
    assert re.fullmatch(r"\S+Z GET /dev/one 200 [\d.]+ ms MOCK\n", stream.getvalue(), re.IGNORECASE)


async def test_every_variable_portway_lists_is_filled(aiohttp_client: Client) -> None:
    stream = io.StringIO()
    every = "{" + ",".join(f'"{name}":"$context.{name}"' for name in sorted(CONTEXT_VARIABLES)) + "}"
    client = await aiohttp_client(
        create_app(config(), access_log=AccessLog(stream, line_format=compile_format(every)))
    )
    headers = {"x-api-key": "k", "User-Agent": "probe"}
    for _ in range(2):  # the second is throttled: a gateway error with its type
        async with client.get("/dev/one", headers=headers) as response:
            await response.read()
    await eventually(lambda: len(stream.getvalue().splitlines()) == 2)
    throttled = json.loads(stream.getvalue().splitlines()[1])
    assert {name for name, value in throttled.items() if value == "-"} == set()
    assert throttled["routeKey"] == "GET /one"
    assert throttled["identity.userAgent"] == "probe"


API_FORMAT = "$context.requestId $context.apiId $context.status"


async def test_an_api_format_from_the_native_config(aiohttp_client: Client, tmp_path: Path) -> None:
    path = tmp_path / "portway.yaml"
    path.write_text(
        "portway: 1\napis:\n"
        "  - name: logged\n    id: loggedapi\n"
        f"    accessLog: {{format: {json.dumps(API_FORMAT)}}}\n"
        "    routes:\n      GET /a: {mock: {status: 200, body: a}}\n"
        "  - name: plain\n    id: plainapi\n    basePath: plain\n"
        "    routes:\n      GET /b: {mock: {status: 200, body: b}}\n"
    )
    stream = io.StringIO()
    client = await aiohttp_client(create_app(load_config(path), access_log=AccessLog(stream)))
    async with client.get("/dev/a") as response:
        assert response.status == 200
        request_id = response.headers["x-amzn-RequestId"]
    async with client.get("/dev/plain/b") as response:
        assert response.status == 200
    await eventually(lambda: len(stream.getvalue().splitlines()) == 2)
    formatted, console = stream.getvalue().splitlines()
    assert formatted == f"{request_id} loggedapi 200"
    assert re.fullmatch(r"\S+Z GET /dev/plain/b 200 [\d.]+ ms MOCK", console, re.IGNORECASE)


def test_an_api_format_without_a_request_id_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "portway.yaml"
    path.write_text(
        "portway: 1\napis:\n  - name: logged\n    accessLog: {format: '$context.status'}\n"
        "    routes:\n      GET /a: {mock: {status: 200}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [issue] = info.value.issues
    assert issue.location == "apis[0].accessLog.format"
    assert "$context.requestId" in issue.message
