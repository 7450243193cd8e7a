"""AWS SAM and CloudFormation templates: what the stack would serve (loaded by :mod:`.template_load`).

A template (``Resources`` whose types start with ``AWS::``) is read in two parts:

* :mod:`.template_sam`: ``AWS::Serverless::Function`` with ``Api``/``HttpApi`` events (SAM's
  implicit ``ServerlessRestApi`` on stage ``Prod`` and ``ServerlessHttpApi`` on ``$default``),
  ``AWS::Serverless::Api``/``HttpApi`` with ``Auth``, and ``Globals``;
* :mod:`.template_resources`: plain ``AWS::ApiGateway::*`` (RestApi, Resource, Method, Stage,
  Authorizer) and ``AWS::ApiGatewayV2::*`` (Api with ``ProtocolType`` HTTP or WEBSOCKET, Route,
  Integration, RouteResponse, Stage, Authorizer): what ``sam`` transforms to and what CDK synthesises.

Functions (``AWS::Serverless::Function``, and ``AWS::Lambda::Function`` whose code is a local
folder: CDK's ``aws:asset:path`` metadata) are Python handlers imported from their code folder as
Lambda does (``CodeUri`` + ``Handler``); a Lambda ARN the template does not define needs a binding
(``Metadata.Portway`` or ``--bindings``, :mod:`.bindings`). Intrinsic functions are evaluated by
:mod:`.cloudformation`; a value it cannot know locally is reported where it is used.

Every resource type Portway does not serve is a warning naming it (``Resources.Queue: AWS::SQS::Queue
is not served``), except the ones that only exist to deploy the others (permissions, roles,
deployments, log groups); every property that would change what a route does and is not honoured
is a warning or, when ignoring it would serve a route open, an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.config.bindings import Bindings, FunctionBinding, function_name_of
from server.config.cloudformation import UNKNOWN, Evaluator, Stack
from server.config.errors import Issues
from server.config.model import ApiKind, AuthorizerConfig, IntegrationConfig, RouteConfig
from server.config.openapi import embedded_routes
from server.config.yamlio import parse_yaml
from server.ids import new_api_id

__all__ = ["DEPLOYMENT_ONLY", "ApiDraft", "Template", "detect_template"]

# Resources that only deploy the others: nothing to serve, nothing lost.
DEPLOYMENT_ONLY = {
    "AWS::Lambda::Permission",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGatewayV2::Deployment",
    "AWS::ApiGateway::Account",
    "AWS::Logs::LogGroup",
    "AWS::CDK::Metadata",
}
_REGION, _ACCOUNT = "us-east-1", "123456789012"
SAM_FUNCTION = "AWS::Serverless::Function"
FUNCTION_TYPES = {SAM_FUNCTION, "AWS::Lambda::Function"}
API_TYPES = {
    "AWS::Serverless::Api",
    "AWS::Serverless::HttpApi",
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGatewayV2::Api",
}


def detect_template(document: Mapping[str, Any]) -> bool:
    resources = document.get("Resources")
    if not isinstance(resources, dict):
        return False
    if "AWSTemplateFormatVersion" in document or "Transform" in document:
        return True
    return any(
        isinstance(body, dict) and str(body.get("Type", "")).startswith("AWS::")
        for body in resources.values()
    )


@dataclass(slots=True)
class ApiDraft:
    """An API being assembled from several resources."""

    logical_id: str
    kind: ApiKind
    name: str
    stage: str
    routes: list[tuple[RouteConfig, str]] = field(default_factory=list)
    binary_media_types: tuple[str, ...] = ()
    api_key_source: str = "HEADER"
    route_selection_expression: str = "$request.body.action"
    authorizers: dict[str, AuthorizerConfig] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return new_api_id(self.name)


class Template:
    """The template being read: its resources, evaluator, functions and APIs."""

    def __init__(self, document: Mapping[str, Any], source: Path, bindings: Bindings, issues: Issues) -> None:
        self.doc = document
        self.base_dir = source.parent
        self.issues = issues
        raw_resources = document.get("Resources")
        self.resources: dict[str, dict[str, Any]] = {
            str(name): body for name, body in (raw_resources or {}).items() if isinstance(body, dict)
        }
        self.functions: dict[str, str] = {}  # logical id -> function name
        self.api_names: dict[str, str] = {}  # logical id -> API name
        api_ids: dict[str, str] = {}  # logical id -> API id (what Ref of the API gives)
        self.apis: dict[str, ApiDraft] = {}
        self.bindings = bindings
        self.timeouts: dict[str, float] = {}  # function name -> timeout (s)
        self.sam_usage_plans: dict[str, dict[str, Any]] = {}  # API logical id -> its Auth.UsagePlan
        self.stack_name = source.parent.name or "stack"
        self.evaluator = Evaluator(
            Stack(_REGION, _ACCOUNT, self.stack_name, self._lookup, self.functions, api_ids)
        )
        # Names first: any value may refer to any function or API (the stack's own ids).
        for logical_id, body in self.resources.items():
            kind, props = body.get("Type"), body.get("Properties") or {}
            if kind in FUNCTION_TYPES:
                name = self.evaluator.evaluate(props.get("FunctionName", logical_id))
                self.functions[logical_id] = name if isinstance(name, str) else logical_id
            elif kind in API_TYPES:
                name = self.evaluator.evaluate(props.get("Name", logical_id))
                self.api_names[logical_id] = name if isinstance(name, str) else logical_id
            for event in (props.get("Events") or {}).values() if kind == SAM_FUNCTION else ():
                implicit = _implicit_api(event)
                if implicit:
                    self.api_names[implicit] = f"{self.stack_name}-{implicit}"
        api_ids.update({logical: new_api_id(name) for logical, name in self.api_names.items()})

    def _lookup(self, parts: tuple[str, ...]) -> Any:
        bound = self.bindings.parameters
        if len(parts) == 3 and parts[0] == "Parameters" and parts[2] == "Default" and parts[1] in bound:
            return bound[parts[1]]  # a bound value overrides the Default
        value: Any = self.doc
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value

    def value(self, raw: Any, where: str, what: str = "value") -> Any:
        """``raw`` evaluated; None (with an error at ``where``) when it cannot be known locally."""
        value = self.evaluator.evaluate(raw)
        if value is UNKNOWN:
            self.issues.error(where, f"this {what} cannot be resolved locally (a value only AWS knows)")
            return None
        return value

    def text(self, raw: Any, where: str, what: str = "value") -> str | None:
        value = self.value(raw, where, what)
        if value is None:
            return None
        if isinstance(value, dict | list):
            self.issues.error(where, f"the {what} must be a string")
            return None
        return str(value)

    def ref_target(self, raw: Any) -> str | None:
        """The logical id a ``{"Ref": id}`` (or ``!GetAtt id.X``) names, else None."""
        if isinstance(raw, dict) and isinstance(raw.get("Ref"), str):
            return str(raw["Ref"])
        if isinstance(raw, dict) and "Fn::GetAtt" in raw:
            target = raw["Fn::GetAtt"]
            name = target.split(".", 1)[0] if isinstance(target, str) else target[0] if target else None
            return str(name) if isinstance(name, str) else None
        return None

    def add_function(self, logical_id: str, binding: FunctionBinding, timeout_s: float) -> None:
        name = self.functions[logical_id]
        if name not in self.bindings.functions:  # --bindings and Metadata.Portway win
            self.bindings = self.bindings.merged(Bindings({name: binding}))
        self.timeouts[name] = timeout_s

    def lambda_integration(
        self, raw_uri: Any, where: str, kind: ApiKind, payload: str, timeout_ms: int | None = None
    ) -> IntegrationConfig | None:
        """A Lambda integration from its URI or function ARN (intrinsics allowed)."""
        uri = self.text(raw_uri, where, "Lambda function reference")
        if uri is None:
            return None
        name = function_name_of(uri)
        if name is None:
            self.issues.error(where, f"{uri!r} does not name a Lambda function")
            return None
        binding = self.bindings.functions.get(name)
        if binding is None:
            self.issues.error(
                where,
                f"Lambda function {name!r} is not defined in this template and has no binding "
                "(Metadata.Portway.functions or --bindings, docs/configuration.md)",
            )
            return None
        cap = 30_000 if kind is ApiKind.HTTP else 29_000
        if timeout_ms is None:
            timeout_ms = int(min(self.timeouts.get(name, 3.0) * 1000, cap))
        return binding.integration(name, max(50, min(timeout_ms, cap)), payload)

    def openapi_body(self, draft: ApiDraft, raw: Any, where: str, *, evaluate: bool = True) -> None:
        """Routes from an OpenAPI body (SAM ``DefinitionBody``/``DefinitionUri``, ``Body``) into ``draft``."""
        value = self.evaluator.evaluate(raw) if evaluate else raw
        if value is UNKNOWN or not isinstance(value, dict):
            self.issues.error(where, "this OpenAPI body cannot be resolved locally (a value only AWS knows)")
            return
        routes, binary = embedded_routes(value, draft.kind, self.bindings, self.issues, where)
        draft.routes.extend(routes)
        draft.binary_media_types += binary

    def openapi_file(self, draft: ApiDraft, raw: Any, where: str) -> None:
        """SAM's ``DefinitionUri`` naming a local file (uploaded by ``sam package``; its intrinsics
        are not evaluated, as on AWS)."""
        if not isinstance(raw, str) or raw.startswith("s3://"):
            self.issues.error(where, "only a local file is read (S3 locations are not)")
            return
        try:
            document, problems = parse_yaml((self.base_dir / raw).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            self.issues.error(where, f"cannot read {raw}: {exc}")
            return
        for problem in problems:
            self.issues.error(f"{where} ({raw}) {problem.location}", problem.message)
        self.openapi_body(draft, document, where, evaluate=False)

    def draft(self, logical_id: str, kind: ApiKind, stage: str) -> ApiDraft:
        if logical_id not in self.apis:
            name = self.api_names.get(logical_id, logical_id)
            self.apis[logical_id] = ApiDraft(logical_id, kind, name, stage)
        return self.apis[logical_id]


def _implicit_api(event: Any) -> str | None:
    """SAM's implicit API a function event creates (an ``Api``/``HttpApi`` event without an API id)."""
    if not isinstance(event, dict):
        return None
    props = event.get("Properties") or {}
    if event.get("Type") == "Api" and "RestApiId" not in props:
        return "ServerlessRestApi"
    if event.get("Type") == "HttpApi" and "ApiId" not in props:
        return "ServerlessHttpApi"
    return None
