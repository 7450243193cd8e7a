"""SAM resources (``Transform: AWS::Serverless-2016-10-31``) as SAM would expand them.

* ``AWS::Serverless::Function``: ``CodeUri`` (a local folder, Lambda's task root) + ``Handler``
  (``module.function``), ``Timeout`` (default 3 s), ``MemorySize``, ``Environment.Variables``,
  ``FunctionName`` (default: the logical id), with ``Globals.Function`` under them.
* ``Api`` events -> REST routes of ``RestApiId`` or SAM's implicit ``ServerlessRestApi`` (stage
  ``Prod``); ``HttpApi`` events -> HTTP API routes of ``ApiId`` or the implicit
  ``ServerlessHttpApi`` (``$default`` stage, payload 2.0; no ``Path``/``Method``: the ``$default``
  route). ``Auth.Authorizer`` (a name, ``NONE``, ``AWS_IAM``), ``Auth.ApiKeyRequired``.
* ``AWS::Serverless::Api``/``HttpApi`` (with ``Globals.Api``/``Globals.HttpApi``): ``Name``,
  ``StageName``, ``BinaryMediaTypes``, ``Auth`` (``DefaultAuthorizer``, ``ApiKeyRequired``,
  ``Authorizers``: Lambda ``FunctionArn`` TOKEN/REQUEST, ``UserPoolArn``, ``JwtConfiguration``).
"""

from __future__ import annotations

from typing import Any, Literal

from server.config.bindings import FunctionBinding, refuse_lambda_authorizer
from server.config.errors import loc
from server.config.model import (
    DEFAULT_STAGE,
    ApiKind,
    AuthorizerConfig,
    AuthorizerType,
    RouteConfig,
    frozen_map,
)
from server.config.rules import METHODS, check_path, lambda_handler, scalar_text
from server.config.template import ApiDraft, Template

__all__ = ["read_apis", "read_functions"]

FUNCTION = "AWS::Serverless::Function"
API = "AWS::Serverless::Api"
HTTP_API = "AWS::Serverless::HttpApi"
_AUTHORIZER_TIMEOUT_MS = 10_000  # AWS's limit for a Lambda authorizer
# Properties that change nothing a local gateway does.
_FUNCTION_HARMLESS = {
    "Runtime", "Architectures", "Description", "Role", "Policies", "Tracing", "Tags", "Layers",
    "AutoPublishAlias", "DeploymentPreference", "ReservedConcurrentExecutions", "LoggingConfig",
    "EphemeralStorage", "VpcConfig", "PermissionsBoundary", "ProvisionedConcurrencyConfig",
}  # fmt: skip
_FUNCTION_READ = {"CodeUri", "Handler", "Timeout", "MemorySize", "Environment", "FunctionName", "Events"}
_API_READ = {"Name", "StageName", "Auth", "BinaryMediaTypes", "DefinitionBody", "DefinitionUri"}
_API_HARMLESS = {
    "Description", "Tags", "TracingEnabled", "EndpointConfiguration", "OpenApiVersion", "AccessLogSetting",
    "CacheClusterEnabled", "CacheClusterSize", "Variables", "FailOnWarnings", "DisableExecuteApiEndpoint",
}  # fmt: skip


def _globals(t: Template) -> dict[str, Any]:
    value = t.doc.get("Globals")
    return value if isinstance(value, dict) else {}


