"""serverless.yml ``websocket`` events: one WebSocket API per service, on the provider's stage."""

from __future__ import annotations

from pathlib import Path

from server.config.load import load_config
from server.config.model import (
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationType,
    Isolation,
    WebSocketSettings,
)
from server.ids import new_api_id
from tests.config.test_serverless import load, problems

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHAT = """
service: chat
provider:
  name: aws
  runtime: python3.11
  stage: ${opt:stage, 'dev'}
  environment: {TABLE: rooms}
functions:
  connect:
    handler: handler.f
    environment: {GREETING: hi}
    events:
      - websocket: $connect
      - websocket:
          route: $disconnect
  send:
    handler: src/handlers/users.send
    timeout: 3
    events:
      - websocket: {route: sendMessage, routeResponseSelectionExpression: $default}
      - websocket: sendOneWay
  fallback:
    handler: handler.fallback
    timeout: 60
    events:
      - websocket: {route: $default, routeResponseSelectionExpression: $default}
"""


def websocket_api(config: GatewayConfig) -> ApiConfig:
    (api,) = [api for api in config.apis if api.kind is ApiKind.WEBSOCKET]
    return api


def test_one_websocket_api_per_service(tmp_path: Path) -> None:
    config = load(tmp_path, CHAT)
    assert config.warnings == ()
    api = websocket_api(config)
    assert len(config.apis) == 1
    assert api.name == "dev-chat-websockets" and api.id == new_api_id("dev-chat-websockets")
    assert [stage.name for stage in api.stages] == ["dev"]
    assert api.route_selection_expression == "$request.body.action"
    assert api.websocket == WebSocketSettings()
    routes = {route.route_key: route for route in api.routes}
    assert list(routes) == ["$connect", "$disconnect", "sendMessage", "sendOneWay", "$default"]
    assert all(route.method == "" and route.path == key for key, route in routes.items())
    assert {key for key, route in routes.items() if route.route_response} == {"sendMessage", "$default"}


def test_handlers_like_http_events(tmp_path: Path) -> None:
    routes = {route.route_key: route.integration for route in websocket_api(load(tmp_path, CHAT)).routes}
    connect = routes["$connect"]
    assert connect.type is IntegrationType.PYTHON and connect.isolation is Isolation.PROCESS
    assert (connect.code_dir, connect.handler) == (tmp_path.resolve(), "handler.f")
    assert connect.function_name == "chat-dev-connect"
    assert dict(connect.environment) == {"TABLE": "rooms", "GREETING": "hi"}
    assert connect.timeout_ms == 6000  # serverless's default function timeout
    assert routes["$disconnect"] == connect  # one function, two routes
    send = routes["sendMessage"]
    assert (send.code_dir, send.handler) == (tmp_path.resolve(), "src.handlers.users.send")
    assert send.timeout_ms == 3000 and send.function_name == "chat-dev-send"
    assert routes["$default"].timeout_ms == 29_000  # 60 s capped at WebSocket's 29 s


def test_provider_settings_and_stage(tmp_path: Path) -> None:
    text = CHAT.replace(
        "  environment: {TABLE: rooms}\n",
        "  environment: {TABLE: rooms}\n"
        "  websocketsApiName: chat-ws\n"
        "  websocketsApiRouteSelectionExpression: $request.body.type\n",
    )
    config = load(tmp_path, text, stage="prod")
    api = websocket_api(config)
    assert api.name == "chat-ws" and api.id == new_api_id("chat-ws")
    assert api.route_selection_expression == "$request.body.type"
    assert [stage.name for stage in api.stages] == ["prod"]
    assert api.routes[0].integration.function_name == "chat-prod-connect"
    default_name = websocket_api(load(tmp_path, CHAT, stage="prod")).name
    assert default_name == "prod-chat-websockets"


