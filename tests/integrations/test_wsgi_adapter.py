"""The serverless-wsgi translation (routes/integrations/wsgi_adapter.py): event -> environ -> result.

Expected values follow logandk/serverless-wsgi 3.1 (serverless_wsgi.py), the plugin the
``wsgi_handler.handler`` functions of serverless.yml projects are deployed with.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, make_response, request, url_for

from routes.integrations import wsgi_adapter
from routes.integrations.wsgi_adapter import (
    SETTINGS_VARIABLE,
    build_environ,
    handle_request,
    handler_from_environment,
    wsgi_result,
)
from server.config import serverless_wsgi

CONTEXT = object()


def v1_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "resource": "/{proxy+}",
        "path": "/items/a%20b",
        "httpMethod": "POST",
        "headers": {"Host": "127.0.0.1:3000", "Content-Type": "application/json", "X-Two": "2"},
        "multiValueHeaders": {
            "Host": ["127.0.0.1:3000"],
            "Content-Type": ["application/json"],
            "X-Two": ["1", "2"],
            "Cookie": ["a=1", "b=2"],
        },
        "queryStringParameters": {"q": "2"},
        "multiValueQueryStringParameters": {"q": ["1", "2"], "x y": ["é"]},
        "requestContext": {
            "stage": "dev",
            "path": "/dev/items/a%20b",
            "identity": {"sourceIp": "127.0.0.9"},
            "authorizer": {"principalId": "user-1", "claims": {"sub": "1"}},
        },
        "body": '{"n": 1}',
        "isBase64Encoded": False,
    }
    event.update(overrides)
    return event


def v2_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/hello/w%C3%B6rld",
        "rawQueryString": "a=1&a=2",
        "cookies": ["c=3", "d=4"],
        "headers": {"host": "127.0.0.1:3000", "content-type": "text/plain", "x-two": "1,2"},
        "requestContext": {
            "stage": "$default",
            "http": {"method": "PUT", "path": "/hello/wörld", "sourceIp": "127.0.0.8"},
        },
        "body": base64.b64encode(b"\x00\xffraw").decode(),
        "isBase64Encoded": True,
    }
    event.update(overrides)
    return event


def test_payload_v1_environ() -> None:
    environ = build_environ(v1_event(), CONTEXT, env={})
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["SCRIPT_NAME"] == "/dev"  # the URL carried the stage: url_for must keep it
    assert environ["PATH_INFO"] == "/items/a b"
    assert environ["QUERY_STRING"] == "q=1&q=2&x+y=%C3%A9"
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "8"
    assert environ["wsgi.input"].read() == b'{"n": 1}'
    assert environ["HTTP_X_TWO"] == "1, 2"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert environ["REMOTE_ADDR"] == "127.0.0.9"
    assert environ["REMOTE_USER"] == "user-1"
    assert environ["SERVER_NAME"] == "127.0.0.1:3000"
    assert (environ["SERVER_PORT"], environ["wsgi.url_scheme"]) == ("443", "https")  # no X-Forwarded-*
    authorizer = {"principalId": "user-1", "claims": {"sub": "1"}}
    assert environ["serverless.authorizer"] == environ["API_GATEWAY_AUTHORIZER"] == authorizer
    assert environ["serverless.event"] is environ["event"]
    assert environ["serverless.context"] is environ["context"] is CONTEXT


def test_payload_v1_without_multi_value_headers_and_forwarded_headers() -> None:
    headers = {"Host": "h", "X-Forwarded-Proto": "http", "X-Forwarded-Port": "3000"}
    environ = build_environ(v1_event(multiValueHeaders=None, headers=headers), CONTEXT, env={})
    assert (environ["SERVER_PORT"], environ["wsgi.url_scheme"]) == ("3000", "http")
    assert "HTTP_X_TWO" not in environ


def test_payload_v2_environ() -> None:
    environ = build_environ(v2_event(), CONTEXT, env={})
    assert environ["REQUEST_METHOD"] == "PUT"
    assert environ["SCRIPT_NAME"] == ""  # $default stage: no stage in the URL
    assert environ["PATH_INFO"] == "/hello/wörld".encode().decode("latin-1")  # PEP 3333 native string
    assert environ["QUERY_STRING"] == "a=1&a=2"
    assert environ["HTTP_COOKIE"] == "c=3; d=4"
    assert environ["wsgi.input"].read() == b"\x00\xffraw"
    assert environ["CONTENT_LENGTH"] == "5"
    assert environ["REMOTE_ADDR"] == "127.0.0.8"
    assert environ["REMOTE_USER"] == ""


def test_v2_named_stage_moves_the_stage_into_script_name() -> None:
    context = {"stage": "beta", "http": {"method": "GET", "sourceIp": "1.2.3.4"}}
    environ = build_environ(v2_event(rawPath="/beta/x", requestContext=context), CONTEXT, env={})
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/beta", "/x")


def test_strip_stage_path_and_base_path() -> None:
    assert build_environ(v1_event(), CONTEXT, env={"STRIP_STAGE_PATH": "yes"})["SCRIPT_NAME"] == ""
    event = v1_event(path="/api/items", requestContext={"stage": "dev", "path": "/api/items"})
    environ = build_environ(event, CONTEXT, env={"API_GATEWAY_BASE_PATH": "api"})
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/api", "/items")
    # A REST API reached without the stage in the URL (custom domain): no script name.
    event = v1_event(path="/dev/x", requestContext={"stage": "dev", "path": "/dev/x"})
    assert build_environ(event, CONTEXT, env={})["SCRIPT_NAME"] == ""


def test_text_and_binary_bodies() -> None:
    text = wsgi_result(200, [("Content-Type", "application/json")], b'{"a":1}', multi_value=False)
    assert text == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": '{"a":1}',
        "isBase64Encoded": False,
    }
    latin = wsgi_result(200, [("Content-Type", "text/plain; charset=latin-1")], b"\xe9", multi_value=False)
    assert latin["body"] == "é"
    png = wsgi_result(200, [("Content-Type", "image/png")], b"\x89PNG", multi_value=True)
    assert png["isBase64Encoded"] is True and base64.b64decode(png["body"]) == b"\x89PNG"
    assert png["multiValueHeaders"] == {"Content-Type": ["image/png"]}
    gzipped = [("Content-Type", "text/html"), ("Content-Encoding", "gzip")]
    assert wsgi_result(200, gzipped, b"\x1f\x8b", multi_value=False)["isBase64Encoded"] is True
    custom = [("Content-Type", "application/x-custom")]
    assert wsgi_result(200, custom, b"hi", multi_value=False)["isBase64Encoded"] is True
    as_text = wsgi_result(200, custom, b"hi", multi_value=False, text_mime_types=["application/x-custom"])
    assert as_text["body"] == "hi" and as_text["isBase64Encoded"] is False
    untyped = wsgi_result(204, [], b"", multi_value=False)
    assert untyped == {"statusCode": 204, "headers": {}}  # no body key at all, as the plugin


def test_repeated_response_headers() -> None:
    cookies = [("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Set-Cookie", "c=3"), ("X", "y")]
    multi = wsgi_result(200, cookies, b"", multi_value=True)
    assert multi["multiValueHeaders"] == {"Set-Cookie": ["a=1", "b=2", "c=3"], "X": ["y"]}
    single = wsgi_result(200, cookies, b"", multi_value=False)
    # The plugin's trick for a single-valued map: one letter casing per value.
    assert single["headers"] == {"set-cookie": "a=1", "Set-cookie": "b=2", "sEt-cookie": "c=3", "X": "y"}


def flask_app() -> Flask:
    app = Flask("wsgi_test")

    @app.route("/items/<name>", methods=["POST"])
    def items(name: str) -> Any:
        response = make_response(
            jsonify(
                name=name,
                json=request.get_json(),
                q=request.args.getlist("q"),
                cookies=dict(request.cookies),
                link=url_for("items", name="x"),
                user=request.environ["serverless.authorizer"]["principalId"],
            )
        )
        response.set_cookie("s1", "v1")
        response.set_cookie("s2", "v2")
        return response

    @app.route("/hello/<path:rest>", methods=["PUT"])
    def hello(rest: str) -> Any:
        return make_response(
            request.get_data() + rest.encode(), 201, {"Content-Type": "application/octet-stream"}
        )

    return app


def test_flask_app_through_payload_v1() -> None:
    result = handle_request(flask_app(), v1_event(), CONTEXT, env={})
    assert result["statusCode"] == 200 and result["isBase64Encoded"] is False
    assert json.loads(result["body"]) == {
        "name": "a b",
        "json": {"n": 1},
        "q": ["1", "2"],
        "cookies": {"a": "1", "b": "2"},
        "link": "/dev/items/x",
        "user": "user-1",
    }
    assert [c.split(";")[0] for c in result["multiValueHeaders"]["Set-Cookie"]] == ["s1=v1", "s2=v2"]


def test_flask_app_through_payload_v2() -> None:
    result = handle_request(flask_app(), v2_event(), CONTEXT, env={})
    assert result["statusCode"] == 201 and result["isBase64Encoded"] is True
    assert base64.b64decode(result["body"]) == b"\x00\xffraw" + "wörld".encode()


def test_warmup_events_skip_the_app() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raise AssertionError("called")

    assert handle_request(app, {"source": "serverless-plugin-warmup"}, CONTEXT, env={}) == {}
    assert handle_request(app, {"source": "aws.events"}, CONTEXT, env={}) == {}


def test_app_iterable_is_closed_and_write_callable_works() -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Any:
            return iter([b"b"])

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        write = start_response("202 Accepted", [("Content-Type", "text/plain")])
        write(b"a")
        return Body()

    result = handle_request(app, v1_event(), CONTEXT, env={})
    assert (result["statusCode"], result["body"], closed) == (202, "ab", [True])


def test_handler_from_environment(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "wsgi_fx_site.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'application/x-thing')])\n"
        "    return [environ['PATH_INFO'].encode()]\n"
    )
    environ = {
        SETTINGS_VARIABLE: json.dumps(
            {"app": "web/wsgi_fx_site.app", "textMimeTypes": ["application/x-thing"]}
        )
    }
    handler = handler_from_environment(environ, str(tmp_path))
    assert handler is not None and SETTINGS_VARIABLE not in environ  # user code never sees it
    result = handler(v2_event(rawPath="/p"), CONTEXT)
    assert (result["statusCode"], result["body"]) == (200, "/p")
    assert handler_from_environment({}, str(tmp_path)) is None


def test_app_that_cannot_be_imported_answers_the_plugins_500(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {SETTINGS_VARIABLE: json.dumps({"app": "missing_module.app"})}
    handler = handler_from_environment(environ, str(tmp_path))
    assert handler is not None
    assert "Unable to import app: 'missing_module.app'" in capsys.readouterr().err
    result = handler(v1_event(), CONTEXT)
    assert result["statusCode"] == 500
    assert result["multiValueHeaders"]["Content-Type"] == ["text/html; charset=utf-8"]
    assert "<p>Unable to import app: missing_module.app</p>" in result["body"]


def test_config_and_worker_agree_on_the_variable() -> None:
    assert serverless_wsgi._SETTINGS_VARIABLE == wsgi_adapter.SETTINGS_VARIABLE
