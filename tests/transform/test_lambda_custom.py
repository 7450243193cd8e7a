"""Lambda non-proxy integrations (serverless ``integration: lambda``; reference §7.2, §7.5): the
event from Serverless's default request template or the route's own, the result as a 200 JSON
body, function errors selected by errorMessage against the integration responses (Serverless's
default ``.*\\[404\\].*`` patterns when none are given), served end to end."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config.load import load_config

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

HANDLER = """\
def echo(event, context):
    return event


def fail(event, context):
    raise ValueError("[404] no pet " + event["path"]["id"])
"""

SERVERLESS = """\
service: custom
provider:
  name: aws
  stage: dev
functions:
  echo:
    handler: handler.echo
    events:
      - http:
          path: pets/{id}
          method: post
          integration: lambda
      - http:
          path: shaped
          method: post
          integration: lambda
          request:
            template:
              application/json: '{"name": $input.json(''$.name''), "stage": "$context.stage"}'
          response:
            headers:
              X-Kind: "'custom'"
            template: '{"got": $input.json(''$'')}'
  fail:
    handler: handler.fail
    events:
      - http:
          path: missing/{id}
          method: get
          integration: lambda
"""


async def test_lambda_non_proxy(aiohttp_client: Client, tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text(HANDLER)
    path = tmp_path / "serverless.yml"
    path.write_text(textwrap.dedent(SERVERLESS))
    client = await aiohttp_client(create_app(load_config(path, env={})))

    resp = await client.post("/dev/pets/7?q=1", json={"a": 1}, headers={"X-H": "v"})
    assert resp.status == 200
    event = json.loads(await resp.text())
    assert event["body"] == {"a": 1}
    assert (event["method"], event["stage"], event["path"], event["query"]) == (
        "POST",
        "dev",
        {"id": "7"},
        {"q": "1"},
    )
    assert event["headers"]["X-H"] == "v"
    assert event["requestPath"] == "/pets/{id}"

    resp = await client.post("/dev/shaped", json={"name": "rex", "other": 1})
    assert resp.status == 200
    assert resp.headers["X-Kind"] == "custom"
    assert json.loads(await resp.text()) == {"got": {"name": "rex", "stage": "dev"}}

    # Serverless's default responses: "[404]" in the errorMessage selects the 404 response,
    # whose body is Lambda's error document (no template).
    resp = await client.get("/dev/missing/9")
    assert resp.status == 404
    error = json.loads(await resp.text())
    assert error["errorMessage"] == "[404] no pet 9"
    assert error["errorType"] == "ValueError"
