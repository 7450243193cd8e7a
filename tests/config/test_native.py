"""Native portway.yaml: shorthand and explicit forms, defaults, stages, API kinds."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.config.load import load_config
from server.config.model import (
    ApiKind,
    ClusterSettings,
    GatewayConfig,
    IntegrationType,
    Isolation,
    WebSocketSettings,
)
from server.ids import new_api_id


def load(tmp_path: Path, text: str, stage: str | None = None) -> GatewayConfig:
    path = tmp_path / "portway.yaml"
    path.write_text(textwrap.dedent(text))
    return load_config(path, stage=stage)


@pytest.fixture(autouse=True)
def handlers(tmp_path: Path) -> None:
    (tmp_path / "pets.py").write_text("def get_pet(event, context):\n    return {}\n")
    (tmp_path / "src" / "handlers").mkdir(parents=True)
    (tmp_path / "src" / "handlers" / "users.py").write_text(
        "def get(event, context):\n    return {}\n\n\ndef get_one(event, context):\n    return {}\n"
    )


def test_shorthand_forms(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        apis:
          - name: pets
            routes:
              GET /pets/{id}: pets.get_pet
              POST /pets: {python: pets.get_pet}
              ANY /{proxy+}: {http_proxy: "http://127.0.0.1:9000/{proxy}"}
              GET /health: {mock: {status: 201, headers: {X-Ok: 1}, body: {ok: true}}}
              GET /users: {http: {uri: "http://127.0.0.1:9000/users", method: post}}
        """,
    )
    assert not config.warnings
    (api,) = config.apis
    assert api.kind is ApiKind.REST and [s.name for s in api.stages] == ["dev"]
    assert api.websocket == WebSocketSettings()
    assert api.id == new_api_id("pets")
    routes = {route.route_key: route for route in api.routes}
    assert list(routes) == [
        "GET /pets/{id}",
        "POST /pets",
        "ANY /{proxy+}",
        "GET /health",
        "GET /users",
    ]
    get = routes["GET /pets/{id}"].integration
    assert get.type is IntegrationType.PYTHON and get.handler == "pets.get_pet"
    assert get.code_dir == tmp_path.resolve() and get.function_name == "pets-get_pet"
    assert get.timeout_ms == 29_000 and get.payload_format == "1.0" and get.isolation is Isolation.PROCESS
    assert routes["POST /pets"].integration == get
    proxy = routes["ANY /{proxy+}"].integration
    assert proxy.type is IntegrationType.HTTP_PROXY and proxy.uri == "http://127.0.0.1:9000/{proxy}"
    assert proxy.http_method == "ANY"
    mock = routes["GET /health"].integration.mock
    assert mock is not None and mock.status == 201 and dict(mock.headers) == {"X-Ok": "1"}
    assert mock.body == '{"ok":true}'
    http = routes["GET /users"].integration
    assert http.type is IntegrationType.HTTP and http.http_method == "POST"


def test_real_lambda_routes(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        apis:
          - name: fns
            type: http
            routes:
              GET /a: {lambda: my-function, timeout: 1000}
              GET /b:
                integration: {type: AWS_PROXY, function: "arn:aws:lambda:us-east-1:123456789012:function:f"}
              GET /c:
                aws_proxy: {function: g, region: eu-west-1, endpointUrl: "http://127.0.0.1:4566"}
              GET /d: {lambda: {function: h, region: ap-south-1}}
        """,
    )
    a, b, c, d = (route.integration for route in config.apis[0].routes)
    assert a.type is IntegrationType.AWS_PROXY and a.function_name == "my-function" and a.uri == "my-function"
    assert a.timeout_ms == 1000 and a.payload_format == "2.0"
    assert b.type is IntegrationType.AWS_PROXY and b.uri == "arn:aws:lambda:us-east-1:123456789012:function:f"
    assert b.function_name == "f" and b.aws_region is None and b.aws_endpoint_url is None
    assert (c.uri, c.aws_region, c.aws_endpoint_url) == ("g", "eu-west-1", "http://127.0.0.1:4566")
    assert (d.uri, d.aws_region, d.aws_endpoint_url) == ("h", "ap-south-1", None)


def test_explicit_integration_and_route_options(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        apis:
          - name: orders
            defaults: {timeout: 20000, isolation: inprocess, environment: {A: a, B: b}, memorySize: 256}
            routes:
              POST /orders:
                apiKeyRequired: true
                integration:
                  type: python
                  handler: pets.get_pet
                  timeout: 5000
                  isolation: process
                  environment: {B: route, PORT: 9001, DEBUG: true}
                  workers: 2
                  function: create-order
              GET /orders: {python: pets.get_pet, timeout: 100}
              GET /mock: {integration: {type: MOCK, status: 204}}
              GET /up: {integration: {type: http_proxy, uri: "https://example.com", method: GET}}
        """,
    )
    routes = {route.route_key: route for route in config.apis[0].routes}
    post = routes["POST /orders"]
    assert post.api_key_required is True
    integration = post.integration
    assert integration.timeout_ms == 5000 and integration.isolation is Isolation.PROCESS
    assert dict(integration.environment) == {"A": "a", "B": "route", "PORT": "9001", "DEBUG": "true"}
    assert integration.workers == 2 and integration.function_name == "create-order"
    assert integration.memory_mb == 256
    get = routes["GET /orders"].integration
    assert get.timeout_ms == 100 and get.isolation is Isolation.INPROCESS and get.workers == 1
    assert dict(get.environment) == {"A": "a", "B": "b"}
    assert routes["GET /orders"].api_key_required is False
    mock = routes["GET /mock"].integration
    assert mock.type is IntegrationType.MOCK and mock.mock is not None and mock.mock.status == 204
    assert mock.mock.body == ""
    up = routes["GET /up"].integration
    assert up.type is IntegrationType.HTTP_PROXY and up.http_method == "GET" and up.timeout_ms == 20000


