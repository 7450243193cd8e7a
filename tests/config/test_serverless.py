"""serverless.yml (Serverless Framework v3): events, functions, stages, and the bundled example."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.config.errors import ConfigError
from server.config.load import load_config
from server.config.model import (
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    QuotaSettings,
    RouteConfig,
    ThrottleSettings,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"


def handlers(*names: str) -> str:
    """A handler module defining ``names`` (validation checks that a handler's function exists)."""
    return "".join(f"def {name}(event, context):\n    return {{}}\n\n\n" for name in names)


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "handler.py").write_text(
        handlers("f", "g", "a", "b", "hello", "one", "two", "fallback", "auth", "handler")
    )
    (tmp_path / "src" / "handlers").mkdir(parents=True, exist_ok=True)
    (tmp_path / "src" / "handlers" / "users.py").write_text(handlers("get", "list", "send"))
    path = tmp_path / "serverless.yml"
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, **kwargs: str) -> GatewayConfig:
    return load_config(write(tmp_path, text), env={}, **kwargs)


def problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return [(issue.location, issue.message) for issue in info.value.issues]


def routes(config: GatewayConfig, kind: ApiKind) -> dict[str, RouteConfig]:
    (api,) = [api for api in config.apis if api.kind is kind]
    return {route.route_key: route for route in api.routes}


def _shape(integration: IntegrationConfig) -> tuple[object, ...]:
    return (
        integration.type,
        integration.code_dir,
        integration.handler,
        dict(integration.environment),
        integration.timeout_ms,
        integration.payload_format,
        integration.isolation,
    )


def test_bundled_example_both_formats_serve_the_same_handlers() -> None:
    native = load_config(EXAMPLE / "portway.yaml")
    serverless = load_config(EXAMPLE / "serverless.yml", env={})
    assert native.warnings == () and serverless.warnings == ()

    def python_routes(config: GatewayConfig) -> dict[tuple[str, str, str, str], tuple[object, ...]]:
        return {
            (api.kind.value, ",".join(s.name for s in api.stages), route.method, route.path): _shape(
                route.integration
            )
            for api in config.apis
            for route in api.routes
            if route.integration.type is IntegrationType.PYTHON
        }

    shared = python_routes(serverless)
    assert set(shared) == {
        ("REST", "dev", "GET", "/hello"),
        ("REST", "dev", "POST", "/greet/{name}"),
        ("REST", "dev", "GET", "/vip"),
        ("HTTP", "$default", "GET", "/hello"),
    }
    # The keyed route, its plan's limits and the key are the same in both formats.
    keyed = {
        (a.kind, r.route_key)
        for c in (native, serverless)
        for a in c.apis
        for r in a.routes
        if r.api_key_required
    }
    assert keyed == {(ApiKind.REST, "GET /vip")}
    for config in (native, serverless):
        ((plan,), (key,)) = (config.usage_plans, config.api_keys)
        assert (plan.throttle, plan.quota) == (ThrottleSettings(1.0, 5), QuotaSettings(500, "DAY", 0))
        assert (key.value, key.plans) == ("demoKeyForTheExampleOnly01", (plan.id,))
    # Same modules, named as each format's rule says: the native codeDir is the task root, while
    # serverless imports `handlers/hello.greet` as Lambda does (module handlers.hello, service root).
    native_routes = python_routes(native)
    assert {k: v[:1] + v[3:] for k, v in native_routes.items()} == {
        k: v[:1] + v[3:] for k, v in shared.items()
    }
    assert {shape[1:3] for shape in native_routes.values()} == {
        (EXAMPLE / "handlers", "hello.handler"),
        (EXAMPLE / "handlers", "hello.greet"),
    }
    assert {shape[1:3] for shape in shared.values()} == {
        (EXAMPLE, "handlers.hello.handler"),
        (EXAMPLE, "handlers.hello.greet"),
    }
    native_kinds = {route.integration.type for api in native.apis for route in api.routes}
    assert {IntegrationType.MOCK, IntegrationType.HTTP_PROXY, IntegrationType.HTTP} <= native_kinds
    assert [api.id for api in native.apis] == [api.id for api in serverless.apis]