def read_functions(t: Template) -> set[str]:
    defaults = _globals(t).get("Function")
    defaults = defaults if isinstance(defaults, dict) else {}
    handled = set()
    for logical_id, body in t.resources.items():
        if body.get("Type") != FUNCTION:
            continue
        handled.add(logical_id)
        props: dict[str, Any] = body.get("Properties") or {}
        where = loc(loc("Resources", logical_id), "Properties")
        merged: dict[str, Any] = {**defaults, **props}
        env = {
            **((defaults.get("Environment") or {}).get("Variables") or {}),
            **((props.get("Environment") or {}).get("Variables") or {}),
        }
        for key in merged:
            if key not in _FUNCTION_READ | _FUNCTION_HARMLESS:
                t.issues.warn(loc(where, key), f"{key} is not applied locally (ignored)")
        runtime = merged.get("Runtime")
        if isinstance(runtime, str) and not runtime.startswith("python"):
            t.issues.warn(loc(where, "Runtime"), f"runtime {runtime!r}: Portway runs Python handlers only")
        binding = _binding(t, merged, env, where)
        timeout = merged.get("Timeout", 3)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            t.issues.error(loc(where, "Timeout"), "a positive number of seconds")
            timeout = 3
        if binding is not None:
            t.add_function(logical_id, binding, float(timeout))
    return handled


def _binding(t: Template, props: dict[str, Any], env: dict[str, Any], where: str) -> FunctionBinding | None:
    code_uri, handler = props.get("CodeUri"), props.get("Handler")
    if props.get("PackageType") == "Image" or props.get("InlineCode") is not None:
        t.issues.warn(where, "image and inline functions are not run locally: bind the function (--bindings)")
        return None
    if not isinstance(code_uri, str):
        t.issues.warn(loc(where, "CodeUri"), "not a local folder: bind the function (--bindings)")
        return None
    if not isinstance(handler, str):
        t.issues.error(loc(where, "Handler"), "missing Handler (module.function)")
        return None
    task_root = (t.base_dir / code_uri).resolve()
    module_handler = lambda_handler(handler, task_root, loc(where, "Handler"), t.issues)
    if module_handler is None:
        return None
    environment: dict[str, str] = {}
    for key, raw in env.items():
        value = t.evaluator.evaluate(raw)
        if isinstance(value, str | int | float | bool):
            environment[str(key)] = scalar_text(value)
        else:
            t.issues.warn(
                loc(loc(loc(where, "Environment"), "Variables"), str(key)),
                "cannot be resolved locally (left out)",
            )
    memory = props.get("MemorySize", 128)
    memory = memory if isinstance(memory, int) and not isinstance(memory, bool) and memory > 0 else 128
    return FunctionBinding(module_handler, task_root, frozen_map(environment), memory)


def read_apis(t: Template) -> set[str]:
    globals_ = _globals(t)
    handled = set()
    auth: dict[str, dict[str, Any]] = {}  # API logical id -> its Auth
    for logical_id, body in t.resources.items():
        kind = body.get("Type")
        if kind not in (API, HTTP_API):
            continue
        handled.add(logical_id)
        http = kind == HTTP_API
        defaults = globals_.get("HttpApi" if http else "Api") or {}
        props = {**defaults, **(body.get("Properties") or {})}
        where = loc(loc("Resources", logical_id), "Properties")
        for key in props:
            if key in (
                "Cors",
                "CorsConfiguration",
                "GatewayResponses",
                "MethodSettings",
                "Models",
                "Domain",
            ):
                t.issues.warn(loc(where, key), f"{key} is not supported yet (ignored)")
            elif key not in _API_READ | _API_HARMLESS:
                t.issues.warn(loc(where, key), f"{key} is not applied locally (ignored)")
        default_stage = DEFAULT_STAGE if http else "Prod"
        stage = t.text(props.get("StageName", default_stage), loc(where, "StageName"), "stage name")
        draft = t.draft(logical_id, ApiKind.HTTP if http else ApiKind.REST, stage or default_stage)
        binary = props.get("BinaryMediaTypes") or []
        draft.binary_media_types = tuple(str(item).replace("~1", "/") for item in binary)
        auth[logical_id] = props.get("Auth") or {}
        if "DefinitionBody" in props:
            t.openapi_body(draft, props["DefinitionBody"], loc(where, "DefinitionBody"))
        elif "DefinitionUri" in props:
            t.openapi_file(draft, props["DefinitionUri"], loc(where, "DefinitionUri"))
    # Implicit APIs, with the Globals' settings.
    for logical_id, body in t.resources.items():
        if body.get("Type") != FUNCTION:
            continue
        events = (body.get("Properties") or {}).get("Events") or {}
        for event_name, event in events.items():
            where = loc(loc(loc(loc("Resources", logical_id), "Properties"), "Events"), str(event_name))
            if not isinstance(event, dict):
                t.issues.error(where, "an event is {Type, Properties}")
                continue
            kind = event.get("Type")
            if kind in ("Api", "HttpApi"):
                _event(t, logical_id, event, where, auth, globals_)
            else:
                t.issues.warn(loc(where, "Type"), f"event type {kind!r} is not served by Portway (ignored)")
    return handled


