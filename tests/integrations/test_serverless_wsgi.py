"""serverless-wsgi projects served unchanged, end to end (real gateway, worker processes, aiohttp client).

``tests/fixtures/projects/flask-api`` is a project laid out like serverless/examples'
``aws-python-flask-api`` (written for these tests: public code is not vendored here), served unmodified.
"""

from __future__ import annotations

import base64
import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config.errors import ConfigError
from server.config.load import load_config

FLASK_EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "projects" / "flask-api"
Client = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def flask_example(aiohttp_client: Client) -> AsyncIterator[TestClient[Any, Any]]:
    config = load_config(FLASK_EXAMPLE / "serverless.yml", env={})
    assert config.warnings == ()
    yield await aiohttp_client(create_app(config))


async def test_flask_example_requests(flask_example: TestClient[Any, Any]) -> None:
    root = await flask_example.get("/")
    assert (root.status, await root.json()) == (200, {"message": "Flask behind serverless-wsgi"})
    assert root.headers["Content-Type"] == "application/json"
    put = await flask_example.put("/notes/todo", json={"text": "ship it"})
    assert (put.status, await put.json()) == (200, {"name": "todo", "text": "ship it"})
    got = await flask_example.get("/notes/todo")
    assert (got.status, await got.json()) == (200, {"name": "todo", "text": "ship it"})
    unknown = await flask_example.get("/notes/other")
    assert (unknown.status, await unknown.json()) == (404, {"error": "no such note"})
    missing = await flask_example.get("/nonexistent")
    assert (missing.status, await missing.json()) == (404, {"error": "Not found!"})
    wrong_method = await flask_example.post("/notes/todo")  # routed by Flask, not by the gateway
    assert wrong_method.status == 405


APP = """
from flask import Flask, jsonify, make_response, request, url_for

app = Flask(__name__)


@app.route("/echo/<name>", methods=["GET", "POST"])
def echo(name):
    response = make_response(jsonify(
        name=name,
        args=request.args.to_dict(flat=False),
        form=request.form.to_dict(),
        cookies=request.cookies,
        link=url_for("echo", name="x"),
        event_path=request.environ["serverless.event"].get("path"),
        function=request.environ["serverless.context"].function_name,
    ))
    response.set_cookie("one", "1")
    response.set_cookie("two", "2")
    return response


@app.route("/image")
def image():
    return make_response(bytes(range(256)), 200, {"Content-Type": "image/png"})
"""

REST_SERVICE = """
service: wsgi-rest
provider:
  name: aws
  runtime: python3.11
  stage: test
  apiGateway:
    binaryMediaTypes: ['image/png']
custom:
  wsgi:
    app: web/api.app
functions:
  api:
    handler: wsgi_handler.handler
    events:
      - http: ANY /
      - http: ANY /{proxy+}
"""


@pytest.fixture
async def rest_service(aiohttp_client: Client, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "api.py").write_text(APP)
    (tmp_path / "serverless.yml").write_text(REST_SERVICE)
    config = load_config(tmp_path / "serverless.yml", env={})
    assert config.warnings == ()
    yield await aiohttp_client(create_app(config))


async def test_rest_api_stage_cookies_forms_and_binary(rest_service: TestClient[Any, Any]) -> None:
    resp = await rest_service.post(
        "/test/echo/a%20b?x=1&x=2",
        data={"field": "value"},
        headers={"Cookie": "c1=v1; c2=v2"},
    )
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "name": "a b",
        "args": {"x": ["1", "2"]},
        "form": {"field": "value"},
        "cookies": {"c1": "v1", "c2": "v2"},
        "link": "/test/echo/x",  # SCRIPT_NAME is the stage, as on execute-api URLs
        "event_path": "/echo/a%20b",
        "function": "wsgi-rest-test-api",
    }
    # Both cookies reach the client (REST responses fold repeated headers into one line today).
    cookies = ", ".join(resp.headers.getall("Set-Cookie"))
    assert "one=1; Path=/" in cookies and "two=2; Path=/" in cookies
    image = await rest_service.get("/test/image", headers={"Accept": "image/png"})
    assert image.status == 200 and await image.read() == bytes(range(256))
    # Without a binary Accept, API Gateway returns the base64 text it was given.
    encoded = await rest_service.get("/test/image")
    assert base64.b64decode(await encoded.read()) == bytes(range(256))