def test_example_stage_override_and_environment() -> None:
    config = load_config(EXAMPLE / "serverless.yml", stage="prod", env={"HELLO_GREETING": "Hi"})
    rest = routes(config, ApiKind.REST)
    assert [s.name for s in config.apis[0].stages] == ["prod"]
    hello = rest["GET /hello"].integration
    assert hello.function_name == "hello-prod-hello" and dict(hello.environment) == {"GREETING": "Hi"}
    assert [s.name for s in config.apis[1].stages] == ["$default"]  # HTTP APIs stay on $default


def test_http_events(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: users
        provider: {name: aws, runtime: python3.11}
        functions:
          list:
            handler: src/handlers/users.list
            events:
              - http: GET users
              - http: 'post /users/{id}'
              - http: {path: '/users/{id}/tags/', method: any, private: true}
              - http: {path: 'files/{proxy+}', method: '*'}
              - http: {path: /, method: get}
        """,
    )
    assert len(config.apis) == 1
    api = config.apis[0]
    assert api.kind is ApiKind.REST and api.name == "users" and [s.name for s in api.stages] == ["dev"]
    found = {key: route.api_key_required for key, route in routes(config, ApiKind.REST).items()}
    assert found == {
        "GET /users": False,
        "POST /users/{id}": False,
        "ANY /users/{id}/tags": True,
        "ANY /files/{proxy+}": False,
        "GET /": False,
    }
    integration = api.routes[0].integration
    assert integration.type is IntegrationType.PYTHON
    assert integration.code_dir == tmp_path.resolve() and integration.handler == "src.handlers.users.list"
    assert integration.function_name == "users-dev-list" and integration.payload_format == "1.0"
    assert integration.timeout_ms == 6000 and integration.memory_mb == 1024


def test_http_api_events_and_payload(tmp_path: Path) -> None:
    text = """
        service: shop
        provider:
          name: aws
          httpApi: {payload: PAYLOAD}
        functions:
          hello:
            handler: handler.hello
            events:
              - httpApi: 'GET /hello'
              - httpApi: '*'
              - httpApi: {method: '*', path: 'items/{id}'}
              - httpApi: {method: post, path: /items}
        """
    config = load(tmp_path, text.replace("{payload: PAYLOAD}", "{}"))
    api = config.apis[0]
    assert api.kind is ApiKind.HTTP and [s.name for s in api.stages] == ["$default"]
    assert api.name == "shop-httpApi"
    found = routes(config, ApiKind.HTTP)
    assert list(found) == ["GET /hello", "$default", "ANY /items/{id}", "POST /items"]
    assert found["$default"].path == "$default" and found["$default"].method == "ANY"
    assert {route.integration.payload_format for route in found.values()} == {"2.0"}
    assert found["GET /hello"].integration.timeout_ms == 6000
    v1 = load(tmp_path, text.replace("PAYLOAD", "'1.0'"))
    assert {route.integration.payload_format for route in v1.apis[0].routes} == {"1.0"}


def test_timeouts_memory_environment_and_names(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: svc
        provider:
          name: aws
          stage: qa
          region: eu-central-1
          timeout: 40
          memorySize: 512
          environment: {A: provider, B: provider, PORT: 8080, ON: true}
        functions:
          one:
            handler: handler.one
            environment: {B: function}
            events: [{http: GET one}, {httpApi: GET /one}]
          two:
            handler: handler.two
            name: custom-name
            timeout: 0.5
            memorySize: 128
            events: [{http: GET two}]
        """,
    )
    assert config.region == "eu-central-1"
    rest, http = routes(config, ApiKind.REST), routes(config, ApiKind.HTTP)
    one = rest["GET /one"].integration
    assert one.timeout_ms == 29_000 and http["GET /one"].integration.timeout_ms == 30_000
    assert dict(one.environment) == {"A": "provider", "B": "function", "PORT": "8080", "ON": "true"}
    assert one.memory_mb == 512 and one.function_name == "svc-qa-one"
    two = rest["GET /two"].integration
    assert two.timeout_ms == 500 and two.memory_mb == 128 and two.function_name == "custom-name"
    assert [s.name for s in config.apis[0].stages] == ["qa"]


