"""OpenAPI 3 / Swagger 2 with ``x-amazon-apigateway-*`` extensions -> :class:`GatewayConfig`.

What ``aws apigateway import-rest-api`` (or ``apigatewayv2 import-api``) would build, served locally:

* One API named ``info.title``. An HTTP API when the document says so the way AWS's HTTP API
  exports do (``x-amazon-apigateway-importexport-version`` or ``x-amazon-apigateway-cors`` at the
  root), else a REST API. Stage: ``--stage``, else the exported base path (OpenAPI 3
  ``servers[0].variables.basePath.default``, Swagger 2 ``basePath``), else ``dev`` (REST) /
  ``$default`` (HTTP API).
* Operations (and ``x-amazon-apigateway-any-method``, ``ANY``; ``isDefaultRoute``: the HTTP API's
  ``$default`` route) with ``x-amazon-apigateway-integration`` of type ``mock`` (status and body
  from ``responses.default``), ``http``/``http_proxy`` (``uri``, ``httpMethod``,
  ``timeoutInMillis``), ``aws_proxy`` (a Lambda function, served by the Python handler its
  binding names: :mod:`.bindings`). ``${AWS::Region}``/``${AWS::AccountId}``/``${AWS::Partition}``
  are substituted as AWS's import does.
* Operation ``security`` (root-level ``security`` is ignored on import, as AWS does): an ``apiKey``
  scheme named ``x-api-key`` -> API key required; ``x-amazon-apigateway-authtype: awsSigv4`` or
  ``x-amazon-apigateway-auth: {type: AWS_IAM}`` -> IAM; ``x-amazon-apigateway-authorizer`` of type
  ``token``/``request`` (a bound Lambda function), ``jwt``, ``cognito_user_pools``.
* Root: ``api-key-source``, ``binary-media-types``, ``policy`` (resource policy).

What is not enforced is reported with its location (:data:`UNSUPPORTED`): a warning when serving
without it only loses a feature (gateway responses, request validators, mapping templates), an
error when it would open the API (an authorizer that cannot be built, a Lambda without a binding).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server.config.bindings import Bindings, function_name_of, parse_bindings, refuse_lambda_authorizer
from server.config.errors import Issues, loc
from server.config.iam import parse_resource_policy_at
from server.config.model import (
    DEFAULT_STAGE,
    ApiConfig,
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    MockResponse,
    RouteConfig,
    StageConfig,
    frozen_map,
)
from server.config.rules import (
    DEFAULT_TIMEOUTS_MS,
    BuiltApi,
    check_gateway,
    check_path,
    check_routes,
    check_stage_name,
    check_timeout,
    check_uri,
    scalar_text,
)
from server.ids import new_api_id

__all__ = ["UNSUPPORTED", "detect_openapi", "embedded_routes", "load_openapi"]

EXT = "x-amazon-apigateway-"
_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch")
_STAGE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_HEADER_VALUE = re.compile(r"^'(.*)'$", re.DOTALL)
_NOT_VALIDATED = "request validation is not enforced yet: requests reach the integration unvalidated"
# Root extensions AWS defines that Portway does not enforce, and why losing them is not unsafe.
UNSUPPORTED = {
    "gateway-responses": "custom gateway responses are not supported yet: AWS's default errors are answered",
    "request-validators": _NOT_VALIDATED,
    "request-validator": _NOT_VALIDATED,
    "cors": "HTTP API CORS is not supported yet: preflight requests reach the routes",
    "minimum-compression-size": "response compression is not supported (responses are sent uncompressed)",
    "documentation": "API documentation parts are not served",
    "endpoint-configuration": "endpoint configuration has no local meaning",
    "tag-value": "tags have no local meaning",
    "integrations": "reusable integrations (x-amazon-apigateway-integrations) are not supported",
}
_ROOT_KNOWN = {"api-key-source", "binary-media-types", "policy", "importexport-version"}
# Integration fields that change nothing locally when absent or at their defaults.
_INTEGRATION_FIELDS = {
    "type",
    "uri",
    "httpMethod",
    "timeoutInMillis",
    "payloadFormatVersion",
    "responses",
    "requestTemplates",
    "passthroughBehavior",
    "cacheNamespace",
    "connectionType",
}


def detect_openapi(document: Mapping[str, Any]) -> bool:
    version = document.get("openapi")
    return (isinstance(version, str) and version.startswith("3.")) or str(document.get("swagger")) == "2.0"


def load_openapi(
    document: Mapping[str, Any], *, source: Path, stage: str | None, bindings: Bindings, issues: Issues
) -> GatewayConfig:
    """Build the gateway definition; problems go to ``issues`` (the caller raises)."""
    base_dir = source.parent
    bindings = parse_bindings(document.get("x-portway"), base_dir, "x-portway", issues).merged(bindings)
    region, account = "us-east-1", "123456789012"
    loader = _Loader(document, bindings, issues, {"AWS::Region": region, "AWS::AccountId": account})
    return loader.load(source, stage)


def embedded_routes(
    document: Mapping[str, Any], kind: ApiKind, bindings: Bindings, issues: Issues, where: str
) -> tuple[list[tuple[RouteConfig, str]], tuple[str, ...]]:
    """The routes and binary media types of an OpenAPI body inside a template (SAM's
    ``DefinitionBody``, a RestApi's or ApiGatewayV2 Api's ``Body``), intrinsics already evaluated;
    issues located under ``where``."""
    loader = _Loader(document, bindings, issues, {"AWS::Region": "us-east-1"}, where)
    loader.kind = kind
    loader.root_warnings()
    binary = document.get(EXT + "binary-media-types") or []
    return loader._routes(), tuple(
        str(item).replace("~1", "/") for item in binary if isinstance(binary, list)
    )


class _Loader:
    def __init__(
        self,
        document: Mapping[str, Any],
        bindings: Bindings,
        issues: Issues,
        pseudo: Mapping[str, str],
        prefix: str = "",
    ) -> None:
        self.doc = document
        self.prefix = prefix  # where the document sits in a template (its issues' locations)
        self.bindings = bindings
        self.issues = issues
        self.pseudo = {**pseudo, "AWS::Partition": "aws"}
        self.kind = ApiKind.REST
        self.authorizers: dict[str, AuthorizerConfig] = {}
        self.schemes = self._security_schemes()

    def load(self, source: Path, stage: str | None) -> GatewayConfig:
        doc, issues = self.doc, self.issues
        if EXT + "importexport-version" in doc or EXT + "cors" in doc:
            self.kind = ApiKind.HTTP
        version = doc.get(EXT + "importexport-version")
        if version is not None and scalar_text(version) != "1.0":
            issues.warn(EXT + "importexport-version", f"version {version!r}: Portway reads 1.0")
        title = doc.get("info", {}).get("title") if isinstance(doc.get("info"), dict) else None
        name = str(title) if title else source.stem
        stage_name = (
            stage or self._exported_stage() or ("dev" if self.kind is ApiKind.REST else DEFAULT_STAGE)
        )
        check_stage_name(stage_name, self.kind, "--stage", issues)
        self.root_warnings()
        routes = self._routes()
        key_source = str(doc.get(EXT + "api-key-source", "HEADER")).upper()
        if key_source not in ("HEADER", "AUTHORIZER"):
            issues.error(EXT + "api-key-source", f"{key_source!r}: use HEADER or AUTHORIZER")
            key_source = "HEADER"
        binary = doc.get(EXT + "binary-media-types") or []
        if not isinstance(binary, list):
            issues.error(EXT + "binary-media-types", "a list of MIME types")
            binary = []
        policy = None
        if doc.get(EXT + "policy") is not None:
            policy = parse_resource_policy_at(doc[EXT + "policy"], EXT + "policy", issues)
        api = ApiConfig(
            name=name,
            id=new_api_id(name),
            kind=self.kind,
            stages=(StageConfig(stage_name),),
            routes=tuple(route for route, _ in routes),
            binary_media_types=tuple(str(item).replace("~1", "/") for item in binary),
            api_key_source=key_source,
            resource_policy=policy,
        )
        built = BuiltApi(api, "info.title", tuple(where for _, where in routes))
        check_routes(api.kind, routes, issues)
        check_gateway([built], issues)
        if not routes:
            issues.warn("paths", "no operations with an integration: nothing to serve")
        return GatewayConfig(apis=(api,), source=source, warnings=tuple(issues.warnings))

    def root_warnings(self) -> None:
        for key in map(str, self.doc):
            if key.startswith(EXT):
                short = key.removeprefix(EXT)
                if short in UNSUPPORTED:
                    self.issues.warn(loc(self.prefix, key), UNSUPPORTED[short])
                elif short not in _ROOT_KNOWN:
                    self.issues.warn(loc(self.prefix, key), "unknown API Gateway extension (ignored)")

    def _exported_stage(self) -> str | None:
        """The stage an AWS export names in its base path (``/prod``)."""
        base: Any = self.doc.get("basePath")
        servers = self.doc.get("servers")
        if isinstance(servers, list) and servers and isinstance(servers[0], dict):
            variables = servers[0].get("variables")
            if isinstance(variables, dict) and isinstance(variables.get("basePath"), dict):
                base = variables["basePath"].get("default")
        if isinstance(base, str):
            name = base.strip("/")
            if _STAGE_NAME.match(name):
                return name
        return None

    def _security_schemes(self) -> dict[str, Any]:
        components = self.doc.get("components")
        schemes = components.get("securitySchemes") if isinstance(components, dict) else None
        if schemes is None:
            schemes = self.doc.get("securityDefinitions")
        return schemes if isinstance(schemes, dict) else {}

    def _sub(self, text: str) -> str:
        for name, value in self.pseudo.items():
            text = text.replace("${" + name + "}", value)
        return text

    def _routes(self) -> list[tuple[RouteConfig, str]]:
        paths = self.doc.get("paths")
        if not isinstance(paths, dict):
            self.issues.error(loc(self.prefix, "paths"), "missing paths")
            return []
        routes: list[tuple[RouteConfig, str]] = []
        for path, item in paths.items():
            at = loc(loc(self.prefix, "paths"), str(path))
            if not isinstance(item, dict):
                self.issues.error(at, "a path item is a mapping of operations")
                continue
            for key, operation in item.items():
                method = "ANY" if key == EXT + "any-method" else str(key).upper()
                if key not in _OPERATIONS and key != EXT + "any-method":
                    if str(key).startswith(EXT):
                        self.issues.warn(loc(at, str(key)), "unknown API Gateway extension (ignored)")
                    continue
                route = self._route(str(path), method, operation, loc(at, str(key)))
                if route is not None:
                    routes.append((route, loc(at, str(key))))
        return routes

    def _route(self, path: str, method: str, operation: Any, at: str) -> RouteConfig | None:
        issues = self.issues
        if not isinstance(operation, dict):
            issues.error(at, "an operation is a mapping")
            return None
        default_route = self.kind is ApiKind.HTTP and (
            operation.get("isDefaultRoute") is True or path == "/$default"
        )
        parameters: tuple[str, ...] = ()
        if default_route:
            path = DEFAULT_STAGE
        else:
            checked = check_path(path, at, issues)
            if checked is None:
                return None
            parameters = checked
        raw = operation.get(EXT + "integration")
        if not isinstance(raw, dict):
            issues.error(
                loc(at, EXT + "integration"),
                "no integration: AWS refuses to deploy a method without one",
            )
            return None
        integration = self._integration(raw, method, parameters, loc(at, EXT + "integration"))
        auth = self._security(operation, at)
        if integration is None or auth is None:
            return None
        key_required, authorizer, scopes = auth
        if key_required and self.kind is ApiKind.HTTP:
            issues.error(loc(at, "security"), "HTTP APIs have no API keys (use a REST API)")
            return None
        return RouteConfig(
            method,
            path,
            integration,
            api_key_required=key_required,
            authorizer=authorizer,
            authorization_scopes=scopes,
        )

    def _integration(
        self, raw: Mapping[str, Any], method: str, parameters: tuple[str, ...], at: str
    ) -> IntegrationConfig | None:
        issues = self.issues
        kind = str(raw.get("type", "")).lower()
        limit = DEFAULT_TIMEOUTS_MS[self.kind]
        timeout = raw.get("timeoutInMillis", limit)
        if isinstance(timeout, bool) or not isinstance(timeout, int):
            issues.error(loc(at, "timeoutInMillis"), "an integer (milliseconds)")
            return None
        check_timeout(timeout, self.kind, loc(at, "timeoutInMillis"), issues)
        for key in raw:
            if key not in _INTEGRATION_FIELDS:
                issues.warn(loc(at, str(key)), f"integration setting {key!r} is not supported (ignored)")
        if raw.get("connectionType", "INTERNET") != "INTERNET":
            issues.error(loc(at, "connectionType"), "VPC links are not supported: only INTERNET backends")
            return None
        if kind == "mock":
            return IntegrationConfig(IntegrationType.MOCK, timeout, mock=self._mock(raw, at))
        if kind in ("http", "http_proxy"):
            uri = raw.get("uri")
            if not isinstance(uri, str):
                issues.error(loc(at, "uri"), f"a {kind} integration needs a uri")
                return None
            uri = self.bindings.endpoint(self._sub(uri))
            check_uri(uri, parameters, loc(at, "uri"), issues)
            http_method = str(raw.get("httpMethod", method)).upper()
            if kind == "http":
                self._templates(raw, at)
            itype = IntegrationType.HTTP if kind == "http" else IntegrationType.HTTP_PROXY
            return IntegrationConfig(itype, timeout, uri=uri, http_method=http_method)
        if kind == "aws_proxy":
            payload = scalar_text(
                raw.get("payloadFormatVersion", "2.0" if self.kind is ApiKind.HTTP else "1.0")
            )
            if payload not in ("1.0", "2.0") or (payload == "2.0" and self.kind is ApiKind.REST):
                issues.error(
                    loc(at, "payloadFormatVersion"), f"{payload!r}: use 1.0 (REST) or 1.0/2.0 (HTTP API)"
                )
                return None
            return self._function(raw.get("uri"), loc(at, "uri"), timeout, payload)
        if kind == "aws":
            issues.error(
                loc(at, "type"),
                "AWS service (and non-proxy Lambda) integrations are not supported yet; use aws_proxy",
            )
            return None
        issues.error(loc(at, "type"), f"integration type {kind!r}: use mock, http, http_proxy or aws_proxy")
        return None

    def _function(self, uri: Any, at: str, timeout: int, payload: str) -> IntegrationConfig | None:
        name = function_name_of(self._sub(uri)) if isinstance(uri, str) else None
        if name is None:
            self.issues.error(at, f"{uri!r} does not name a Lambda function (…:function:NAME/invocations)")
            return None
        binding = self.bindings.functions.get(name)
        if binding is None:
            self.issues.error(
                at,
                f"Lambda function {name!r} has no local handler: bind it under x-portway.functions "
                "or in a --bindings file (docs/configuration.md)",
            )
            return None
        return binding.integration(name, timeout, payload)

    def _mock(self, raw: Mapping[str, Any], at: str) -> MockResponse:
        """AWS's MOCK: the request template picks the status, ``responses.default`` the headers
        and body (static values; VTL is not evaluated)."""
        status = 200
        template = (raw.get("requestTemplates") or {}).get("application/json")
        match = re.search(r'"statusCode"\s*:\s*(\d{3})', template) if isinstance(template, str) else None
        if match:
            status = int(match.group(1))
        responses = raw.get("responses") or {}
        chosen: Any = responses.get("default") if isinstance(responses, dict) else None
        if isinstance(responses, dict):
            for pattern, response in responses.items():
                if isinstance(response, dict) and str(response.get("statusCode")) == str(status):
                    chosen = response
                    if pattern != "default":
                        break
        if not isinstance(chosen, dict):
            return MockResponse(status)
        headers: dict[str, str] = {}
        for name, value in (chosen.get("responseParameters") or {}).items():
            static = _HEADER_VALUE.match(str(value))
            header = str(name).removeprefix("method.response.header.")
            if static and header != name:
                headers[header] = static.group(1)
            else:
                self.issues.warn(
                    loc(loc(at, "responses"), str(name)), "only static 'value' headers are answered"
                )
        body = ""
        templates = chosen.get("responseTemplates") or {}
        if isinstance(templates, dict) and templates:
            content_type, body = next(iter(templates.items()))
            body = str(body or "")
            headers.setdefault("Content-Type", str(content_type))
            if "$" in body or "#" in body:
                self.issues.warn(
                    loc(at, "responses"), "mapping templates are not evaluated: the template text is answered"
                )
        return MockResponse(int(chosen.get("statusCode", status)), frozen_map(headers), body)

    def _templates(self, raw: Mapping[str, Any], at: str) -> None:
        """HTTP (non-proxy) integrations: templates and parameter mappings are not applied yet."""
        for key in ("requestTemplates", "requestParameters"):
            if raw.get(key):
                self.issues.warn(loc(at, key), "mapping templates are not applied yet: passed through")
        responses = raw.get("responses")
        if isinstance(responses, dict):
            for pattern, response in responses.items():
                if isinstance(response, dict) and (
                    response.get("responseTemplates") or response.get("responseParameters")
                ):
                    self.issues.warn(
                        loc(loc(at, "responses"), str(pattern)),
                        "response mappings are not applied yet: the backend's answer passes through",
                    )

    def _security(
        self, operation: Mapping[str, Any], at: str
    ) -> tuple[bool, AuthorizerConfig | None, tuple[str, ...]] | None:
        """(API key required, authorizer, scopes) of an operation; None once errors are reported."""
        key_required, authorizer = False, None
        scopes: tuple[str, ...] = ()
        auth = operation.get(EXT + "auth")
        if isinstance(auth, dict) and str(auth.get("type", "")).upper() == "AWS_IAM":
            authorizer = AuthorizerConfig("AWS_IAM", AuthorizerType.AWS_IAM)
        security = operation.get("security") or []
        if not isinstance(security, list):
            self.issues.error(loc(at, "security"), "a list of security requirements")
            return None
        for index, requirement in enumerate(security):
            where = loc(loc(at, "security"), index)
            if not isinstance(requirement, dict):
                self.issues.error(where, "a mapping of scheme name: scopes")
                return None
            for name, wanted in requirement.items():
                scheme = self.schemes.get(name)
                if not isinstance(scheme, dict):
                    self.issues.error(where, f"security scheme {name!r} is not defined")
                    return None
                if self._is_api_key(scheme):
                    key_required = True
                    continue
                built = self._authorizer(str(name), scheme)
                if built is None:
                    return None
                if authorizer is not None and authorizer.name != built.name:
                    self.issues.error(where, "one authorizer per operation (AWS applies one)")
                    return None
                authorizer = built
                scopes = tuple(map(str, wanted or ()))
        return key_required, authorizer, scopes

    @staticmethod
    def _is_api_key(scheme: Mapping[str, Any]) -> bool:
        return (
            scheme.get("type") == "apiKey"
            and str(scheme.get("name", "")).lower() == "x-api-key"
            and EXT + "authorizer" not in scheme
            and EXT + "authtype" not in scheme
        )

    def _authorizer(self, name: str, scheme: Mapping[str, Any]) -> AuthorizerConfig | None:
        if name in self.authorizers:
            return self.authorizers[name]
        at = loc(loc(self.prefix, "securitySchemes"), name)
        authtype = str(scheme.get(EXT + "authtype", "")).lower()
        raw = scheme.get(EXT + "authorizer")
        config: AuthorizerConfig | None = None
        if authtype == "awssigv4" and raw is None:
            config = AuthorizerConfig(name, AuthorizerType.AWS_IAM)
        elif isinstance(raw, dict):
            config = self._build_authorizer(name, scheme, raw, loc(at, EXT + "authorizer"))
        else:
            self.issues.error(
                at,
                "a security scheme Portway cannot enforce (an API key in x-api-key, awsSigv4, or "
                "x-amazon-apigateway-authorizer): the routes would be served open",
            )
        if config is not None and refuse_lambda_authorizer(
            config, self.kind, loc(at, EXT + "authorizer"), self.issues
        ):
            return None
        if config is not None:
            self.authorizers[name] = config
        return config

    def _build_authorizer(
        self, name: str, scheme: Mapping[str, Any], raw: Mapping[str, Any], at: str
    ) -> AuthorizerConfig | None:
        kind = str(raw.get("type", "")).lower()
        ttl = raw.get("authorizerResultTtlInSeconds", 300)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 3600:
            self.issues.error(loc(at, "authorizerResultTtlInSeconds"), "0 to 3600 seconds")
            return None
        http = self.kind is ApiKind.HTTP
        if kind in ("token", "request"):
            uri = raw.get("authorizerUri")
            payload = scalar_text(raw.get("authorizerPayloadFormatVersion", "1.0"))
            function = self._function(uri, loc(at, "authorizerUri"), 10_000, payload)
            if function is None:
                return None
            sources = self._identity_sources(raw, scheme, http)
            return AuthorizerConfig(
                name,
                AuthorizerType.TOKEN if kind == "token" else AuthorizerType.REQUEST,
                function=function,
                identity_sources=sources,
                identity_validation=raw.get("identityValidationExpression"),
                ttl_s=ttl,
                payload_format=payload,
                simple_responses=raw.get("enableSimpleResponses") is True,
            )
        if kind == "jwt":
            jwt = raw.get("jwtConfiguration") or {}
            issuer = jwt.get("issuer") if isinstance(jwt, dict) else None
            audience = jwt.get("audience") if isinstance(jwt, dict) else None
            audiences = (audience,) if isinstance(audience, str) else tuple(map(str, audience or ()))
            if not isinstance(issuer, str) or not audiences:
                self.issues.error(loc(at, "jwtConfiguration"), "issuer and audience are required")
                return None
            sources = self._identity_sources(raw, scheme, True) or ("$request.header.Authorization",)
            return AuthorizerConfig(
                name, AuthorizerType.JWT, identity_sources=sources, issuer=issuer, audiences=audiences
            )
        if kind == "cognito_user_pools":
            arns = raw.get("providerARNs")
            if not isinstance(arns, list) or not arns or not all(isinstance(a, str) for a in arns):
                self.issues.error(loc(at, "providerARNs"), "a list of user pool ARNs")
                return None
            sources = self._identity_sources(raw, scheme, False) or ("method.request.header.Authorization",)
            return AuthorizerConfig(
                name,
                AuthorizerType.COGNITO_USER_POOLS,
                identity_sources=sources[:1],
                user_pool_arns=tuple(arns),
            )
        self.issues.error(
            loc(at, "type"), f"authorizer type {kind!r}: use token, request, jwt or cognito_user_pools"
        )
        return None

    @staticmethod
    def _identity_sources(raw: Mapping[str, Any], scheme: Mapping[str, Any], http: bool) -> tuple[str, ...]:
        source = raw.get("identitySource")
        if isinstance(source, list):
            return tuple(map(str, source))
        if isinstance(source, str) and source:
            return tuple(part.strip() for part in source.split(","))
        header = scheme.get("name")
        if isinstance(header, str) and header and header != "Unused":
            return (f"$request.header.{header}" if http else f"method.request.header.{header}",)
        return ()
