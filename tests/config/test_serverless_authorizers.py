"""serverless.yml Lambda authorizers: ``http.authorizer`` (function name, ARN of a function of
this service, ``{name, type, identitySource, resultTtlInSeconds, identityValidationExpression}``),
``provider.httpApi.authorizers.{name}`` of ``type: request``, the websocket ``$connect``
``authorizer``, ``provider.apiGateway.apiKeySourceType``; and the forms refused with their
locations."""

from __future__ import annotations

import textwrap
from pathlib import Path

from server.config.load import load_config
from server.config.model import ApiKind, AuthorizerType, GatewayConfig, RouteConfig
from tests.config.test_serverless import problems


def load(tmp_path: Path, text: str) -> GatewayConfig:
    (tmp_path / "handler.py").write_text("def f(event, context):\n    return {}\n")
    path = tmp_path / "serverless.yml"
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def routes(config: GatewayConfig, kind: ApiKind) -> dict[str, RouteConfig]:
    (api,) = [api for api in config.apis if api.kind is kind]
    return {route.route_key: route for route in api.routes}


def test_rest_forms(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: app
        provider: {name: aws, stage: dev, timeout: 20, apiGateway: {apiKeySourceType: AUTHORIZER}}
        functions:
          auth:
            handler: handler.auth
          auth2:
            handler: handler.auth
          auth3:
            handler: handler.auth
          f:
            handler: handler.f
            events:
              - http: {path: a, method: get, authorizer: auth}
              - http: {path: b, method: get, authorizer: 'arn:aws:lambda:us-east-1:1:function:app-dev-auth'}
              - http:
                  path: c
                  method: get
                  authorizer:
                    name: auth2
                    type: request
                    identitySource: method.request.header.X-User, method.request.querystring.t
                    resultTtlInSeconds: 0
              - http:
                  path: d
                  method: get
                  authorizer:
                    {name: auth3, identityValidationExpression: '^Bearer .+$', resultTtlInSeconds: 60}
        """,
    )
    (rest,) = config.apis
    assert rest.api_key_source == "AUTHORIZER"
    by_key = routes(config, ApiKind.REST)
    a, b = by_key["GET /a"].authorizer, by_key["GET /b"].authorizer
    assert a is not None and a is b  # one authorizer (one cache) for the same declaration
    assert a.type is AuthorizerType.TOKEN and a.ttl_s == 300
    assert a.identity_sources == ("method.request.header.Authorization",)
    assert a.function is not None and a.function.handler == "handler.auth"
    assert a.function.function_name == "app-dev-auth" and a.function.timeout_ms == 20_000
    c = by_key["GET /c"].authorizer
    assert c is not None and c.type is AuthorizerType.REQUEST and c.ttl_s == 0
    assert c.identity_sources == ("method.request.header.X-User", "method.request.querystring.t")
    d = by_key["GET /d"].authorizer
    assert d is not None and (d.identity_validation, d.ttl_s) == ("^Bearer .+$", 60)


def test_http_api_request_authorizer(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: app
        provider:
          name: aws
          httpApi:
            authorizers:
              custom:
                type: request
                functionName: auth
                identitySource: [$request.header.Authorization, $request.querystring.tenant]
                resultTtlInSeconds: 30
                enableSimpleResponses: true
                payloadVersion: '2.0'
              legacy:
                type: request
                functionName: auth
                identitySource: $request.header.Authorization
                payloadVersion: '1.0'
        functions:
          auth:
            handler: handler.auth
          f:
            handler: handler.f
            events:
              - httpApi: {path: /a, method: get, authorizer: {name: custom}}
              - httpApi: {path: /b, method: get, authorizer: {name: legacy}}
        """,
    )
    by_key = routes(config, ApiKind.HTTP)
    custom, legacy = by_key["GET /a"].authorizer, by_key["GET /b"].authorizer
    assert custom is not None and legacy is not None
    assert (custom.name, custom.type, custom.ttl_s, custom.simple_responses, custom.payload_format) == (
        "custom",
        AuthorizerType.REQUEST,
        30,
        True,
        "2.0",
    )
    assert custom.identity_sources == ("$request.header.Authorization", "$request.querystring.tenant")
    assert (legacy.payload_format, legacy.simple_responses, legacy.ttl_s) == ("1.0", False, 300)


