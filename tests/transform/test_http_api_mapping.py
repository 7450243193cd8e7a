"""HTTP API parameter mapping (reference §7.4, DG:http-api-parameter-mapping): request headers,
query values and the path rewritten for the backend; response headers and status rewritten per
status code. End to end on port 0 with a real aiohttp backend."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.config.errors import ConfigError
from server.config.load import load_config

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def backend() -> AsyncIterator[TestServer]:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "path": request.path,
                "query": request.query_string,
                "headers": {k: v for k, v in request.headers.items() if k.lower().startswith("x-")},
            },
            headers={"X-Backend": "b1", "X-Secret": "s"},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app, port=0)
    await server.start_server()
    yield server
    await server.close()


NATIVE = """\
portway: 1
apis:
  - name: items
    type: http
    routes:
      GET /items/{proxy+}:
        http_proxy:
          uri: http://127.0.0.1:PORT/{proxy}
          parameterMapping:
            overwrite:header.X-Item: $request.path.proxy
            append:header.X-Tag: from-${request.querystring.tag}
            remove:header.X-Drop: "''"
            overwrite:querystring.tag: $request.header.X-New-Tag
            append:querystring.stage: $context.stage
            overwrite:path: /v2/things/$request.path.proxy
          responseParameters:
            "200":
              overwrite:statuscode: "202"
              append:header.X-Seen: $response.header.X-Backend
              remove:header.X-Secret: "''"
              overwrite:header.X-Path: $response.body.path
"""


@pytest.fixture
async def gateway(aiohttp_client: Client, backend: TestServer, tmp_path: Path) -> TestClient[Any, Any]:
    path = tmp_path / "portway.yml"
    path.write_text(NATIVE.replace("PORT", str(backend.port)))
    return await aiohttp_client(create_app(load_config(path, env={})))


async def test_request_and_response_mapping(gateway: TestClient[Any, Any]) -> None:
    headers = {"X-Tag": "client", "X-Drop": "1", "X-New-Tag": "n1"}
    resp = await gateway.get("/items/42?tag=t0&keep=1", headers=headers)
    assert resp.status == 202  # overwrite:statuscode
    assert resp.headers["X-Seen"] == "b1"
    assert "X-Secret" not in resp.headers
    assert resp.headers["X-Path"] == "/v2/things/42"
    sent = json.loads(await resp.text())
    assert sent["path"] == "/v2/things/42"  # overwrite:path
    assert sent["headers"]["X-Item"] == "42"
    assert sent["headers"]["X-Tag"] == "client,from-t0"  # append: joined to the client's value
    assert "X-Drop" not in sent["headers"]
    assert sent["query"] == "keep=1&tag=n1&stage=$default"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("overwrite:body", "use append|overwrite|remove"),
        ("append:path", "only overwrite:path"),
    ],
)
def test_bad_keys(tmp_path: Path, key: str, message: str) -> None:
    text = f"""\
    portway: 1
    apis:
      - name: items
        type: http
        routes:
          GET /items:
            http_proxy:
              uri: http://127.0.0.1:1/x
              parameterMapping: {{"{key}": "'v'"}}
    """
    path = tmp_path / "portway.yml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert any(message in issue.message for issue in info.value.issues), info.value.issues