def _event(
    t: Template,
    function_id: str,
    event: dict[str, Any],
    where: str,
    auth: dict[str, dict[str, Any]],
    globals_: dict[str, Any],
) -> None:
    http = event["Type"] == "HttpApi"
    props = event.get("Properties") or {}
    at = loc(where, "Properties")
    api_ref = props.get("ApiId" if http else "RestApiId")
    if api_ref is None:
        logical = "ServerlessHttpApi" if http else "ServerlessRestApi"
        if logical not in t.apis:
            stage = DEFAULT_STAGE if http else "Prod"
            draft = t.draft(logical, ApiKind.HTTP if http else ApiKind.REST, stage)
            defaults = globals_.get("HttpApi" if http else "Api") or {}
            auth[logical] = defaults.get("Auth") or {}
            binary = defaults.get("BinaryMediaTypes") or []
            draft.binary_media_types = tuple(str(item).replace("~1", "/") for item in binary)
    else:
        target = t.ref_target(api_ref)
        if target is None or target not in t.apis:
            t.issues.error(
                loc(at, "ApiId" if http else "RestApiId"), "must be !Ref of an API in this template"
            )
            return
        logical = target
    draft = t.apis[logical]
    for key in props:
        if key not in (
            "Path",
            "Method",
            "RestApiId",
            "ApiId",
            "Auth",
            "PayloadFormatVersion",
            "TimeoutInMillis",
        ):
            t.issues.warn(loc(at, key), f"{key} is not applied locally (ignored)")
    path, method = props.get("Path"), props.get("Method")
    if http and path is None and method is None:
        path, method = DEFAULT_STAGE, "ANY"
    if not isinstance(path, str) or not isinstance(method, str):
        t.issues.error(at, "Path and Method are required")
        return
    method = "ANY" if method.lower() in ("any", "x-amazon-apigateway-any-method", "*") else method.upper()
    if method not in METHODS:
        t.issues.error(loc(at, "Method"), f"method {method!r}: use one of {', '.join(METHODS)}")
        return
    if path != DEFAULT_STAGE and check_path(path, loc(at, "Path"), t.issues) is None:
        return
    payload = scalar_text(props.get("PayloadFormatVersion", "2.0" if http else "1.0"))
    timeout = props.get("TimeoutInMillis")
    function_arn = {"Fn::GetAtt": [function_id, "Arn"]}
    integration = t.lambda_integration(function_arn, at, draft.kind, payload, timeout)
    route_auth = props.get("Auth") or {}
    api_auth = auth.get(logical, {})
    authorizer = _route_authorizer(t, draft, api_auth, route_auth, loc(at, "Auth"))
    if integration is None or authorizer is False:
        return
    key_required = bool(route_auth.get("ApiKeyRequired", api_auth.get("ApiKeyRequired", False)))
    if key_required and http:
        t.issues.error(loc(at, "Auth"), "HTTP APIs have no API keys (use an Api event)")
        return
    if isinstance(api_auth.get("UsagePlan"), dict):
        t.sam_usage_plans[logical] = api_auth["UsagePlan"]
    scopes = tuple(map(str, route_auth.get("AuthorizationScopes") or ()))
    draft.routes.append(
        (
            RouteConfig(
                method,
                path,
                integration,
                api_key_required=key_required,
                authorizer=authorizer,
                authorization_scopes=scopes,
            ),
            at,
        )
    )