def test_handler_paths_resolve_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "handlers").mkdir()
    (tmp_path / "api" / "handlers" / "items.py").write_text(
        "def list_items(event, context):\n    return {}\n"
    )
    config = load(
        tmp_path,
        """
        portway: 1
        apis:
          - name: users
            routes:
              GET /users: src/handlers/users.get
              GET /users/{id}: src.handlers.users.get_one
          - name: items
            codeDir: api
            basePath: items
            routes:
              GET /items: handlers/items.list_items
        """,
    )
    assert not config.warnings
    users, items = config.apis
    by_path = {route.path: route.integration for route in users.routes}
    assert by_path["/users"].code_dir == (tmp_path / "src" / "handlers").resolve()
    assert by_path["/users"].handler == "users.get"
    assert by_path["/users"].function_name == "src-handlers-users-get"
    assert by_path["/users/{id}"].code_dir == tmp_path.resolve()
    assert by_path["/users/{id}"].handler == "src.handlers.users.get_one"
    assert by_path["/users/{id}"].function_name == "src-handlers-users-get_one"
    assert items.routes[0].integration.code_dir == (tmp_path / "api" / "handlers").resolve()
    assert items.routes[0].integration.handler == "items.list_items"


def test_missing_handler_module_is_a_warning(tmp_path: Path) -> None:
    config = load(tmp_path, "portway: 1\napis: [{name: a, routes: {GET /x: nowhere.handler}}]\n")
    assert len(config.warnings) == 1
    assert config.warnings[0].startswith("apis[0].routes[\"GET /x\"]: handler module 'nowhere' not found")


def test_http_api_defaults_and_payload_formats(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        apis:
          - name: h2
            type: http
            routes:
              GET /a: pets.get_pet
              GET /b: {python: pets.get_pet, payloadFormat: "1.0", timeout: 30000}
              $default: pets.get_pet
          - name: h1
            type: http
            payloadFormat: 1.0
            basePath: /v1/
            stages: [$default, beta]
            routes:
              ANY /{proxy+}: pets.get_pet
        """,
    )
    h2, h1 = config.apis
    assert h2.kind is ApiKind.HTTP and [s.name for s in h2.stages] == ["$default"]
    routes = {route.route_key: route.integration for route in h2.routes}
    assert routes["GET /a"].payload_format == "2.0" and routes["GET /a"].timeout_ms == 30_000
    assert routes["GET /b"].payload_format == "1.0"
    assert routes["$default"].payload_format == "2.0"
    default_route = next(route for route in h2.routes if route.path == "$default")
    assert default_route.method == "ANY" and default_route.route_key == "$default"
    assert h1.base_path == "v1" and [s.name for s in h1.stages] == ["$default", "beta"]
    assert h1.routes[0].integration.payload_format == "1.0"


def test_stages_and_variables(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        region: eu-west-1
        accountId: "111122223333"
        apis:
          - name: pets
            id: abc123defg
            binaryMediaTypes: [image/png, "*/*"]
            stages:
              dev: {variables: {backend: "127.0.0.1:9001", port: 9001}}
              prod:
            routes:
              ANY /{proxy+}: {http_proxy: "http://${stageVariables.backend}/{proxy+}"}
        """,
    )
    assert config.region == "eu-west-1" and config.account_id == "111122223333"
    (api,) = config.apis
    assert api.id == "abc123defg" and api.binary_media_types == ("image/png", "*/*")
    dev, prod = api.stages
    assert dict(dev.variables) == {"backend": "127.0.0.1:9001", "port": "9001"}
    assert prod.name == "prod" and dict(prod.variables) == {}
    assert config.warnings == (
        'apis[0].routes["ANY /{proxy+}"].http_proxy: '
        "stage 'prod' has no variable 'backend' (it renders empty)",
    )


