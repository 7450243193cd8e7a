"""Native format: every kind of problem is reported with its location, all of them at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.config.errors import ConfigError, ConfigIssue
from server.config.load import load_config


def problems(tmp_path: Path, text: str, stage: str | None = None) -> list[tuple[str, str]]:
    (tmp_path / "pets.py").write_text("")
    path = tmp_path / "portway.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as info:
        load_config(path, stage=stage)
    assert info.value.source == path
    return [(issue.location, issue.message) for issue in info.value.issues]


def routes_doc(routes: str, api: str = "") -> str:
    """A one-API document with the given (YAML, 6-space indented) routes and API keys."""
    return f"portway: 1\napis:\n  - name: pets\n{api}    routes:\n{routes}"


def only(found: list[tuple[str, str]]) -> tuple[str, str]:
    assert len(found) == 1, found
    return found[0]


# (routes, extra API keys, expected location, expected message fragment)
ROUTE_CASES = [
    (
        "      GET /pets: {python: pets.a, integration: {type: python, handler: pets.b}}\n",
        "",
        'apis[0].routes["GET /pets"]',
        "exactly one of: python, lambda, aws_proxy, http_proxy, http, mock, integration",
    ),
    (
        "      GET /pets: {integration: {type: python, timeout: 10, handler: pets.a}}\n",
        "",
        'apis[0].routes["GET /pets"].integration.timeout',
        "10 is less than the minimum of 50",
    ),
    (
        "      GET /pets: {integration: {type: python, timeout: 29001, handler: pets.a}}\n",
        "",
        'apis[0].routes["GET /pets"].integration.timeout',
        "outside 50..29000 ms (REST API)",
    ),
    (
        "      GET /pets: {integration: {type: python}}\n",
        "",
        'apis[0].routes["GET /pets"].integration',
        "missing required key 'handler'",
    ),
    (
        "      GET /pets: {integration: {type: http_proxy}}\n",
        "",
        'apis[0].routes["GET /pets"].integration',
        "missing required key 'uri'",
    ),
    (
        "      GET /pets: {integration: {type: soap, uri: 'http://x'}}\n",
        "",
        'apis[0].routes["GET /pets"].integration.type',
        "type: use python, lambda, aws_proxy, http_proxy, http or mock",
    ),
    (
        "      GET /pets: {python: pets.a, endpointUrl: 'http://127.0.0.1:1'}\n",
        "",
        'apis[0].routes["GET /pets"].endpointUrl',
        "'endpointUrl' does not apply to python integrations",
    ),
    (
        "      GET /pets: {python: pets.a, tiemout: 5}\n",
        "",
        'apis[0].routes["GET /pets"].tiemout',
        "unknown key 'tiemout' (did you mean 'timeout'?)",
    ),
    ("      GET /pets: not-a-handler\n", "", 'apis[0].routes["GET /pets"]', "a handler is module.function"),
    (
        "      GET /pets: {python: pets}\n",
        "",
        'apis[0].routes["GET /pets"].python',
        "a handler is module.function",
    ),
    ("      GET pets: pets.a\n", "", 'apis[0].routes["GET pets"]', "a route key is 'METHOD /path'"),
    (
        "      FETCH /pets: pets.a\n",
        "",
        'apis[0].routes["FETCH /pets"]',
        "method 'FETCH': use one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY",
    ),
    (
        "      GET /pets/{rest+}/x: pets.a\n",
        "",
        'apis[0].routes["GET /pets/{rest+}/x"]',
        "greedy parameter {rest+} must be the last segment",
    ),
    (
        "      GET /pets/id-{id}: pets.a\n",
        "",
        'apis[0].routes["GET /pets/id-{id}"]',
        "a parameter is a whole segment",
    ),
    (
        "      GET /a/{id}/b/{id}: pets.a\n",
        "",
        'apis[0].routes["GET /a/{id}/b/{id}"]',
        "path parameter {id} appears twice",
    ),
    ("      GET /a//b: pets.a\n", "", 'apis[0].routes["GET /a//b"]', "has an empty segment"),
    ("      GET /pets/: pets.a\n", "", 'apis[0].routes["GET /pets/"]', "has an empty segment"),
    (
        "      GET /pets?x: pets.a\n",
        "",
        'apis[0].routes["GET /pets?x"]',
        "segment 'pets?x': use letters, digits",
    ),
    (
        "      $default: pets.a\n",
        "",
        "apis[0].routes.$default",
        "the $default route exists only in HTTP APIs",
    ),
    (
        "      GET /pets: pets.a\n      get /pets: pets.b\n",
        "",
        'apis[0].routes["get /pets"]',
        "duplicate route 'GET /pets'",
    ),
    (
        "      GET /pets/{id}: pets.a\n      GET /pets/{petId}/toys: pets.b\n",
        "",
        'apis[0].routes["GET /pets/{petId}/toys"]',
        "{petId} conflicts with {id} of 'GET /pets/{id}'",
    ),
    (
        "      GET /pets: {mock: {status: 200}, timeout: 500}\n",
        "",
        'apis[0].routes["GET /pets"].timeout',
        "'timeout' does not apply to mock integrations",
    ),
    (
        "      GET /pets: {integration: {type: mock, handler: pets.a}}\n",
        "",
        'apis[0].routes["GET /pets"].integration.handler',
        "'handler' does not apply to mock integrations",
    ),
    (
        "      GET /pets: {mock: {status: 700}}\n",
        "",
        'apis[0].routes["GET /pets"].mock.status',
        "700 is greater than the maximum of 599",
    ),
    (
        "      GET /pets: {http_proxy: 'ftp://example.com'}\n",
        "",
        'apis[0].routes["GET /pets"].http_proxy',
        "starts with http:// or https://",
    ),
    (
        "      GET /pets/{id}: {http_proxy: 'http://h/{petId}'}\n",
        "",
        'apis[0].routes["GET /pets/{id}"].http_proxy',
        "{petId} is not a path parameter of this route (it has: {id})",
    ),
    (
        "      GET /pets: {http: {uri: 'http://${stageVars.host}/'}}\n",
        "",
        'apis[0].routes["GET /pets"].http.uri',
        "${stageVars.host}: only ${stageVariables.name} is substituted",
    ),
    (
        "      GET /pets: {python: pets.a, payloadFormat: '2.0'}\n",
        "",
        'apis[0].routes["GET /pets"].payloadFormat',
        "REST APIs send payload format 1.0 events",
    ),
    (
        "      GET /pets: pets.a\n",
        "    payloadFormat: '2.0'\n",
        "apis[0].payloadFormat",
        "REST APIs send payload format 1.0 events",
    ),
    (
        "      GET /pets: pets.a\n",
        "    routeSelectionExpression: $request.body.action\n",
        "apis[0].routeSelectionExpression",
        "routeSelectionExpression applies to WebSocket APIs only",
    ),
    (
        "      GET /pets: pets.a\n",
        "    defaults: {timeout: 30000}\n",
        "apis[0].defaults.timeout",
        "outside 50..29000 ms (REST API)",
    ),
    (
        "      GET /pets: pets.a\n",
        "    type: graphql\n",
        "apis[0].type",
        "'graphql' is not one of ['rest', 'http', 'websocket']",
    ),
    ("      GET /pets: pets.a\n", "    basePath: 'v 1'\n", "apis[0].basePath", "does not match"),
    (
        "      GET /pets: pets.a\n",
        "    stages: {'bad stage': {}}\n",
        'apis[0].stages["bad stage"]',
        "use letters, digits, '-' and '_' (at most 128)",
    ),
    ("      GET /pets: pets.a\n", f"    stages: [{'s' * 129}]\n", "apis[0].stages[0]", "(at most 128)"),
    (
        "      GET /pets: pets.a\n",
        "    stages: [$default]\n",
        "apis[0].stages[0]",
        "only HTTP APIs have a $default stage",
    ),
    (
        "      GET /pets: pets.a\n",
        "    stages: {dev: {variables: {bad-name: x}}}\n",
        "apis[0].stages.dev.variables.bad-name",
        "stage variable name 'bad-name'",
    ),
    (
        "      GET /pets: pets.a\n",
        "    stages: {dev: {variables: {host: 'a b'}}}\n",
        "apis[0].stages.dev.variables.host",
        "stage variable host='a b': values are 1..512 characters",
    ),
    (
        "      GET /pets: pets.a\n",
        "    stages: {dev: {variables: {host: [1]}}}\n",
        "apis[0].stages.dev.variables.host",
        "is not of type 'string', 'number', 'boolean'",
    ),
    (
        "      GET /pets: pets.a\n",
        "    stages: {dev: {vars: {}}}\n",
        "apis[0].stages.dev.vars",
        "unknown key 'vars' (did you mean 'variables'?)",
    ),
]


@pytest.mark.parametrize(("routes", "api", "location", "message"), ROUTE_CASES)
def test_each_problem_has_its_location(
    tmp_path: Path, routes: str, api: str, location: str, message: str
) -> None:
    found_location, found_message = only(problems(tmp_path, routes_doc(routes, api)))
    assert found_location == location
    assert message in found_message


HTTP_CASES = [
    (
        "      GET /x: {python: pets.a, apiKeyRequired: true}\n",
        'apis[0].routes["GET /x"].apiKeyRequired',
        "HTTP APIs have no API keys",
    ),
    (
        "      GET /x: {python: pets.a, timeout: 30001}\n",
        'apis[0].routes["GET /x"].timeout',
        "30001 is greater than the maximum of 30000",
    ),
    (
        "      GET /x: {python: pets.a, payloadFormat: '3.0'}\n",
        'apis[0].routes["GET /x"].payloadFormat',
        "is not one of",
    ),
]


@pytest.mark.parametrize(("routes", "location", "message"), HTTP_CASES)
def test_http_api_problems(tmp_path: Path, routes: str, location: str, message: str) -> None:
    found_location, found_message = only(problems(tmp_path, routes_doc(routes, "    type: http\n")))
    assert (found_location, message in found_message) == (location, True)


def test_websocket_only_settings(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        routes_doc(
            "      GET /x: {python: pets.a, routeResponse: true}\n", "    websocket: {idleTimeout: 10}\n"
        ),
    )
    assert found == [
        ("apis[0].websocket", "websocket applies to WebSocket APIs only"),
        ('apis[0].routes["GET /x"].routeResponse', "routeResponse applies to WebSocket routes only"),
    ]
    found = problems(
        tmp_path,
        routes_doc(
            "      $default: pets.a\n", "    type: websocket\n    websocket: {idleTimeout: 0, maxFrames: 1}\n"
        ),
    )
    assert found == [
        ("apis[0].websocket.maxFrames", "unknown key 'maxFrames' (did you mean 'maxFrameBytes'?)"),
        ("apis[0].websocket.idleTimeout", "0 is less than or equal to the minimum of 0"),
    ]


def test_websocket_problems(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        routes_doc(
            "      $connect: pets.a\n      $bad: pets.a\n"
            "      send: {python: pets.a, apiKeyRequired: true}\n",
            "    type: websocket\n    payloadFormat: '1.0'\n",
        ),
    )
    assert found == [
        (
            "apis[0].routes.$bad",
            "a WebSocket route key is $connect, $disconnect, $default or a name not "
            "starting with '$' (at most 128 characters)",
        ),
        ("apis[0].payloadFormat", "payloadFormat applies to REST and HTTP APIs"),
        ("apis[0].routes.send.apiKeyRequired", "WebSocket APIs check API keys on $connect only"),
    ]


def test_real_lambda_on_websocket_routes_is_not_available_yet(tmp_path: Path) -> None:
    found = problems(tmp_path, routes_doc("      $default: {lambda: chat}\n", "    type: websocket\n"))
    assert found == [
        (
            "apis[0].routes.$default.lambda",
            "real Lambda functions (lambda, aws_proxy) are not available on WebSocket routes yet; "
            "run the code locally with `python: module.function`",
        )
    ]


def test_websocket_selection_expression_is_compiled(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        routes_doc(
            "      $default: pets.a\n", "    type: websocket\n    routeSelectionExpression: ${request.body\n"
        ),
    )
    assert found == [
        ("apis[0].routeSelectionExpression", "route selection expression: '${request.body': unclosed '${'")
    ]


CLUSTER_CASES = [
    ("{heartbeat: 0}", [("cluster.heartbeat", "0 is less than or equal to the minimum of 0")]),
    ("{nodeTtl: fast}", [("cluster.nodeTtl", "'fast' is not of type 'number'")]),
    ("{heartbeat: true}", [("cluster.heartbeat", "True is not of type 'number'")]),
    ("{reaper: 1}", [("cluster.reaper", "unknown key 'reaper' (did you mean 'reaperInterval'?)")]),
    ("[1]", [("cluster", "[1] is not of type 'object'")]),
    (
        "{heartbeat: 3, nodeTtl: 3}",
        [
            (
                "cluster.nodeTtl",
                "nodeTtl (3 s) must be greater than heartbeat (3 s): a live node would be taken for "
                "dead between two heartbeats",
            )
        ],
    ),
    (
        "{heartbeat: 10}",  # against the default nodeTtl
        [
            (
                "cluster.nodeTtl",
                "nodeTtl (6 s) must be greater than heartbeat (10 s): a live node would be taken for "
                "dead between two heartbeats",
            )
        ],
    ),
    ("{heartbeat: 10, nodeTtl: -1}", [("cluster.nodeTtl", "-1 is less than or equal to the minimum of 0")]),
]


@pytest.mark.parametrize(("cluster", "expected"), CLUSTER_CASES)
def test_cluster_problems(tmp_path: Path, cluster: str, expected: list[tuple[str, str]]) -> None:
    assert problems(tmp_path, routes_doc("      GET /x: pets.a\n") + f"cluster: {cluster}\n") == expected


def test_document_level_problems(tmp_path: Path) -> None:
    found = problems(tmp_path, "portway: 2\napis: []\nextra: 1\n")
    assert found == [
        (
            "extra",
            "unknown key 'extra' "
            "(allowed: portway, region, accountId, cluster, throttle, throttleFailure, rateLimitHeaders, "
            "aws, usagePlans, apiKeys, iam, management, trustedProxies, apis)",
        ),
        ("apis", "[] should be non-empty"),
        ("portway", "1 was expected"),
    ]
    assert problems(tmp_path, "portway: 1\n") == [("", "missing required key 'apis'")]
    assert only(problems(tmp_path, "portway: 1\napis: [{routes: {GET /x: pets.a}}]\n")) == (
        "apis[0]",
        "missing required key 'name'",
    )


def test_across_apis(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        portway: 1
        apis:
          - {name: a, routes: {GET /x: pets.a}}
          - {name: a, basePath: a, routes: {GET /x: pets.b}}
          - {name: b, id: same, basePath: b, routes: {GET /x: pets.c}}
          - {name: c, id: same, basePath: c, routes: {GET /x: pets.d}}
          - {name: d, type: http, stages: [dev], routes: {GET /y: pets.e}}
          - {name: e, basePath: e, routes: {GET /z: {python: pets.a, environment: {X: "1"}}}}
        """,
    )
    assert found == [
        ("apis[1]", "API name 'a' is already used by apis[0]"),
        ("apis[3]", "API id 'same' is already used by apis[2]"),
        (
            "apis[4]",
            "stage 'dev' with base path '(none)' is already served by API 'a'; "
            "give one of them a different basePath",
        ),
        (
            'apis[5].routes["GET /z"]',
            "function 'pets-a' is also used by apis[0].routes[\"GET /x\"] with a different handler or "
            "settings (environment, isolation, workers, memorySize); give one a distinct `function:` name",
        ),
    ]


