"""Stage cache configuration: the native format (a stage's and a route's ``cache``) and
serverless.yml through the ``serverless-api-gateway-caching`` plugin's settings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.config.errors import ConfigError
from server.config.load import load_config
from server.config.model import ApiKind, CacheControlStrategy, CacheSettings, GatewayConfig, RouteCache


def load(tmp_path: Path, name: str, text: str) -> GatewayConfig:
    (tmp_path / "handler.py").write_text("def f(event, context):\n    return {}\n")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_config(path, env={})


def problems(tmp_path: Path, name: str, text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, name, text)
    return [(issue.location, issue.message) for issue in info.value.issues]


NATIVE = """
portway: 1
apis:
  - name: pets
    stages:
      dev:
        cache: {ttl: 60, requireAuthorization: false, unauthorizedStrategy: FAIL_WITH_403}
      prod: {cache: {}}
      test:
    routes:
      GET /pets: handler.f
      GET /pets/{id}:
        python: handler.f
        cache:
          ttl: 10
          keyParameters:
            - method.request.path.id
            - method.request.querystring.type
            - method.request.header.Accept
      POST /search: {python: handler.f, cache: {enabled: true}}
"""


def test_native_stage_and_route_cache(tmp_path: Path) -> None:
    (api,) = load(tmp_path, "portway.yaml", NATIVE).apis
    dev, prod, test = api.stages
    assert dev.cache == CacheSettings(True, 60, False, CacheControlStrategy.FAIL_WITH_403)
    assert prod.cache == CacheSettings()  # defaults: 300 s, authorization required, warn header
    assert test.cache is None
    routes = {route.route_key: route for route in api.routes}
    assert routes["GET /pets"].cache is None
    assert routes["GET /pets/{id}"].cache == RouteCache(
        ttl_s=10,
        key_parameters=(
            "method.request.path.id",
            "method.request.querystring.type",
            "method.request.header.Accept",
        ),
    )
    assert routes["POST /search"].cache == RouteCache(enabled=True)


def test_native_cache_errors(tmp_path: Path) -> None:
    schema = problems(
        tmp_path,
        "portway.yaml",
        """
        portway: 1
        apis:
          - name: pets
            stages: {dev: {cache: {ttl: 3601}}}
            routes:
              GET /pets/{id}: {python: handler.f, cache: {keyParameters: [method.request.body.x]}}
        """,
    )
    text = "\n".join(f"{where}: {message}" for where, message in schema)
    assert "3600" in text and "method.request.body.x" in text
    semantic = problems(
        tmp_path,
        "portway.yaml",
        """
        portway: 1
        apis:
          - name: pets
            routes:
              GET /pets/{id}: {python: handler.f, cache: {keyParameters: [method.request.path.nope]}}
          - name: h
            type: http
            stages: {$default: {cache: {}}}
            routes:
              GET /x: handler.f
        """,
    )
    assert semantic == [
        (
            'apis[0].routes["GET /pets/{id}"].cache.keyParameters[0]',
            "cache key parameter 'method.request.path.nope': the route's path has no {nope}",
        ),
        ("apis[1].stages.$default.cache", "the stage cache exists only in REST APIs (as on AWS)"),
    ]


SERVERLESS = """
service: cats
provider: {name: aws, runtime: python3.11, stage: dev}
plugins: [serverless-api-gateway-caching]
custom:
  apiGatewayCaching:
    enabled: true
    ttlInSeconds: 120
    perKeyInvalidation: {requireAuthorization: true, handleUnauthorizedRequests: Fail}
functions:
  list:
    handler: handler.f
    events:
      - http: {path: /cats, method: get, caching: {enabled: true}}
  one:
    handler: handler.f
    events:
      - http:
          path: /cats/{pawId}
          method: get
          caching:
            enabled: true
            ttlInSeconds: 30
            perKeyInvalidation: {handleUnauthorizedRequests: Ignore}
            cacheKeyParameters:
              - name: request.path.pawId
              - name: request.header.Accept-Language
  update:
    handler: handler.f
    events:
      - http: {path: /cat, method: post}
"""


def test_serverless_caching_plugin(tmp_path: Path) -> None:
    config = load(tmp_path, "serverless.yml", SERVERLESS)
    (api,) = config.apis
    assert api.kind is ApiKind.REST
    assert api.stages[0].cache == CacheSettings(True, 120, True, CacheControlStrategy.FAIL_WITH_403)
    routes = {route.route_key: route for route in api.routes}
    assert routes["GET /cats"].cache == RouteCache(enabled=True)
    assert routes["GET /cats/{pawId}"].cache == RouteCache(
        enabled=True,
        ttl_s=30,
        key_parameters=("method.request.path.pawId", "method.request.header.Accept-Language"),
        unauthorized_strategy=CacheControlStrategy.SUCCEED_WITHOUT_RESPONSE_HEADER,
    )
    # Like the plugin: an endpoint without `caching: {enabled: true}` is not cached.
    assert routes["POST /cat"].cache == RouteCache(enabled=False)


def test_serverless_plugin_defaults_and_disabled(tmp_path: Path) -> None:
    plugin = "    perKeyInvalidation: {requireAuthorization: true, handleUnauthorizedRequests: Fail}\n"
    text = SERVERLESS.replace("    ttlInSeconds: 120\n" + plugin, "")
    (api,) = load(tmp_path, "serverless.yml", text).apis
    assert api.stages[0].cache == CacheSettings(ttl_s=3600)  # the plugin's default TTL: AWS's maximum
    off = load(
        tmp_path, "serverless.yml", text.replace("enabled: true\nfunctions", "enabled: false\nfunctions")
    )
    assert off.apis[0].stages[0].cache is None
    assert any("custom.apiGatewayCaching" in warning for warning in off.warnings)


def test_serverless_caching_errors(tmp_path: Path) -> None:
    text = SERVERLESS.replace("name: request.path.pawId", "name: request.path.nope").replace(
        "handleUnauthorizedRequests: Ignore}", "handleUnauthorizedRequests: Sometimes}"
    )
    text = text.replace("name: request.header.Accept-Language", "name: integration.request.header.x")
    found = "\n".join(f"{where}: {message}" for where, message in problems(tmp_path, "serverless.yml", text))
    assert "request.path.nope" in found
    assert "Sometimes" in found
    assert "integration.request.header.x" in found
