"""Portway's serverless-wsgi translation against the plugin's own code, on the same events.

The serverless-wsgi plugin (npm package ``serverless-wsgi``, installed by scripts/test.sh from
tests/js/package-lock.json) ships the Python module that runs on Lambda, ``serverless_wsgi.py``.
This test loads that module from node_modules (it is not copied into this repository) and feeds
it and :mod:`routes.integrations.wsgi_adapter` identical Lambda events built by Portway's own event
builders, for a Flask app: the answers must be the same. The one deliberate difference (a request
header sent several times reaches the app comma-joined, the plugin keeps the last value) is
checked on its own.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from flask import Flask, jsonify, make_response, request

from routes.integrations.wsgi_adapter import handle_request
from server.events import RequestInfo, http_v2_event, rest_v1_event
from server.messages import HttpRequest

PLUGIN = (
    Path(__file__).resolve().parents[1] / "js" / "node_modules" / "serverless-wsgi" / "serverless_wsgi.py"
)
# The plugin puts the stage in SCRIPT_NAME only for execute-api hosts, where the URL carries the
# stage; Portway's REST URLs always carry it, so the parity events use such a host.
AWS_HOST = "abc123.execute-api.us-east-1.amazonaws.com"


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    assert PLUGIN.is_file(), f"{PLUGIN} missing: run npm ci --prefix tests/js (scripts/test.sh does)"
    spec = importlib.util.spec_from_file_location("serverless_wsgi_plugin", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flask_app() -> Flask:
    app = Flask("parity")

    @app.route("/echo/<name>", methods=["GET", "POST", "PUT"])
    def echo(name: str) -> Any:
        response = make_response(
            jsonify(
                name=name,
                method=request.method,
                args=request.args.to_dict(flat=False),
                body=request.get_data(as_text=True),
                content_type=request.content_type,
                cookies=request.cookies,
                script_name=request.environ.get("SCRIPT_NAME"),
                path_info=request.environ.get("PATH_INFO"),
                url=request.url,
                remote=request.remote_addr,
                agent=request.headers.get("User-Agent"),
            )
        )
        response.set_cookie("one", "1")
        response.set_cookie("two", "2")
        response.headers["X-Custom"] = "yes"
        return response

    @app.route("/image")
    def image() -> Any:
        return make_response(bytes(range(256)), 200, {"Content-Type": "image/png"})

    @app.route("/missing")
    def missing() -> Any:
        return make_response(jsonify(error="nope"), 404)

    return app


def info(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    stage_prefix: str = "/dev",
    host: str = AWS_HOST,
) -> RequestInfo:
    request = HttpRequest(
        method=method,
        raw_path=stage_prefix + path,
        query_string=query,
        headers=(("Host", host), ("User-Agent", "parity/1"), *headers),
        body=body,
        source_ip="127.0.0.1",
        host=host,
    )
    return RequestInfo(
        request=request,
        api_id="abc123",
        account_id="123456789012",
        stage=stage_prefix.strip("/") or "$default",
        stage_prefix=stage_prefix,
        path=path,
        resource="/{proxy+}",
        route_key="ANY /{proxy+}",
        path_parameters={"proxy": path.lstrip("/")},
        stage_variables={},
        request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        extended_request_id="BFHPhFe3IAMF95g=",
        now_ms=1_700_000_000_000,
    )


CONTEXT = SimpleNamespace(function_name="parity", aws_request_id="c6af9ac6", memory_limit_in_mb=128)

REQUESTS = {
    "get": info("GET", "/echo/ada", query="a=1&a=2&b=x%20y"),
    "post-form": info(
        "POST",
        "/echo/bob",
        headers=(("Content-Type", "application/x-www-form-urlencoded"),),
        body=b"k=v&w=%C3%A9",
    ),
    "put-json": info("PUT", "/echo/cy", headers=(("Content-Type", "application/json"),), body=b'{"a": 1}'),
    "cookies": info("GET", "/echo/di", headers=(("Cookie", "s=1; t=2"),)),
    "binary": info("GET", "/image"),
    "not-found": info("GET", "/missing"),
    "flask-404": info("GET", "/nowhere"),
}


def normalised(result: dict[str, Any]) -> dict[str, Any]:
    """Header-name casing aside (the plugin varies it to carry several Set-Cookie values in the
    single-value map), the answer as a client would see it."""
    out = dict(result)
    for key in ("headers", "multiValueHeaders"):
        if key in out:
            merged: dict[str, list[str]] = {}
            for name, value in out[key].items():
                merged.setdefault(name.lower(), []).extend(value if isinstance(value, list) else [value])
            out[key] = {name: sorted(values) for name, values in merged.items()}
    if out.get("isBase64Encoded"):
        out["body"] = base64.b64decode(out["body"])
    return out


@pytest.mark.parametrize("name", list(REQUESTS))
@pytest.mark.parametrize("shape", ["rest", "http-v1", "http-v2"])
def test_same_answer_as_the_plugin(plugin: ModuleType, name: str, shape: str) -> None:
    request = REQUESTS[name]
    if shape != "rest":  # see test_the_deliberate_differences (3)
        request = dataclasses.replace(
            request,
            request=dataclasses.replace(
                request.request, headers=(("Host", "127.0.0.1:3000"), *request.request.headers[1:])
            ),
        )
    if shape == "rest":
        event = rest_v1_event(request)
    elif shape == "http-v1":
        request.stage_prefix, request.stage = "", "$default"
        event = rest_v1_event(request, http_api_v1=True)
    else:
        request.stage_prefix, request.stage = "", "$default"
        event = http_v2_event(request)
    app = flask_app()
    theirs = plugin.handle_request(app, event, CONTEXT)
    ours = handle_request(app, event, CONTEXT, env={})
    assert normalised(ours) == normalised(theirs)


def test_the_deliberate_differences(plugin: ModuleType) -> None:
    """(1) A request header sent several times reaches the app comma-joined (the plugin keeps the
    last value); (2) on Portway's own host a REST app's SCRIPT_NAME is the stage, because Portway's
    REST URLs carry it as execute-api URLs do (the plugin gives "" for non-AWS hosts); (3) an HTTP
    API's ``$default`` stage is not in its URLs, so it is not in SCRIPT_NAME (the plugin gives
    ``/$default`` on execute-api hosts, and Flask's url_for then builds links that do not route)."""
    app = Flask("headers")
    app.add_url_rule("/echo/<n>", "e", lambda n: request.headers.get("X-Forwarded-For", ""))
    app.add_url_rule("/script", "s", lambda: request.environ["SCRIPT_NAME"])
    twice = (("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-For", "10.0.0.2"))
    event = rest_v1_event(info("GET", "/echo/x", headers=twice))
    theirs = plugin.handle_request(app, event, CONTEXT)
    ours = handle_request(app, event, CONTEXT, env={})
    assert (theirs["body"], ours["body"]) == ("10.0.0.2", "10.0.0.1, 10.0.0.2")
    event = rest_v1_event(info("GET", "/script", host="127.0.0.1:3000"))
    assert plugin.handle_request(app, event, CONTEXT).get("body", "") == ""
    assert handle_request(app, event, CONTEXT, env={})["body"] == "/dev"
    r = info("GET", "/script", stage_prefix="")
    r.stage = "$default"
    event = http_v2_event(r)
    assert plugin.handle_request(app, event, CONTEXT)["body"] == "/$default"
    assert handle_request(app, event, CONTEXT, env={}).get("body", "") == ""
