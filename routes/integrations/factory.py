"""Builds one integration object per route, once, when the app starts.

Shared resources are injected: the process-wide HTTP ``ClientSession`` and the registry of Python
handler invokers (one per function, shared by every route that uses it).
"""

from __future__ import annotations

import aiohttp

from routes.integrations.aws_clients import AwsClients, ClientKey
from routes.integrations.aws_lambda import AwsLambdaInvoker, lambda_client_key, lambda_target
from routes.integrations.base import Integration
from routes.integrations.http import HttpIntegration, HttpProxyIntegration
from routes.integrations.http_client import HttpClientPool
from routes.integrations.lambda_custom import LambdaCustomIntegration
from routes.integrations.lambda_proxy import LambdaProxyIntegration
from routes.integrations.mock import MockIntegration
from routes.integrations.python_handler import HandlerInvokers
from server.config.model import ApiConfig, ApiKind, GatewayConfig, IntegrationType, MockResponse, RouteConfig

__all__ = ["aws_client_keys", "build_integrations"]


def aws_client_keys(config: GatewayConfig) -> set[ClientKey]:
    """The AWS clients the REST/HTTP routes need, opened once before serving."""
    return {
        lambda_client_key(lambda_target(route.integration, config))
        for api in config.apis
        if api.kind is not ApiKind.WEBSOCKET
        for route in api.routes
        if route.integration.type is IntegrationType.AWS_PROXY
    }


def build_integration(
    route: RouteConfig,
    api: ApiConfig,
    *,
    session: aiohttp.ClientSession,
    client: HttpClientPool | None = None,
    invokers: HandlerInvokers,
    aws: AwsClients | None = None,
    gateway: GatewayConfig | None = None,
) -> Integration:
    config = route.integration
    if config.type is IntegrationType.AWS_PROXY:
        if aws is None or gateway is None:
            raise ValueError(f"{route.method} {route.path}: AWS_PROXY needs the gateway's AWS clients")
        target = lambda_target(config, gateway)
        return LambdaProxyIntegration(
            AwsLambdaInvoker(aws.get(lambda_client_key(target)), target.function),
            payload_format=config.payload_format,
            timeout_ms=config.timeout_ms,
            http_api=api.kind is ApiKind.HTTP,
            binary_media_types=api.binary_media_types,
            function_name=config.function_name,
        )
    if config.type is IntegrationType.PYTHON and config.custom:
        return LambdaCustomIntegration(
            invokers.get(config),
            timeout_ms=config.timeout_ms,
            templated=bool(config.request_templates),
            function_name=config.function_name,
        )
    if config.type is IntegrationType.PYTHON:
        return LambdaProxyIntegration(
            invokers.get(config),
            payload_format=config.payload_format,
            timeout_ms=config.timeout_ms,
            http_api=api.kind is ApiKind.HTTP,
            binary_media_types=api.binary_media_types,
            function_name=config.function_name,
        )
    if config.type is IntegrationType.HTTP_PROXY:
        return HttpProxyIntegration(config, session, client=client)
    if config.type is IntegrationType.HTTP:
        return HttpIntegration(config, session, client=client)
    if config.type is IntegrationType.MOCK:
        return MockIntegration(config.mock or MockResponse())
    raise ValueError(f"{route.method} {route.path}: integration type {config.type} is not supported yet")


def build_integrations(
    config: GatewayConfig,
    *,
    session: aiohttp.ClientSession,
    client: HttpClientPool | None = None,
    invokers: HandlerInvokers,
    aws: AwsClients | None = None,
) -> dict[int, Integration]:
    """Map ``id(route)`` to its integration for every REST/HTTP route of every API."""
    built: dict[int, Integration] = {}
    for api in config.apis:
        if api.kind is ApiKind.WEBSOCKET:
            continue
        for route in api.routes:
            built[id(route)] = build_integration(
                route, api, session=session, client=client, invokers=invokers, aws=aws, gateway=config
            )
    return built