def test_stage_selection(tmp_path: Path) -> None:
    text = """
        portway: 1
        apis:
          - name: a
            stages: [dev, prod]
            routes: {GET /x: pets.get_pet}
          - name: b
            type: http
            basePath: b
            stages: [$default, prod]
            routes: {GET /y: pets.get_pet}
        """
    config = load(tmp_path, text, stage="prod")
    assert [[s.name for s in api.stages] for api in config.apis] == [["prod"], ["prod"]]
    assert [[s.name for s in api.stages] for api in load(tmp_path, text).apis] == [
        ["dev", "prod"],
        ["$default", "prod"],
    ]


def test_websocket_api(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        apis:
          - name: chat
            type: websocket
            routeSelectionExpression: $request.body.type
            websocket: {idleTimeout: null, maxLifetime: 60, binaryFrames: true, maxInflight: 4}
            routes:
              $connect: {python: pets.get_pet, apiKeyRequired: true}
              $default: {mock: {status: 200}, routeResponse: true}
              sendMessage: pets.get_pet
        """,
    )
    (api,) = config.apis
    assert api.websocket == WebSocketSettings(
        idle_timeout_s=None, max_lifetime_s=60, binary_frames=True, max_inflight=4
    )
    assert [route.route_response for route in api.routes] == [False, True, False]
    assert api.kind is ApiKind.WEBSOCKET and api.route_selection_expression == "$request.body.type"
    assert [s.name for s in api.stages] == ["dev"]
    assert [(r.method, r.path, r.route_key) for r in api.routes] == [
        ("", "$connect", "$connect"),
        ("", "$default", "$default"),
        ("", "sendMessage", "sendMessage"),
    ]
    assert api.routes[0].api_key_required is True
    assert api.routes[0].integration.timeout_ms == 29_000


def test_websocket_block_takes_every_setting(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        apis:
          - name: chat
            type: websocket
            websocket:
              maxFrameBytes: 1024
              maxMessageBytes: 4096
              binaryFrames: true
              idleTimeout: 1.5
              maxLifetime: null
              pingInterval: null
              sendBufferBytes: 65536
              maxInflight: 2
            routes: {$default: pets.get_pet}
        """,
    )
    assert config.apis[0].websocket == WebSocketSettings(
        max_frame_bytes=1024,
        max_message_bytes=4096,
        binary_frames=True,
        idle_timeout_s=1.5,
        max_lifetime_s=None,
        ping_interval_s=None,
        send_buffer_bytes=65536,
        max_inflight=2,
    )


def test_cluster_section(tmp_path: Path) -> None:
    text = "portway: 1\napis: [{name: a, routes: {GET /x: pets.get_pet}}]\n"
    assert load(tmp_path, text).cluster == ClusterSettings()
    config = load(
        tmp_path, text + "cluster: {heartbeat: 0.5, nodeTtl: 2, reaperInterval: 1, rpcTimeout: 3}\n"
    )
    assert config.cluster == ClusterSettings(
        heartbeat_s=0.5, node_ttl_s=2.0, reaper_interval_s=1.0, rpc_timeout_s=3.0
    )
    assert load(tmp_path, text + "cluster: {rpcTimeout: 0.25}\n").cluster == ClusterSettings(
        rpc_timeout_s=0.25
    )
    assert load(tmp_path, text + "cluster: {}\n").cluster == ClusterSettings()


def test_same_handler_in_two_apis_shares_one_function(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        apis:
          - {name: a, routes: {GET /x: pets.get_pet}}
          - {name: b, type: http, routes: {GET /x: pets.get_pet}}
        """,
    )
    names = {route.integration.function_name for api in config.apis for route in api.routes}
    assert names == {"pets-get_pet"}


def test_yaml_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        apis:
          - name: a
            routes:
              GET /a: &common {python: pets.get_pet, timeout: 1000}
              GET /b: {<<: *common, timeout: 2000}
        """,
    )
    assert [route.integration.timeout_ms for route in config.apis[0].routes] == [1000, 2000]


def test_rest_sibling_variables_are_a_warning(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        portway: 1
        apis:
          - name: a
            routes:
              GET /f/{id}: pets.get_pet
              GET /f/{proxy+}: pets.get_pet
          - name: b
            type: http
            routes:
              GET /f/{id}: pets.get_pet
              GET /f/{proxy+}: pets.get_pet
        """,
    )
    assert config.warnings == (
        "apis[0].routes[\"GET /f/{proxy+}\"]: {proxy+} and the variable of 'GET /f/{id}' are siblings: "
        "AWS allows one variable per level",
    )
