"""Portway for the transform benchmark (``bench/bench_transform.py``): the same routes with and
without a mapping template / a request validator, served like ``portway_server.py``.

    python bench/servers/portway_transform.py --port 8091 --backend http://127.0.0.1:8081

REST API ``tplbench01``, stage ``dev`` (account bucket off: no store call anywhere):

* ``POST /dev/http``      -> HTTP (non-proxy) to the backend, nothing configured;
* ``POST /dev/http-tpl``  -> the same, with a request template (JSON body reshaped with
  ``$input.path``/``$input.json``/``$context``), a query mapping and a default integration
  response with a response template (``$input.json``) and a header mapping;
* ``POST /dev/open``      -> MOCK 200;
* ``POST /dev/valid``     -> the same MOCK behind a validator (``all``): a required query
  parameter and a header, and a JSON Schema draft-4 model of the body.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import MappingProxyType

import uvloop

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from portway_server import serve  # noqa: E402

from server.config.model import (  # noqa: E402
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationResponseConfig,
    IntegrationType,
    MockResponse,
    RequestValidation,
    RouteConfig,
    StageConfig,
    frozen_map,
)

BODY = '{"name":"rex","age":3,"tags":["a","b"],"owner":{"id":"u1","city":"Oslo"}}'
REQUEST_TEMPLATE = """#set($pet = $input.path('$'))
{"petName": "$pet.name", "age": $input.json('$.age'), "owner": $input.json('$.owner.id'),
 "tags": $input.json('$.tags'), "requestId": "$context.requestId", "stage": "$context.stage"}"""
RESPONSE_TEMPLATE = """{"result": $input.json('$'), "ok": $input.json('$.ok')}"""
MODEL = {
    "type": "object",
    "required": ["name", "age"],
    "properties": {
        "name": {"type": "string", "maxLength": 64},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
        "owner": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
    },
}


def transform_config(backend: str) -> GatewayConfig:
    plain = IntegrationConfig(type=IntegrationType.HTTP, uri=f"{backend}/pets", http_method="POST")
    templated = IntegrationConfig(
        type=IntegrationType.HTTP,
        uri=f"{backend}/pets",
        http_method="POST",
        request_templates=frozen_map({"application/json": REQUEST_TEMPLATE}),
        request_parameters=frozen_map(
            {
                "integration.request.querystring.kind": "method.request.querystring.kind",
                "integration.request.header.Content-Type": "'application/json'",
            }
        ),
        responses=(
            IntegrationResponseConfig(
                200,
                None,
                frozen_map({"method.response.header.X-Backend-Ok": "integration.response.body.ok"}),
                frozen_map({"application/json": RESPONSE_TEMPLATE}),
            ),
        ),
    )
    mock = IntegrationConfig(type=IntegrationType.MOCK, mock=MockResponse(200, body='{"ok":true}'))
    validation = RequestValidation(
        required=("method.request.header.X-Trace", "method.request.querystring.kind"),
        models=MappingProxyType({"application/json": MODEL}),
    )
    api = ApiConfig(
        name="tplbench",
        id="tplbench01",
        kind=ApiKind.REST,
        stages=(StageConfig("dev"),),
        routes=(
            RouteConfig(method="POST", path="/http", integration=plain),
            RouteConfig(method="POST", path="/http-tpl", integration=templated),
            RouteConfig(method="POST", path="/open", integration=mock),
            RouteConfig(method="POST", path="/valid", integration=mock, validation=validation),
        ),
    )
    return GatewayConfig(apis=(api,), account_throttle=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Portway with the transform benchmark's routes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--backend", default="http://127.0.0.1:8081")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port, transform_config(args.backend.rstrip("/"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
