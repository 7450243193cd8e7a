"""Plain CloudFormation API resources (what CDK synthesises, what SAM expands to).

* ``AWS::Lambda::Function``: served when its code is a local folder (CDK's ``aws:asset:path``
  metadata, relative to the template: ``cdk.out``), ``Handler`` imported from it.
* REST (``AWS::ApiGateway::*``): ``RestApi`` (``Name``, ``BinaryMediaTypes``, ``ApiKeySourceType``),
  ``Resource`` trees (``ParentId`` -> ``RootResourceId`` or another resource, ``PathPart``),
  ``Method`` (``HttpMethod``, ``AuthorizationType``/``AuthorizerId``, ``ApiKeyRequired``,
  ``Integration``: ``AWS_PROXY`` to a Lambda, ``HTTP``/``HTTP_PROXY``, ``MOCK``), ``Authorizer``,
  ``Stage`` (else the ``Deployment``'s ``StageName``, else ``prod``).
* HTTP and WebSocket (``AWS::ApiGatewayV2::*``): ``Api`` (``ProtocolType``,
  ``RouteSelectionExpression``), ``Route`` (``RouteKey``, ``Target: integrations/<id>``,
  authorization), ``Integration``, ``RouteResponse`` (``$default``: a two-way WebSocket route),
  ``Authorizer`` (JWT, REQUEST), ``Stage``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from server.config.bindings import FunctionBinding, refuse_lambda_authorizer
from server.config.errors import loc
from server.config.model import (
    DEFAULT_STAGE,
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    IntegrationConfig,
    IntegrationType,
    MockResponse,
    RouteConfig,
    frozen_map,
)
from server.config.rules import (
    DEFAULT_TIMEOUTS_MS,
    METHODS,
    check_path,
    check_timeout,
    check_uri,
    check_websocket_route_key,
    lambda_handler,
    scalar_text,
)
from server.config.template import ApiDraft, Template

__all__ = ["read_apis", "read_functions"]

V1, V2 = "AWS::ApiGateway::", "AWS::ApiGatewayV2::"
_READ_V1 = {"RestApi", "Resource", "Method", "Stage", "Authorizer"}
_READ_V2 = {"Api", "Route", "Integration", "RouteResponse", "Stage", "Authorizer"}
_SUB_REF = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def _props(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("Properties")
    return props if isinstance(props, dict) else {}


def _where(logical_id: str, *keys: str) -> str:
    location = loc(loc("Resources", logical_id), "Properties")
    for key in keys:
        location = loc(location, key)
    return location


def read_functions(t: Template) -> set[str]:
    handled = set()
    for logical_id, body in t.resources.items():
        if body.get("Type") != "AWS::Lambda::Function":
            continue
        handled.add(logical_id)
        props = _props(body)
        metadata: dict[str, Any] = body.get("Metadata") or {}
        asset = metadata.get("aws:asset:path")
        handler = props.get("Handler")
        if not isinstance(asset, str) or not isinstance(handler, str):
            t.issues.warn(
                _where(logical_id, "Code"),
                "the code is not a local folder (no aws:asset:path): bind the function (--bindings)",
            )
            continue
        task_root = (t.base_dir / asset).resolve()
        module_handler = lambda_handler(handler, task_root, _where(logical_id, "Handler"), t.issues)
        if module_handler is None:
            continue
        env_raw = (props.get("Environment") or {}).get("Variables") or {}
        env = t.value(env_raw, _where(logical_id, "Environment"), "environment") or {}
        timeout = props.get("Timeout", 3)
        memory = props.get("MemorySize", 128)
        binding = FunctionBinding(
            module_handler,
            task_root,
            frozen_map({str(k): scalar_text(v) for k, v in env.items()}),
            memory if isinstance(memory, int) else 128,
        )
        t.add_function(logical_id, binding, float(timeout) if isinstance(timeout, int | float) else 3.0)
    return handled


def read_apis(t: Template) -> set[str]:
    handled: set[str] = set()
    of_type = {
        str(body.get("Type")): [n for n, b in t.resources.items() if b.get("Type") == body.get("Type")]
        for body in t.resources.values()
    }
    for short in _READ_V1:
        handled.update(of_type.get(V1 + short, []))
    for short in _READ_V2:
        handled.update(of_type.get(V2 + short, []))
    stages = _stages(t, of_type)
    for logical_id in of_type.get(V1 + "RestApi", []):
        props = _props(t.resources[logical_id])
        if "BodyS3Location" in props:
            t.issues.error(
                _where(logical_id, "BodyS3Location"), "an OpenAPI body in S3 is not read: use Body"
            )
        draft = t.draft(logical_id, ApiKind.REST, stages.get(logical_id, "prod"))
        draft.binary_media_types = tuple(map(str, props.get("BinaryMediaTypes") or ()))
        if "Body" in props:
            t.openapi_body(draft, props["Body"], _where(logical_id, "Body"))
        draft.api_key_source = str(props.get("ApiKeySourceType", "HEADER"))
    for logical_id in of_type.get(V2 + "Api", []):
        props = _props(t.resources[logical_id])
        protocol = props.get("ProtocolType")
        for key in ("BodyS3Location", "Target", "CorsConfiguration"):
            if key in props:
                t.issues.error(
                    _where(logical_id, key), f"{key} is not supported yet: declare routes and integrations"
                )
        if protocol not in ("HTTP", "WEBSOCKET"):
            t.issues.error(_where(logical_id, "ProtocolType"), "HTTP or WEBSOCKET")
            continue
        kind = ApiKind.HTTP if protocol == "HTTP" else ApiKind.WEBSOCKET
        default = DEFAULT_STAGE if kind is ApiKind.HTTP else "production"
        draft = t.draft(logical_id, kind, stages.get(logical_id, default))
        if "Body" in props and kind is ApiKind.HTTP:
            t.openapi_body(draft, props["Body"], _where(logical_id, "Body"))
        if kind is ApiKind.WEBSOCKET:
            draft.route_selection_expression = str(
                props.get("RouteSelectionExpression", "$request.body.action")
            )
    paths = _resource_paths(t, of_type)
    for logical_id in of_type.get(V1 + "Method", []):
        _method(t, logical_id, paths)
    two_way = {
        t.ref_target(_props(t.resources[n]).get("RouteId"))
        for n in of_type.get(V2 + "RouteResponse", [])
        if _props(t.resources[n]).get("RouteResponseKey") == "$default"
    }
    for logical_id in of_type.get(V2 + "Route", []):
        _route(t, logical_id, logical_id in two_way)
    return handled


def _stages(t: Template, of_type: dict[str, list[str]]) -> dict[str, str]:
    """API logical id -> stage name (Stage resources, else a Deployment's StageName)."""
    stages: dict[str, str] = {}
    for kind, api_key in (
        (V1 + "Deployment", "RestApiId"),
        (V1 + "Stage", "RestApiId"),
        (V2 + "Stage", "ApiId"),
    ):
        for logical_id in of_type.get(kind, []):
            props = _props(t.resources[logical_id])
            api, name = t.ref_target(props.get(api_key)), props.get("StageName")
            if api is not None and isinstance(name, str):
                if (
                    api in stages
                    and kind.endswith("Stage")
                    and stages[api] != name
                    and api + ":stage" in stages
                ):
                    t.issues.warn(
                        _where(logical_id, "StageName"), f"one stage per API is served: {stages[api]!r}"
                    )
                    continue
                stages[api] = name
                if kind.endswith("Stage"):
                    stages[api + ":stage"] = name
    return stages


def _resource_paths(t: Template, of_type: dict[str, list[str]]) -> dict[str, tuple[str, str]]:
    """Resource logical id (and ``<api>.RootResourceId``) -> (API logical id, path)."""
    paths: dict[str, tuple[str, str]] = {}
    for api in of_type.get(V1 + "RestApi", []):
        paths[f"{api}.RootResourceId"] = (api, "/")

    def resolve(logical_id: str, depth: int = 0) -> tuple[str, str] | None:
        if logical_id in paths:
            return paths[logical_id]
        body = t.resources.get(logical_id)
        if body is None or body.get("Type") != V1 + "Resource" or depth > 64:
            return None
        props = _props(body)
        parent = _parent_id(props.get("ParentId"))
        part = props.get("PathPart")
        resolved = resolve(parent, depth + 1) if parent else None
        if resolved is None or not isinstance(part, str):
            t.issues.error(
                _where(logical_id), "ParentId (a Resource or the RestApi's RootResourceId) and PathPart"
            )
            return None
        api, path = resolved
        paths[logical_id] = (api, f"{path.rstrip('/')}/{part}")
        return paths[logical_id]

    for logical_id in of_type.get(V1 + "Resource", []):
        resolve(logical_id)
    return paths


def _parent_id(raw: Any) -> str | None:
    if isinstance(raw, dict) and "Fn::GetAtt" in raw:
        target = raw["Fn::GetAtt"]
        parts = target.split(".", 1) if isinstance(target, str) else target
        if isinstance(parts, list) and len(parts) == 2 and parts[1] == "RootResourceId":
            return f"{parts[0]}.RootResourceId"
    if isinstance(raw, dict) and isinstance(raw.get("Ref"), str):
        return str(raw["Ref"])
    return None


def _method(t: Template, logical_id: str, paths: dict[str, tuple[str, str]]) -> None:
    props, at = _props(t.resources[logical_id]), _where(logical_id)
    resource = _parent_id(props.get("ResourceId"))
    found = paths.get(resource) if resource else None
    if found is None or found[0] not in t.apis:
        t.issues.error(
            loc(at, "ResourceId"), "a Resource of a RestApi in this template, or its RootResourceId"
        )
        return
    api_id, path = found
    draft = t.apis[api_id]
    method = str(props.get("HttpMethod", "")).upper()
    if method not in METHODS:
        t.issues.error(loc(at, "HttpMethod"), f"{method!r}: use one of {', '.join(METHODS)}")
        return
    parameters = check_path(path, at, t.issues)
    if parameters is None:
        return
    for key in props:
        if key in ("RequestValidatorId", "RequestModels", "RequestParameters"):
            t.issues.warn(loc(at, key), f"{key} is not enforced yet (ignored)")
    integration = _integration(
        t, draft, props.get("Integration") or {}, method, parameters, loc(at, "Integration")
    )
    authorizer = _authorization(t, draft, props, at)
    if integration is None or authorizer is False:
        return
    route = RouteConfig(
        method,
        path,
        integration,
        api_key_required=props.get("ApiKeyRequired") is True,
        authorizer=authorizer,
        authorization_scopes=tuple(map(str, props.get("AuthorizationScopes") or ())),
    )
    draft.routes.append((route, at))


def _integration(
    t: Template, draft: ApiDraft, raw: dict[str, Any], method: str, parameters: tuple[str, ...], at: str
) -> IntegrationConfig | None:
    """A v1 ``Integration`` property or a v2 ``Integration`` resource's properties."""
    kind = str(raw.get("Type", raw.get("IntegrationType", ""))).upper()
    uri_raw = raw.get("Uri", raw.get("IntegrationUri"))
    timeout = raw.get("TimeoutInMillis")
    for key in ("RequestTemplates", "IntegrationResponses", "RequestParameters", "ResponseParameters"):
        if raw.get(key) and kind != "MOCK":
            t.issues.warn(loc(at, key), f"{key} are not applied yet: passed through")
    if kind == "AWS_PROXY":
        default = "2.0" if draft.kind is ApiKind.HTTP else "1.0"
        payload = scalar_text(raw.get("PayloadFormatVersion", default))
        return t.lambda_integration(uri_raw, loc(at, "Uri"), draft.kind, payload, timeout)
    if kind in ("HTTP", "HTTP_PROXY"):
        uri = t.text(uri_raw, loc(at, "Uri"), "URI")
        if uri is None:
            return None
        uri = t.bindings.endpoint(uri)
        check_uri(uri, parameters, loc(at, "Uri"), t.issues)
        http_method = str(raw.get("IntegrationHttpMethod", raw.get("IntegrationMethod", method))).upper()
        itype = IntegrationType.HTTP if kind == "HTTP" else IntegrationType.HTTP_PROXY
        timeout_ms = timeout if isinstance(timeout, int) else DEFAULT_TIMEOUTS_MS[draft.kind]
        check_timeout(timeout_ms, draft.kind, loc(at, "TimeoutInMillis"), t.issues)
        return IntegrationConfig(itype, timeout_ms, uri=uri, http_method=http_method)
    if kind == "MOCK":
        status = 200
        template = (raw.get("RequestTemplates") or {}).get("application/json")
        match = re.search(r'"statusCode"\s*:\s*(\d{3})', template) if isinstance(template, str) else None
        if match:
            status = int(match.group(1))
        body, headers = "", {}
        for response in raw.get("IntegrationResponses") or ():
            if isinstance(response, dict) and str(response.get("StatusCode")) == str(status):
                templates = response.get("ResponseTemplates") or {}
                if templates:
                    content_type, body = next(iter(templates.items()))
                    headers["Content-Type"] = str(content_type)
                for name, value in (response.get("ResponseParameters") or {}).items():
                    static = re.fullmatch(r"'(.*)'", str(value))
                    if static and str(name).startswith("method.response.header."):
                        headers[str(name).removeprefix("method.response.header.")] = static.group(1)
        return IntegrationConfig(
            IntegrationType.MOCK, mock=MockResponse(status, frozen_map(headers), str(body))
        )
    t.issues.error(loc(at, "Type"), f"integration type {kind!r}: use AWS_PROXY, HTTP, HTTP_PROXY or MOCK")
    return None


def _authorization(
    t: Template, draft: ApiDraft, props: dict[str, Any], at: str
) -> AuthorizerConfig | None | Literal[False]:
    """The route's authorizer; None: open; False: reported (never served open)."""
    kind = str(props.get("AuthorizationType", "NONE")).upper()
    if kind == "NONE":
        return None
    if kind == "AWS_IAM":
        return AuthorizerConfig("AWS_IAM", AuthorizerType.AWS_IAM)
    target = t.ref_target(props.get("AuthorizerId"))
    body = t.resources.get(target or "")
    if target is None or body is None or body.get("Type") not in (V1 + "Authorizer", V2 + "Authorizer"):
        t.issues.error(loc(at, "AuthorizerId"), f"AuthorizationType {kind} needs !Ref of an Authorizer")
        return False
    if target in draft.authorizers:
        return draft.authorizers[target]
    config = _authorizer(t, draft, target, _props(body), _where(target))
    if config is None or refuse_lambda_authorizer(config, draft.kind, _where(target), t.issues):
        return False
    draft.authorizers[target] = config
    return config


def _authorizer(
    t: Template, draft: ApiDraft, name: str, props: dict[str, Any], at: str
) -> AuthorizerConfig | None:
    kind = str(props.get("Type", props.get("AuthorizerType", ""))).upper()
    sources_raw = props.get("IdentitySource") or ()
    sources = (
        tuple(s.strip() for s in sources_raw.split(","))
        if isinstance(sources_raw, str)
        else tuple(map(str, sources_raw))
    )
    ttl = props.get("AuthorizerResultTtlInSeconds", 300)
    if kind == "JWT":
        jwt = props.get("JwtConfiguration") or {}
        issuer = t.text(jwt.get("Issuer"), loc(at, "JwtConfiguration"), "issuer")
        audiences = t.value(jwt.get("Audience"), loc(at, "JwtConfiguration"), "audience")
        if issuer is None or not audiences:
            return None
        return AuthorizerConfig(
            name,
            AuthorizerType.JWT,
            identity_sources=sources,
            issuer=issuer,
            audiences=tuple(map(str, audiences)),
        )
    if kind == "COGNITO_USER_POOLS":
        arns = t.value(props.get("ProviderARNs"), loc(at, "ProviderARNs"), "user pool ARNs")
        if not arns:
            return None
        return AuthorizerConfig(
            name,
            AuthorizerType.COGNITO_USER_POOLS,
            identity_sources=sources[:1],
            user_pool_arns=tuple(map(str, arns)),
        )
    if kind in ("TOKEN", "REQUEST"):
        payload = scalar_text(props.get("AuthorizerPayloadFormatVersion", "1.0"))
        function = t.lambda_integration(
            props.get("AuthorizerUri"), loc(at, "AuthorizerUri"), draft.kind, payload, 10_000
        )
        if function is None:
            return None
        return AuthorizerConfig(
            name,
            AuthorizerType.TOKEN if kind == "TOKEN" else AuthorizerType.REQUEST,
            function=function,
            identity_sources=sources,
            identity_validation=props.get("IdentityValidationExpression"),
            ttl_s=int(ttl),
            payload_format=payload,
            simple_responses=props.get("EnableSimpleResponses") is True,
        )
    t.issues.error(loc(at, "Type"), f"authorizer type {kind!r} is not supported")
    return None


def _target_integration(t: Template, raw: Any) -> str | None:
    """The Integration a Route's ``Target`` (``integrations/<id>``, via Join or Sub) names."""
    if isinstance(raw, dict) and "Ref" in raw:
        name = str(raw["Ref"])
        return name if t.resources.get(str(name), {}).get("Type") == V2 + "Integration" else None
    if isinstance(raw, dict):
        for value in raw.values():
            found = _target_integration(t, value)
            if found:
                return found
    if isinstance(raw, list):
        for value in raw:
            found = _target_integration(t, value)
            if found:
                return found
    if isinstance(raw, str):
        for name in _SUB_REF.findall(raw):
            if t.resources.get(name, {}).get("Type") == V2 + "Integration":
                return str(name)
    return None


def _route(t: Template, logical_id: str, two_way: bool) -> None:
    props, at = _props(t.resources[logical_id]), _where(logical_id)
    api = t.ref_target(props.get("ApiId"))
    if api is None or api not in t.apis:
        t.issues.error(loc(at, "ApiId"), "must be !Ref of an AWS::ApiGatewayV2::Api in this template")
        return
    draft = t.apis[api]
    key = props.get("RouteKey")
    if not isinstance(key, str):
        t.issues.error(loc(at, "RouteKey"), "missing RouteKey")
        return
    target = _target_integration(t, props.get("Target"))
    parameters: tuple[str, ...] = ()
    if target is None:
        t.issues.error(loc(at, "Target"), "integrations/<Integration id> of an Integration in this template")
        return
    if draft.kind is ApiKind.WEBSOCKET:
        if not check_websocket_route_key(key, loc(at, "RouteKey"), t.issues):
            return
        method, path = "", key
    elif key == DEFAULT_STAGE:
        method, path = "ANY", DEFAULT_STAGE
    else:
        method, _, path = key.partition(" ")
        checked = check_path(path, loc(at, "RouteKey"), t.issues)
        if method not in METHODS or checked is None:
            t.issues.error(loc(at, "RouteKey"), f"{key!r}: METHOD /path or $default")
            return
        parameters = checked
    integration = _integration(
        t, draft, _props(t.resources[target]), method or "POST", parameters, _where(target)
    )
    authorizer = _authorization(t, draft, props, at)
    if integration is None or authorizer is False:
        return
    route = RouteConfig(
        method,
        path,
        integration,
        api_key_required=props.get("ApiKeyRequired") is True,
        route_response=two_way,
        authorizer=authorizer,
        authorization_scopes=tuple(map(str, props.get("AuthorizationScopes") or ())),
    )
    draft.routes.append((route, at))