def test_unknown_stage_selected(tmp_path: Path) -> None:
    text = "portway: 1\napis: [{name: a, stages: [dev, beta], routes: {GET /x: pets.a}}]\n"
    assert problems(tmp_path, text, stage="prod") == [
        ("apis[0].stages", "no stage 'prod' in API 'a' (dev, beta)")
    ]


def test_many_problems_reported_at_once(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        portway: 1
        apis:
          - name: pets
            stages: {'bad stage': {}}
            routes:
              GET /a: {integration: {type: python, handler: pets.a, timeout: 1}}
              GET /b/{x+}/c: pets.b
              FETCH /c: pets.c
          - name: other
            type: http
            routes:
              GET /d: {python: pets.d, apiKeyRequired: true}
        """,
    )
    locations = [location for location, _ in found]
    assert locations == [
        'apis[0].routes["GET /a"].integration.timeout',
        'apis[0].stages["bad stage"]',
        'apis[0].routes["GET /b/{x+}/c"]',
        'apis[0].routes["FETCH /c"]',
        'apis[1].routes["GET /d"].apiKeyRequired',
    ]


def test_config_error_text_lists_every_issue(tmp_path: Path) -> None:
    error = ConfigError([ConfigIssue("a.b", "first"), ConfigIssue("", "second")], tmp_path / "x.yaml")
    assert (
        str(error)
        == f"{tmp_path / 'x.yaml'}: invalid configuration (2 problems)\n  a.b: first\n  (document): second"
    )
    assert error.issues == (ConfigIssue("a.b", "first"), ConfigIssue("", "second"))
