"""Native format: the API-level ``authorizers:`` map (every type), route ``authorizer`` /
``authorizationScopes``, ``apiKeySource``; load-time checks with their locations."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.config import authorizer_rules
from server.config.load import load_config
from server.config.model import ApiKind, AuthorizerType, GatewayConfig, Isolation
from tests.config.test_native_errors import problems


def load(tmp_path: Path, text: str) -> GatewayConfig:
    (tmp_path / "auth.py").write_text("def check(event, context):\n    return {}\n")
    path = tmp_path / "portway.yaml"
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def document(kind: str, authorizers: str, routes: str, api: str = "") -> str:
    return (
        f"portway: 1\napis:\n  - name: pets\n    type: {kind}\n{api}"
        f"    authorizers:\n{textwrap.indent(textwrap.dedent(authorizers), '      ')}"
        f"    routes:\n{textwrap.indent(textwrap.dedent(routes), '      ')}"
    )


def test_lambda_authorizers_built(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        document(
            "rest",
            """
            tok: {type: token, function: auth.check, identityValidationExpression: "^Bearer .+$"}
            req:
              type: REQUEST
              function: {python: auth.check, isolation: inprocess, timeout: 2000, function: my-auth}
              identitySource: "method.request.header.X-User, method.request.querystring.tenant"
              resultTtlInSeconds: 0
            """,
            """
            GET /a: {python: auth.check, authorizer: tok}
            GET /b: {python: auth.check, authorizer: req, apiKeyRequired: true}
            GET /c: {mock: {body: c}, authorizer: tok}
            GET /open: auth.check
            """,
            api="    apiKeySource: AUTHORIZER\n",
        ),
    )
    (api,) = config.apis
    assert api.api_key_source == "AUTHORIZER"
    routes = {route.route_key: route for route in api.routes}
    tok, req = routes["GET /a"].authorizer, routes["GET /b"].authorizer
    assert tok is not None and req is not None
    assert routes["GET /c"].authorizer is tok  # one instance per declared authorizer (shared cache)
    assert routes["GET /open"].authorizer is None
    assert tok.type is AuthorizerType.TOKEN and tok.ttl_s == 300
    assert tok.identity_sources == ("method.request.header.Authorization",)  # AWS's default
    assert tok.identity_validation == "^Bearer .+$"
    assert tok.function is not None and tok.function.handler == "auth.check"
    assert req.type is AuthorizerType.REQUEST and req.ttl_s == 0
    assert req.identity_sources == ("method.request.header.X-User", "method.request.querystring.tenant")
    assert req.function is not None
    assert (req.function.isolation, req.function.timeout_ms, req.function.function_name) == (
        Isolation.INPROCESS,
        2000,
        "my-auth",
    )


def test_http_api_authorizer_defaults_to_payload_2(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        document(
            "http",
            """
            a: {type: request, function: auth.check, identitySource: [$request.header.A],
                simpleResponses: true}
            b: {type: request, function: auth.check, identitySource: $request.header.A, payloadFormat: 1.0}
            """,
            """
            GET /a: {python: auth.check, authorizer: a}
            GET /b: {python: auth.check, authorizer: b}
            """,
        ),
    )
    routes = {route.route_key: route for route in config.apis[0].routes}
    a, b = routes["GET /a"].authorizer, routes["GET /b"].authorizer
    assert a is not None and (a.payload_format, a.simple_responses) == ("2.0", True)
    assert b is not None and b.payload_format == "1.0"


def test_jwt_and_cognito_fields_map_to_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The JWT and Cognito implementations land separately; the mapping is this loader's.
    monkeypatch.setattr(authorizer_rules, "ENFORCED", frozenset(AuthorizerType))
    http = load(
        tmp_path,
        document(
            "http",
            """
            j:
              type: jwt
              identitySource: $request.header.Authorization
              issuer: https://issuer.example
              audience: [app1, app2]
              jwksUri: https://issuer.example/jwks
              algorithms: [RS256, ES256]
            """,
            """
            GET /a: {python: auth.check, authorizer: j, authorizationScopes: [read]}
            """,
        ),
    )
    (route,) = http.apis[0].routes
    jwt = route.authorizer
    assert jwt is not None and jwt.type is AuthorizerType.JWT and route.authorization_scopes == ("read",)
    assert (jwt.issuer, jwt.audiences, jwt.jwks_uri, jwt.algorithms) == (
        "https://issuer.example",
        ("app1", "app2"),
        "https://issuer.example/jwks",
        ("RS256", "ES256"),
    )
    rest = load(
        tmp_path,
        document(
            "rest",
            "c: {type: cognito, userPoolArns: ['arn:aws:cognito-idp:us-east-1:1:userpool/p']}\n",
            "GET /a: {python: auth.check, authorizer: c}\n"
            "GET /b: {python: auth.check, authorizer: aws_iam}\n",
        ),
    )
    routes = {route.route_key: route for route in rest.apis[0].routes}
    cognito, iam = routes["GET /a"].authorizer, routes["GET /b"].authorizer
    assert cognito is not None and cognito.type is AuthorizerType.COGNITO_USER_POOLS
    assert cognito.user_pool_arns == ("arn:aws:cognito-idp:us-east-1:1:userpool/p",)
    assert iam is not None and iam.type is AuthorizerType.AWS_IAM


R = 'apis[0].routes["GET /a"]'
A = "apis[0].authorizers"

CASES = [
    # (kind, authorizers, routes, location, message fragment)
    (
        "rest",
        "tok: {type: token, function: auth.check}",
        "GET /a: {python: auth.check, authorizer: tk}",
        f"{R}.authorizer",
        "no authorizer named 'tk' in this API's authorizers (did you mean 'tok'?)",
    ),
    (
        "rest",
        "tok: {type: token}",
        "GET /a: {python: auth.check, authorizer: tok}",
        f"{A}.tok.function",
        "needs a function",
    ),
    (
        "rest",
        "tok: {type: token, function: auth.check, identityValidationExpression: '(['}",
        "GET /a: {python: auth.check, authorizer: tok}",
        f"{A}.tok.identityValidationExpression",
        "not a valid regular expression",
    ),
    (
        "rest",
        "tok: {type: token, function: auth.check, resultTtlInSeconds: 3601}",
        "GET /a: {python: auth.check, authorizer: tok}",
        f"{A}.tok.resultTtlInSeconds",
        "3600",
    ),
    (
        "rest",
        "req: {type: request, function: auth.check}",
        "GET /a: {python: auth.check, authorizer: req}",
        f"{A}.req.identitySource",
        "needs at least one identity source",
    ),
    (
        "rest",
        "req: {type: request, function: auth.check, identitySource: $request.header.A}",
        "GET /a: {python: auth.check, authorizer: req}",
        f"{A}.req.identitySource",
        "not an identity source",
    ),
    (
        "rest",
        "req: {type: request, function: auth.check, identitySource: context.nope}",
        "GET /a: {python: auth.check, authorizer: req}",
        f"{A}.req.identitySource",
        "unknown context variable",
    ),
    (
        "rest",
        "tok: {type: token, function: auth.check, identitySource: method.request.querystring.t}",
        "GET /a: {python: auth.check, authorizer: tok}",
        f"{A}.tok.identitySource",
        "reads a header",
    ),
    (
        "http",
        "tok: {type: token, function: auth.check}",
        "GET /a: {python: auth.check, authorizer: tok}",
        f"{A}.tok",
        "applies to REST APIs",
    ),
    (
        "http",
        "r: {type: request, function: auth.check, identitySource: $request.header.A, payloadFormat: 1.0, "
        "simpleResponses: true}",
        "GET /a: {python: auth.check, authorizer: r}",
        f"{A}.r.simpleResponses",
        "need payloadFormat 2.0",
    ),
    (
        "rest",
        "r: {type: request, function: auth.check, identitySource: method.request.header.A, "
        "payloadFormat: 2.0}",
        "GET /a: {python: auth.check, authorizer: r}",
        f"{A}.r.payloadFormat",
        "HTTP API authorizers only",
    ),
    (
        "rest",
        "tok: {type: token, function: auth.check}",
        "GET /a: {python: auth.check, authorizer: tok, authorizationScopes: [read]}",
        f"{R}.authorizationScopes",
        "jwt or cognito",
    ),
    (
        "rest",
        "tok: {type: tokn, function: auth.check}",
        "GET /a: {python: auth.check, authorizer: tok}",
        f"{A}.tok.type",
        "use token, request, jwt, cognito or iam",
    ),
]


@pytest.mark.parametrize(("kind", "authorizers", "routes", "location", "fragment"), CASES)
def test_problems(
    tmp_path: Path, kind: str, authorizers: str, routes: str, location: str, fragment: str
) -> None:
    (tmp_path / "auth.py").write_text("")
    found = problems(tmp_path, document(kind, authorizers + "\n", routes + "\n"))
    assert any(where == location and fragment in message for where, message in found), found


def test_websocket_authorizes_on_connect_only(tmp_path: Path) -> None:
    (tmp_path / "auth.py").write_text("")
    found = problems(
        tmp_path,
        document(
            "websocket",
            "ws: {type: request, function: auth.check, identitySource: route.request.header.Auth}\n",
            "$connect: {python: auth.check, authorizer: ws}\nsend: {python: auth.check, authorizer: ws}\n",
        ),
    )
    assert found == [
        (
            "apis[0].routes.send.authorizer",
            "WebSocket APIs authorize on $connect only (it covers every later message)",
        )
    ]


def test_http_api_has_no_key_source(tmp_path: Path) -> None:
    (tmp_path / "auth.py").write_text("")
    found = problems(
        tmp_path,
        document("http", "{}\n", "GET /a: auth.check\n", api="    apiKeySource: AUTHORIZER\n").replace(
            "    authorizers:\n      {}\n", ""
        ),
    )
    assert [where for where, _ in found] == ["apis[0].apiKeySource"]


def test_websocket_identity_sources(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        document(
            "websocket",
            "ws: {type: request, function: auth.check, identitySource: "
            "[route.request.querystring.token, stageVariables.x, context.routeKey]}\n",
            "$connect: {python: auth.check, authorizer: ws}\n",
        ),
    )
    (route,) = config.apis[0].routes
    assert config.apis[0].kind is ApiKind.WEBSOCKET and route.authorizer is not None
