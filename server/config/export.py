"""A served API -> an OpenAPI 3 document with API Gateway's extensions (``portway export``).

The document is what ``aws apigateway get-export --export-type oas30 --extensions integrations,
authorizers`` gives for the same API, so it imports into AWS, and Portway serves it back
(:mod:`.openapi`): Python handlers become ``aws_proxy`` integrations of a Lambda function of the
same name, and the root ``x-portway.functions`` keeps each one's handler and code folder, so the
export needs no ``--bindings`` to be served again.

What OpenAPI cannot carry (stages beyond the first, stage and method throttles, usage plans and
keys, WebSocket APIs) is listed in the returned notes rather than dropped unnoticed. Pure core.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from server.config.model import (
    DEFAULT_STAGE,
    ApiConfig,
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
)

__all__ = ["export_openapi"]

EXT = "x-amazon-apigateway-"


def export_openapi(config: GatewayConfig, api: ApiConfig, out_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The OpenAPI document of ``api`` and notes on what it leaves out. ``out_dir``: where the
    document goes (code folders are written relative to it)."""
    notes: list[str] = []
    if api.kind is ApiKind.WEBSOCKET:
        raise ValueError(f"{api.name}: WebSocket APIs have no OpenAPI form (AWS exports none either)")
    exporter = _Exporter(config, out_dir, notes)
    stage = api.stages[0]
    document: dict[str, Any] = {
        "openapi": "3.0.1",
        "info": {"title": api.name, "version": "1.0"},
        "servers": [
            {
                "url": f"https://{api.id}.execute-api.{config.region}.amazonaws.com/{{basePath}}",
                "variables": {
                    "basePath": {"default": "" if stage.name == DEFAULT_STAGE else f"/{stage.name}"}
                },
            }
        ],
        "paths": {},
    }
    if len(api.stages) > 1:
        notes.append(f"only stage {stage.name!r} is exported (the document names one)")
    if stage.throttle or stage.method_throttles or stage.variables:
        notes.append("stage throttles and variables are not part of an OpenAPI export")
    if api.kind is ApiKind.HTTP:
        document[EXT + "importexport-version"] = "1.0"
    for route in api.routes:
        path = "/$default" if route.path == DEFAULT_STAGE else route.path
        method = EXT + "any-method" if route.method == "ANY" else route.method.lower()
        operation: dict[str, Any] = {EXT + "integration": exporter.integration(route.integration, api.kind)}
        if route.path == DEFAULT_STAGE:
            operation["isDefaultRoute"] = True
        operation["responses"] = {"default": {"description": "Default response"}}
        security: list[dict[str, list[str]]] = []
        if route.api_key_required:
            exporter.schemes["api_key"] = {"type": "apiKey", "name": "x-api-key", "in": "header"}
            security.append({"api_key": []})
        if route.authorizer is not None:
            name = exporter.authorizer(route.authorizer, api.kind)
            security.append({name: list(route.authorization_scopes)})
        if security:
            operation["security"] = security
        document["paths"].setdefault(path, {})[method] = operation
    if exporter.schemes:
        document["components"] = {"securitySchemes": exporter.schemes}
    if api.api_key_source != "HEADER":
        document[EXT + "api-key-source"] = api.api_key_source
    if api.binary_media_types:
        document[EXT + "binary-media-types"] = list(api.binary_media_types)
    if api.resource_policy is not None:
        notes.append("the resource policy is not exported")
    if config.usage_plans or config.api_keys:
        notes.append("usage plans and API keys are not part of an OpenAPI export")
    if exporter.functions:
        document["x-portway"] = {"functions": exporter.functions}
    return document, notes


