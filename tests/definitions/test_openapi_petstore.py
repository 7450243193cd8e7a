"""An OpenAPI 3 document shaped like AWS's PetStore example, served end to end.

``tests/fixtures/openapi/petstore.yaml`` has the shape of the console's "Example API" (MOCK root page,
``http`` integrations to ``petstore.execute-api...``), written for these tests, plus an ``aws_proxy``
route bound to a local Python handler. Its HTTP targets are bound to a local backend through a
``--bindings`` file, as a user would serve an export against a local service.
"""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.config.errors import ConfigError
from server.config.load import load_config
from server.config.model import ApiKeyConfig, ApiKind, PlanStage, UsagePlanConfig

PETSTORE = Path(__file__).resolve().parents[1] / "fixtures" / "openapi" / "petstore.yaml"
Client = Callable[..., Awaitable[TestClient[Any, Any]]]
Server = Callable[..., Awaitable[TestServer]]
KEY = "petstoreKey0123456789abcd"


def petstore_backend() -> web.Application:
    """The demo backend's answers: a pets list, a created pet, one pet."""
    pets = [{"id": 1, "type": "dog", "price": 249.99}, {"id": 2, "type": "cat", "price": 124.99}]

    async def list_pets(request: web.Request) -> web.Response:
        return web.json_response(pets, headers={"X-Query": request.query_string})

    async def create(request: web.Request) -> web.Response:
        pet = await request.json()
        return web.json_response({"pet": pet, "message": "success"})

    async def one(request: web.Request) -> web.Response:
        return web.json_response(pets[int(request.match_info["id"]) - 1])

    app = web.Application()
    app.router.add_get("/petstore/pets", list_pets)
    app.router.add_post("/petstore/pets", create)
    app.router.add_get("/petstore/pets/{id}", one)
    return app


def bindings(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "bindings.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            functions:
              AdoptPet: {{handler: adopt.handler, codeUri: {PETSTORE.parent / "src"}}}
            endpoints:
              http://petstore.execute-api.us-east-1.amazonaws.com: http://127.0.0.1:{port}
            """
        )
    )
    return path


async def test_petstore_import_serves_mock_http_and_lambda_routes(
    tmp_path: Path, aiohttp_client: Client, aiohttp_server: Server
) -> None:
    backend = await aiohttp_server(petstore_backend())
    config = load_config(PETSTORE, bindings=bindings(tmp_path, backend.port))
    (api,) = config.apis
    assert (api.name, api.kind, api.stages[0].name) == ("PetStore", ApiKind.REST, "test")
    assert api.binary_media_types == ("image/png",)
    assert any("gateway-responses" in warning for warning in config.warnings)
    plan = UsagePlanConfig("p", "p", (PlanStage(api.id, "test"),))
    config = type(config)(
        apis=config.apis, usage_plans=(plan,), api_keys=(ApiKeyConfig("k", KEY, plans=("p",)),)
    )
    client = await aiohttp_client(create_app(config))

    root = await client.get("/test/")
    assert root.status == 200
    assert root.headers["Content-Type"].startswith("text/html")
    assert "Welcome to your Pet Store API" in await root.text()

    listed = await client.get("/test/pets?type=dog&page=1")
    assert (listed.status, (await listed.json())[0]["type"]) == (200, "dog")
    created = await client.post("/test/pets", json={"type": "cat", "price": 1.5})
    assert (created.status, await created.json()) == (
        200,
        {"pet": {"type": "cat", "price": 1.5}, "message": "success"},
    )
    one = await client.get("/test/pets/2")
    assert (one.status, (await one.json())["type"]) == (200, "cat")

    preflight = await client.options("/test/pets")
    assert preflight.status == 200
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST,GET,OPTIONS"
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"

    refused = await client.put("/test/adopt/7")
    assert (refused.status, await refused.json()) == (403, {"message": "Forbidden"})
    adopted = await client.put("/test/adopt/7", headers={"x-api-key": KEY})
    assert adopted.status == 200, await adopted.text()
    assert await adopted.json() == {
        "adopted": "7",
        "method": "PUT",
        "resource": "/adopt/{petId}",
        "function": "AdoptPet",
    }


def test_unbound_lambda_is_an_error_with_its_location() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(PETSTORE)
    (issue,) = info.value.issues
    assert issue.location == (
        'paths["/adopt/{petId}"].x-amazon-apigateway-any-method.x-amazon-apigateway-integration.uri'
    )
    assert "'AdoptPet' has no local handler" in issue.message