def test_stage_option_overrides_provider_stage(tmp_path: Path) -> None:
    text = """
        service: svc
        provider: {name: aws, stage: staging}
        functions: {f: {handler: handler.f, events: [{http: GET f}]}}
        """
    assert [s.name for s in load(tmp_path, text).apis[0].stages] == ["staging"]
    config = load(tmp_path, text, stage="prod")
    assert [s.name for s in config.apis[0].stages] == ["prod"]
    assert config.apis[0].routes[0].integration.function_name == "svc-prod-f"


def test_cors_adds_an_options_preflight(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: svc
        provider: {name: aws}
        functions:
          f:
            handler: handler.f
            events:
              - http: {path: a, method: get, cors: true}
              - http: {path: a, method: post, cors: true}
              - http:
                  path: b
                  method: get
                  cors: {origin: 'https://app.example', headers: [X-One], allowCredentials: true, maxAge: 600}
              - http: {path: c, method: get, cors: true}
              - http: {path: c, method: options}
        """,
    )
    found = routes(config, ApiKind.REST)
    assert "OPTIONS /a" in found and "OPTIONS /b" in found
    assert found["OPTIONS /c"].integration.type is IntegrationType.PYTHON  # the function's own OPTIONS wins
    mock_a = found["OPTIONS /a"].integration.mock
    assert mock_a is not None and found["OPTIONS /a"].integration.type is IntegrationType.MOCK
    assert dict(mock_a.headers) == {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Headers": "Content-Type,X-Amz-Date,Authorization,X-Api-Key,"
        "X-Amz-Security-Token,X-Amz-User-Agent,X-Amzn-Trace-Id",
        "Access-Control-Allow-Methods": "OPTIONS,GET,POST",
    }
    mock_b = found["OPTIONS /b"].integration.mock
    assert mock_b is not None and dict(mock_b.headers) == {
        "Access-Control-Allow-Origin": "https://app.example",
        "Access-Control-Allow-Headers": "X-One",
        "Access-Control-Allow-Methods": "OPTIONS,GET",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Max-Age": "600",
    }


def test_http_proxy_integration(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: svc
        provider: {name: aws}
        functions:
          f:
            handler: handler.f
            events:
              - http: {path: 'api/{proxy+}', method: any, integration: http-proxy, request: {uri: 'http://127.0.0.1:9000/{proxy}'}}
        """,
    )
    route = config.apis[0].routes[0]
    assert route.integration.type is IntegrationType.HTTP_PROXY
    assert route.integration.uri == "http://127.0.0.1:9000/{proxy}" and route.integration.http_method == "ANY"