class _Exporter:
    def __init__(self, config: GatewayConfig, out_dir: Path, notes: list[str]) -> None:
        self.config = config
        self.out_dir = out_dir
        self.notes = notes
        self.schemes: dict[str, Any] = {}
        self.functions: dict[str, Any] = {}

    def function_uri(self, name: str) -> str:
        region, account = self.config.region, self.config.account_id
        return (
            f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/"
            f"arn:aws:lambda:{region}:{account}:function:{name}/invocations"
        )

    def bind(self, integration: IntegrationConfig) -> str:
        """The Lambda function name of a Python handler, recorded in ``x-portway.functions``."""
        name = integration.function_name or (integration.handler or "function").replace(".", "-")
        if integration.type is IntegrationType.PYTHON and integration.code_dir is not None:
            code = Path(os.path.relpath(integration.code_dir, self.out_dir)).as_posix()
            entry: dict[str, Any] = {"handler": integration.handler, "codeUri": code}
            if integration.environment:
                entry["environment"] = dict(integration.environment)
            if integration.memory_mb != 1024:
                entry["memorySize"] = integration.memory_mb
            self.functions[name] = entry
        return name

    def integration(self, integration: IntegrationConfig, kind: ApiKind) -> dict[str, Any]:
        body: dict[str, Any]
        if integration.type in (IntegrationType.PYTHON, IntegrationType.AWS_PROXY):
            body = {
                "type": "aws_proxy",
                "httpMethod": "POST",
                "uri": self.function_uri(self.bind(integration)),
            }
            if kind is ApiKind.HTTP:
                body["payloadFormatVersion"] = integration.payload_format
        elif integration.type in (IntegrationType.HTTP, IntegrationType.HTTP_PROXY):
            body = {
                "type": integration.type.value.lower(),
                "httpMethod": integration.http_method,
                "uri": integration.uri,
            }
            if kind is ApiKind.HTTP:
                body["payloadFormatVersion"] = "1.0"
        elif integration.type is IntegrationType.MOCK:
            mock = integration.mock
            status = mock.status if mock else 200
            response: dict[str, Any] = {"statusCode": str(status)}
            if mock and mock.headers:
                response["responseParameters"] = {
                    f"method.response.header.{name}": f"'{value}'" for name, value in mock.headers.items()
                }
            if mock and mock.body:
                content_type = next(
                    (v for k, v in mock.headers.items() if k.lower() == "content-type"), "application/json"
                )
                response["responseTemplates"] = {content_type: mock.body}
            body = {
                "type": "mock",
                "requestTemplates": {"application/json": f'{{"statusCode": {status}}}'},
                "responses": {"default": response},
                "passthroughBehavior": "when_no_match",
            }
        else:
            body = {"type": integration.type.value.lower()}
            self.notes.append(f"integration type {integration.type.value} is exported without its settings")
        body["timeoutInMillis"] = integration.timeout_ms
        return body

    def authorizer(self, config: AuthorizerConfig, kind: ApiKind) -> str:
        name = config.name
        if name in self.schemes:
            return name
        http = kind is ApiKind.HTTP
        scheme: dict[str, Any]
        if config.type is AuthorizerType.AWS_IAM:
            scheme = {"type": "apiKey", "name": "Authorization", "in": "header", EXT + "authtype": "awsSigv4"}
        elif config.type is AuthorizerType.JWT:
            scheme = {
                "type": "oauth2",
                "flows": {},
                EXT + "authorizer": {
                    "type": "jwt",
                    "identitySource": ",".join(config.identity_sources),
                    "jwtConfiguration": {"issuer": config.issuer, "audience": list(config.audiences)},
                },
            }
        elif config.type is AuthorizerType.COGNITO_USER_POOLS:
            header = (config.identity_sources or ("method.request.header.Authorization",))[0].rsplit(".", 1)[
                -1
            ]
            scheme = {
                "type": "apiKey",
                "name": header,
                "in": "header",
                EXT + "authtype": "cognito_user_pools",
                EXT + "authorizer": {
                    "type": "cognito_user_pools",
                    "providerARNs": list(config.user_pool_arns),
                },
            }
        else:
            assert config.function is not None  # Lambda authorizers always have one (loaders check)
            authorizer: dict[str, Any] = {
                "type": config.type.value.lower(),
                "authorizerUri": self.function_uri(self.bind(config.function)),
                "identitySource": ",".join(config.identity_sources),
                "authorizerResultTtlInSeconds": config.ttl_s,
            }
            if config.identity_validation:
                authorizer["identityValidationExpression"] = config.identity_validation
            if http:
                authorizer["authorizerPayloadFormatVersion"] = config.payload_format
                authorizer["enableSimpleResponses"] = config.simple_responses
            scheme = {
                "type": "apiKey",
                "name": "Unused" if config.type is AuthorizerType.REQUEST else "Authorization",
                "in": "header",
                EXT + "authtype": "custom",
                EXT + "authorizer": authorizer,
            }
        self.schemes[name] = scheme
        return name