def test_beside_rest_and_http_apis_on_the_same_stage(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: app
        provider: {name: aws}
        functions:
          f:
            handler: handler.f
            events:
              - http: GET hello
              - httpApi: GET /hello
              - websocket: $default
        """,
    )
    assert [(api.kind, [s.name for s in api.stages]) for api in config.apis] == [
        (ApiKind.REST, ["dev"]),
        (ApiKind.HTTP, ["$default"]),
        (ApiKind.WEBSOCKET, ["dev"]),
    ]
    assert config.warnings == ()
    rest, _, websocket = config.apis
    assert rest.routes[0].integration.function_name == websocket.routes[0].integration.function_name


def test_errors_with_locations(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        service: app
        provider:
          name: aws
          websocketsApiRouteSelectionExpression: $nope.action
        functions:
          f:
            handler: handler.f
            events:
              - websocket: $bad
              - websocket: {routeResponseSelectionExpression: $default}
              - websocket: {route: send, routeResponseSelectionExpression: $request.body.x}
              - websocket: [send]
              - websocket: {route: send, authorizer: auth}
              - websocket: dup
          g:
            handler: handler.g
            events:
              - websocket: dup
        """,
    )
    assert found == [
        (
            "functions.f.events[0].websocket",
            "WebSocket route key '$bad': use $connect, $disconnect, $default or a name not starting "
            "with '$' (at most 128 characters)",
        ),
        ("functions.f.events[1].websocket.route", "missing route (a route key: $connect, sendMessage, ...)"),
        (
            "functions.f.events[2].websocket.routeResponseSelectionExpression",
            "'$request.body.x': AWS supports only $default (a two-way route)",
        ),
        (
            "functions.f.events[3].websocket",
            "expected a route key ($connect, sendMessage) or {route: ...}",
        ),
        (
            "functions.f.events[4].websocket.authorizer",
            "WebSocket APIs authorize on the $connect route only",
        ),
        (
            "provider.websocketsApiRouteSelectionExpression",
            "route selection expression: '$nope.action': unknown variable $nope.action",
        ),
        ("functions.g.events[0].websocket", "duplicate route 'dup'"),
    ]


def test_bad_api_name(tmp_path: Path) -> None:
    text = CHAT.replace("  environment: {TABLE: rooms}\n", "  websocketsApiName: {a: 1}\n")
    assert problems(tmp_path, text) == [("provider.websocketsApiName", "must be a non-empty string")]


def test_no_events_warning_mentions_websocket(tmp_path: Path) -> None:
    config = load(tmp_path, "service: s\nprovider: {name: aws}\nfunctions: {f: {handler: handler.f}}\n")
    assert config.apis == () and config.warnings == (
        "functions: no http, httpApi or websocket events: nothing to serve",
    )


def test_bundled_chat_example_both_formats_serve_the_same_handlers() -> None:
    chat = EXAMPLES / "chat"
    native = load_config(chat / "portway.yaml")
    serverless = load_config(chat / "serverless.yml", env={"PORTWAY_ENDPOINT_SCHEME": "http"})
    assert native.warnings == () and serverless.warnings == ()

    def shape(config: GatewayConfig) -> dict[str, tuple[object, ...]]:
        api = websocket_api(config)
        assert [stage.name for stage in api.stages] == ["dev"]
        assert api.route_selection_expression == "$request.body.action"
        return {
            route.route_key: (
                route.route_response,
                route.integration.code_dir,
                route.integration.handler,
                route.integration.timeout_ms,
                route.integration.isolation,
                dict(route.integration.environment),
            )
            for route in api.routes
        }

    # serverless imports `handlers/chat.join` as Lambda does: module handlers.chat, service root.
    as_lambda = {
        key: (v[0], chat / "handlers", v[2].removeprefix("handlers."), *v[3:])
        for key, v in shape(serverless).items()
    }
    assert shape(native) == as_lambda
    assert shape(serverless)["join"][1:3] == (chat, "handlers.chat.join")
    assert shape(native)["join"] == (
        False,
        chat / "handlers",
        "chat.join",
        10_000,
        Isolation.PROCESS,
        {"PORTWAY_ENDPOINT_SCHEME": "http"},
    )
    https = load_config(chat / "serverless.yml", env={})  # what `sls deploy` gives the functions
    assert dict(websocket_api(https).routes[0].integration.environment) == {
        "PORTWAY_ENDPOINT_SCHEME": "https"
    }


def test_all_examples_file_serves_hello_and_chat() -> None:
    combined = load_config(EXAMPLES / "portway.yaml")
    assert combined.warnings == ()
    assert [(api.name, api.kind) for api in combined.apis] == [
        ("hello", ApiKind.REST),
        ("hello-http", ApiKind.HTTP),
        ("chat", ApiKind.WEBSOCKET),
    ]
    parts = [
        load_config(EXAMPLES / "hello" / "portway.yaml"),
        load_config(EXAMPLES / "chat" / "portway.yaml"),
    ]
    assert combined.apis == tuple(api for config in parts for api in config.apis)
    assert (combined.usage_plans, combined.api_keys) == (parts[0].usage_plans, parts[0].api_keys)


def test_serverless_websocket_example_in_the_docs_loads(tmp_path: Path) -> None:
    docs = (EXAMPLES.parent / "docs" / "configuration.md").read_text()
    blocks = [block.split("```", 1)[0] for block in docs.split("```yaml\n")[1:]]
    (text,) = [b for b in blocks if "service:" in b and "websocket:" in b and "authorizer" not in b]
    path = tmp_path / "serverless.yml"
    path.write_text(text)
    api = websocket_api(load_config(path, env={}))
    assert (api.name, [stage.name for stage in api.stages]) == ("chat-ws", ["dev"])
    assert [(route.route_key, route.route_response) for route in api.routes] == [
        ("$connect", False),
        ("$disconnect", False),
        ("sendMessage", True),
    ]
