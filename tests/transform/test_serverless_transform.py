"""serverless.yml `http` events with `integration: http` / `mock`: request.template,
request.passThrough and response.statusCodes become the integration's templates, passthrough and
integration responses (as Serverless v3 deploys them), served end to end."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config.load import load_config
from server.config.model import IntegrationType

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

SERVERLESS = """\
service: tpl
provider:
  name: aws
  stage: dev
functions:
  f:
    handler: handler.f
    events:
      - http:
          path: status
          method: post
          integration: mock
          request:
            passThrough: NEVER
            template:
              application/json: '{"statusCode": $input.json(''$.code'')}'
          response:
            headers:
              X-Static: "'yes'"
            statusCodes:
              200:
                pattern: ''
                template: '{"ok": true}'
              404:
                pattern: '404'
                template: '{"ok": false}'
"""


async def test_serverless_mock_with_templates(aiohttp_client: Client, tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("def f(event, context):\n    return {}\n")
    path = tmp_path / "serverless.yml"
    path.write_text(textwrap.dedent(SERVERLESS))
    config = load_config(path, env={})
    (route,) = config.apis[0].routes
    assert route.integration.type is IntegrationType.MOCK
    assert route.integration.passthrough == "NEVER"
    client = await aiohttp_client(create_app(config))
    resp = await client.post("/dev/status", json={"code": 404})
    assert resp.status == 404
    assert json.loads(await resp.text()) == {"ok": False}
    assert resp.headers["X-Static"] == "yes"
    resp = await client.post("/dev/status", json={"code": 200})
    assert (resp.status, json.loads(await resp.text())) == (200, {"ok": True})
    resp = await client.post("/dev/status", data=b"x", headers={"Content-Type": "text/plain"})
    assert resp.status == 415