async def test_http_api_repeated_set_cookie(aiohttp_client: Client, tmp_path: Path) -> None:
    """Payload 2.0: the plugin spreads repeated headers over letter casings; each reaches the client."""
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "api.py").write_text(APP)
    (tmp_path / "serverless.yml").write_text(REST_SERVICE.replace("- http: ANY /{proxy+}", "- httpApi: '*'"))
    client = await aiohttp_client(create_app(load_config(tmp_path / "serverless.yml", env={})))
    resp = await client.get("/echo/x", headers={"Cookie": "c1=v1"})
    assert resp.status == 200 and (await resp.json())["cookies"] == {"c1": "v1"}
    assert (await resp.json())["link"] == "/echo/x"  # $default stage: no script name
    assert sorted(value.split(";")[0] for value in resp.headers.getall("Set-Cookie")) == ["one=1", "two=2"]


def test_missing_custom_wsgi_app_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "serverless.yml").write_text(
        textwrap.dedent(
            """
            service: s
            provider: {name: aws}
            functions:
              api: {handler: wsgi_handler.handler, events: [{httpApi: '*'}]}
            """
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "serverless.yml", env={})
    assert [issue.location for issue in caught.value.issues] == ["custom.wsgi.app"]


def test_wsgi_app_module_not_found_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "serverless.yml").write_text(REST_SERVICE)
    config = load_config(tmp_path / "serverless.yml", env={})
    assert any("WSGI app module 'web/api' not found" in warning for warning in config.warnings)


ASGI_APP = """
from mangum import Mangum
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def item(request):
    response = JSONResponse({
        "id": request.path_params["id"],
        "q": request.query_params.getlist("q"),
        "body": (await request.body()).decode(),
        "cookie": request.cookies.get("c"),
    })
    response.set_cookie("one", "1")
    response.set_cookie("two", "2")
    return response


async def image(request):
    return Response(bytes(range(256)), media_type="image/png")


app = Starlette(routes=[Route("/items/{id}", item, methods=["GET", "POST"]), Route("/image", image)])
handler = Mangum(app, lifespan="off")
"""

ASGI_SERVICE = """
service: asgi
provider: {name: aws, runtime: python3.11}
functions:
  api:
    handler: main.handler
    events:
      - httpApi: '*'
"""


async def test_asgi_app_through_mangum_runs_unchanged(aiohttp_client: Client, tmp_path: Path) -> None:
    """ASGI on Lambda is an adapter in the function's own code (Mangum), no plugin: nothing to
    configure, and it runs in a worker like any handler."""
    (tmp_path / "main.py").write_text(ASGI_APP)
    (tmp_path / "serverless.yml").write_text(ASGI_SERVICE)
    config = load_config(tmp_path / "serverless.yml", env={})
    client = await aiohttp_client(create_app(config))
    resp = await client.post("/items/7?q=a&q=b", data=b"payload", headers={"Cookie": "c=3"})
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"id": "7", "q": ["a", "b"], "body": "payload", "cookie": "3"}
    assert sorted(value.split(";")[0] for value in resp.headers.getall("Set-Cookie")) == ["one=1", "two=2"]
    image = await client.get("/image")
    assert image.headers["Content-Type"] == "image/png" and await image.read() == bytes(range(256))


def test_deprecated_handler_spelling_still_works_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("app = None\n")
    (tmp_path / "serverless.yml").write_text(
        "service: s\nprovider: {name: aws}\ncustom: {wsgi: {app: app.app}}\n"
        "functions:\n  api: {handler: wsgi.handler, events: [{httpApi: '*'}]}\n"
    )
    config = load_config(tmp_path / "serverless.yml", env={})
    (route,) = config.apis[0].routes
    assert route.integration.handler == "wsgi_handler.handler"
    assert json.loads(route.integration.environment["_PORTWAY_WSGI"]) == {
        "app": "app.app",
        "textMimeTypes": [],
    }
    assert config.warnings == (
        'functions.api.handler: "wsgi.handler" is deprecated by serverless-wsgi: use "wsgi_handler.handler"',
    )