def test_warnings_for_what_is_ignored(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: svc
        plugins: [serverless-offline, serverless-python-requirements]
        custom:
          unused: '${ssm:/never/resolved}'
          serverless-offline: {httpPort: 4000, noPrependStageInUrl: true, useChildProcesses: true}
        resources: {Resources: {Table: {Type: AWS::DynamoDB::Table}}}
        provider:
          name: aws
          runtime: java21
          environment: {ARN: {Fn::GetAtt: [Table, Arn]}, OK: yes}
          httpApi: {cors: true}
        functions:
          f:
            handler: handler.f
            events:
              - http: {path: a, method: get}
              - http: {path: b, method: get, integration: lambda}
              - httpApi: {path: /c, method: get, private: true}
              - sqs: arn:aws:sqs:us-east-1:123456789012:queue
              - schedule: rate(1 minute)
          image:
            image: 123.dkr.ecr.us-east-1.amazonaws.com/app:latest
        """,
    )
    assert config.warnings == (
        "custom.serverless-offline: httpPort, noPrependStageInUrl not used: Portway takes --host/--port and "
        "serves REST APIs under /{stage}/, as AWS does",
        "provider.environment.ARN: CloudFormation values cannot be resolved locally (left out)",
        "functions.f: runtime 'java21': Portway runs Python, provided.* and nodejs* only",
        "functions.f.events[2].httpApi.private: HTTP APIs have no API keys (ignored)",
        "functions.f.events[3]: 'sqs' events are not served by Portway (ignored)",
        "functions.f.events[4]: 'schedule' events are not served by Portway (ignored)",
        "functions.image: container image functions are not supported (ignored)",
    )
    assert dict(config.apis[0].routes[0].integration.environment) == {"OK": "yes"}  # YAML 1.2: a string


def test_errors_with_locations(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        service: svc
        provider: {name: aws, stage: 'bad stage', timeout: -1, httpApi: {payload: '3.0'}}
        functions:
          nohandler:
            events: [{http: GET x}]
          badhandler:
            handler: not-a-handler
          f:
            handler: handler.f
            events:
              - http: FETCH users
              - http: {path: 'users/{id+}/x', method: get}
              - http: {method: get}
              - http: GET dup
              - http: {path: /dup, method: GET}
              - httpApi: {path: '/a/{id}', method: get}
              - httpApi: {path: '/a/{key}/b', method: get}
              - {http: GET a, httpApi: GET /a}
              - http: 42
        """,
    )
    assert found == [
        ("provider.stage", "stage name 'bad stage': use letters, digits, '-' and '_' (at most 128)"),
        ("provider.httpApi.payload", "payload '3.0': use '1.0' or '2.0'"),
        ("provider.timeout", "-1 is not a positive number"),
        ("functions.nohandler.handler", "missing handler (path/module.function)"),
        (
            "functions.badhandler.handler",
            "handler 'not-a-handler' is not module.function (pets.get_pet, src/handlers/users.get)",
        ),
        (
            "functions.f.events[0].http",
            "method 'FETCH': use one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY (or *)",
        ),
        ("functions.f.events[1].http", "greedy parameter {id+} must be the last segment of '/users/{id+}/x'"),
        ("functions.f.events[2].http.path", "missing path"),
        ("functions.f.events[7]", "an event is a mapping with one key, like `http:` or `httpApi:`"),
        ("functions.f.events[8].http", "expected 'METHOD path' or {method: ..., path: ...}"),
        ("functions.f.events[4].http", "duplicate route 'GET /dup'"),
        (
            "functions.f.events[6].httpApi",
            "{key} conflicts with {id} of 'GET /a/{id}': "
            "path variables at the same position must have the same name",
        ),
    ]


def test_service_forms(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: {name: legacy}
        functions: {f: {handler: handler.f, events: [{http: GET f}]}}
        """,
    )
    assert config.apis[0].name == "legacy" and config.region == "us-east-1"
    config = load(
        tmp_path,
        """
        service: listed
        provider: {name: aws, apiName: my-rest-api}
        functions:
          - a: {handler: handler.a, events: [{http: GET a}]}
          - b: {handler: handler.b, events: [{http: GET b}]}
        """,
    )
    assert config.apis[0].name == "my-rest-api"
    assert [route.path for route in config.apis[0].routes] == ["/a", "/b"]


def test_no_http_events_is_a_warning(tmp_path: Path) -> None:
    config = load(tmp_path, "service: jobs\nfunctions: {f: {handler: handler.f}}\n")
    assert config.apis == () and config.warnings == (
        "functions: no http, httpApi or websocket events: nothing to serve",
    )


def test_binary_media_types(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        service: img
        provider: {name: aws, apiGateway: {binaryMediaTypes: ['image/*', '*/*']}}
        functions: {f: {handler: handler.f, events: [{http: GET f}]}}
        """,
    )
    assert config.apis[0].binary_media_types == ("image/*", "*/*")