def test_websocket_connect_authorizer(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: app
        provider: {name: aws}
        functions:
          auth:
            handler: handler.auth
          f:
            handler: handler.f
            events:
              - websocket:
                  route: $connect
                  authorizer: {name: auth, identitySource: [route.request.querystring.token]}
          g:
            handler: handler.f
            events:
              - websocket: {route: $disconnect}
        """,
    )
    connect = routes(config, ApiKind.WEBSOCKET)["$connect"].authorizer
    assert connect is not None and connect.type is AuthorizerType.REQUEST
    assert connect.identity_sources == ("route.request.querystring.token",)
    assert connect.ttl_s == 0  # AWS keeps no WebSocket authorizer cache unless asked


def test_websocket_default_identity_source(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: app
        provider: {name: aws}
        functions:
          auth: {handler: handler.auth}
          f:
            handler: handler.f
            events: [{websocket: {route: $connect, authorizer: auth}}]
        """,
    )
    connect = routes(config, ApiKind.WEBSOCKET)["$connect"].authorizer
    assert connect is not None and connect.identity_sources == ("route.request.header.Auth",)


def test_refused_forms(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("")
    found = problems(
        tmp_path,
        """
        service: app
        provider:
          name: aws
          apiGateway: {apiKeySourceType: QUERY}
          httpApi:
            authorizers:
              nofn: {type: request, identitySource: $request.header.A}
              badsrc: {type: request, functionName: auth, identitySource: method.request.header.A}
        functions:
          auth:
            handler: handler.auth
          f:
            handler: handler.f
            events:
              - http: {path: a, method: get, authorizer: 'arn:aws:lambda:us-east-1:1:function:elsewhere'}
              - http: {path: b, method: get, authorizer: missing}
              - http: {path: c, method: get, authorizer: {name: auth, type: cognito}}
              - http: {path: d, method: get, authorizer: {name: auth, resultTtlInSeconds: 4000}}
              - http: {path: e, method: get, authorizer: {name: auth, type: request, resultTtlInSeconds: 0}}
              - http: {path: f, method: get, authorizer: {name: auth, type: request, resultTtlInSeconds: 5}}
              - httpApi: {path: /a, method: get, authorizer: {name: nofn}}
              - httpApi: {path: /b, method: get, authorizer: {name: badsrc}}
        """,
    )
    auth = "functions.f.events"
    expected = {
        f"{auth}[0].http.authorizer": "a Lambda function outside this service cannot run locally",
        f"{auth}[1].http.authorizer": "no function 'missing' in this service",
        f"{auth}[2].http.authorizer.type": "use token or request",
        f"{auth}[3].http.authorizer.resultTtlInSeconds": "0 (no caching) to 3600",
        "provider.httpApi.authorizers.nofn.functionArn": "name the authorizer's function",
        "provider.httpApi.authorizers.badsrc.identitySource": "not an identity source of a HTTP API",
        "provider.apiGateway.apiKeySourceType": "use HEADER or AUTHORIZER",
    }
    for location, fragment in expected.items():
        assert any(where == location and fragment in message for where, message in found), (location, found)
    # The same function with other settings under one name: one authorizer per name, as on AWS.
    assert any(where == f"{auth}[5].http.authorizer" and "other settings" in m for where, m in found), found
    assert not any(where.startswith(f"{auth}[4]") for where, _ in found), found


def test_the_example_in_the_docs_loads(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    blocks = [block.split("```", 1)[0] for block in docs.split("```yaml\n")[1:]]
    (text,) = [block for block in blocks if "service:" in block and "enableSimpleResponses" in block]
    config = load(tmp_path, text)
    kinds = {api.kind: api for api in config.apis}
    assert kinds[ApiKind.REST].api_key_source == "AUTHORIZER"
    assert all(route.authorizer is not None for api in config.apis for route in api.routes)