def _route_authorizer(
    t: Template, draft: ApiDraft, api_auth: dict[str, Any], route_auth: dict[str, Any], at: str
) -> AuthorizerConfig | None | Literal[False]:
    """The route's authorizer, None for none, False once an error is reported (never served open)."""
    name = route_auth.get("Authorizer", api_auth.get("DefaultAuthorizer"))
    if name is None or name == "NONE":
        return None
    if name == "AWS_IAM":
        return AuthorizerConfig("AWS_IAM", AuthorizerType.AWS_IAM)
    if name in draft.authorizers:
        return draft.authorizers[name]
    declared = (api_auth.get("Authorizers") or {}).get(name)
    if not isinstance(declared, dict):
        t.issues.error(
            loc(at, "Authorizer"), f"authorizer {name!r} is not declared in the API's Auth.Authorizers"
        )
        return False
    where = loc(loc(loc("Resources", draft.logical_id), "Auth"), str(name))
    config = _authorizer(t, draft, str(name), declared, where)
    if config is None or refuse_lambda_authorizer(config, draft.kind, where, t.issues):
        return False
    draft.authorizers[str(name)] = config
    return config


def _authorizer(
    t: Template, draft: ApiDraft, name: str, raw: dict[str, Any], where: str
) -> AuthorizerConfig | None:
    http = draft.kind is ApiKind.HTTP
    identity = raw.get("Identity") or {}
    ttl = identity.get("ReauthorizeEvery", 300)
    if "JwtConfiguration" in raw:
        jwt = raw["JwtConfiguration"] or {}
        issuer = t.text(jwt.get("issuer"), loc(where, "JwtConfiguration"), "issuer")
        audience = t.value(jwt.get("audience"), loc(where, "JwtConfiguration"), "audience")
        if issuer is None or audience is None:
            return None
        audiences = (audience,) if isinstance(audience, str) else tuple(map(str, audience))
        source = raw.get("IdentitySource", "$request.header.Authorization")
        return AuthorizerConfig(
            name, AuthorizerType.JWT, identity_sources=(str(source),), issuer=issuer, audiences=audiences
        )
    if "UserPoolArn" in raw:
        arns = t.value(raw["UserPoolArn"], loc(where, "UserPoolArn"), "user pool ARN")
        if arns is None:
            return None
        arns = arns if isinstance(arns, list) else [arns]
        header = identity.get("Header", "Authorization")
        return AuthorizerConfig(
            name,
            AuthorizerType.COGNITO_USER_POOLS,
            identity_sources=(f"method.request.header.{header}",),
            user_pool_arns=tuple(map(str, arns)),
        )
    if "FunctionArn" in raw:
        payload = scalar_text(raw.get("AuthorizerPayloadFormatVersion", "1.0"))
        function = t.lambda_integration(
            raw["FunctionArn"], loc(where, "FunctionArn"), draft.kind, payload, _AUTHORIZER_TIMEOUT_MS
        )
        if function is None:
            return None
        token = not http and str(raw.get("FunctionPayloadType", "TOKEN")).upper() == "TOKEN"
        if token:
            sources: tuple[str, ...] = (f"method.request.header.{identity.get('Header', 'Authorization')}",)
        else:
            prefix = "$request" if http else "method.request"
            sources = tuple(
                [f"{prefix}.header.{h}" for h in identity.get("Headers") or ()]
                + [f"{prefix}.querystring.{q}" for q in identity.get("QueryStrings") or ()]
            )
        return AuthorizerConfig(
            name,
            AuthorizerType.TOKEN if token else AuthorizerType.REQUEST,
            function=function,
            identity_sources=sources,
            identity_validation=identity.get("ValidationExpression"),
            ttl_s=int(ttl),
            payload_format=payload,
            simple_responses=raw.get("EnableSimpleResponses") is True,
        )
    t.issues.error(where, "an authorizer Portway cannot build (FunctionArn, UserPoolArn or JwtConfiguration)")
    return None
