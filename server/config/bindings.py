"""Local bindings for definitions written for AWS (OpenAPI exports, SAM and CloudFormation templates).

Those documents name Lambda functions by ARN and HTTP backends by their public URL. Locally, a
function is a Python handler and a backend may be a test server, so the user says which, in a
mapping of the same shape given inside the document (OpenAPI: the root key ``x-portway``;
SAM/CloudFormation: ``Metadata.Portway``) or in a file (``portway serve --bindings FILE``; the
file's entries win)::

    functions:                      # Lambda function name -> Python handler
      GetPets: src/pets.list        # path/module.function, imported from the document's folder
      PutPet:                       # or, SAM-style: module.function imported from codeUri
        handler: pets.put
        codeUri: src
        environment: {TABLE: pets}
        memorySize: 512
    endpoints:                      # HTTP integration URL prefix -> the URL it is served from
      http://petstore.execute-api.us-east-1.amazonaws.com: http://127.0.0.1:8080
    parameters:                     # templates: values of Parameters (sam deploy --parameter-overrides)
      Stage: dev

A Lambda integration whose function has no binding is an error (never skipped). The caller reads
the file; handlers are checked statically like every loader's (:func:`rules.lambda_handler`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.config.authorizer_rules import check_authorizer
from server.config.errors import Issues, loc
from server.config.model import (
    ApiKind,
    AuthorizerConfig,
    IntegrationConfig,
    IntegrationType,
    frozen_map,
)
from server.config.rules import lambda_handler, scalar_text

__all__ = ["Bindings", "FunctionBinding", "function_name_of", "parse_bindings", "refuse_lambda_authorizer"]

# The function name inside a Lambda ARN or an API Gateway invocation URI (arn:aws:apigateway:REGION:
# lambda:path/2015-03-31/functions/arn:aws:lambda:...:function:NAME[:ALIAS]/invocations).
_FUNCTION_ARN = re.compile(r":function:([A-Za-z0-9_-]{1,64})(?::[A-Za-z0-9$_-]+)?(?:/invocations)?$")
_FUNCTION_KEYS = ("handler", "codeUri", "environment", "memorySize")


def function_name_of(uri: str) -> str | None:
    """``GetPets`` from a Lambda ARN or invocation URI, else None."""
    match = _FUNCTION_ARN.search(uri)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class FunctionBinding:
    """A Lambda function served by a local Python handler (``module.function`` imported from
    ``code_dir``, Lambda's task root)."""

    handler: str
    code_dir: Path
    environment: Mapping[str, str] = field(default_factory=frozen_map)
    memory_mb: int = 1024

    def integration(self, name: str, timeout_ms: int, payload_format: str) -> IntegrationConfig:
        return IntegrationConfig(
            IntegrationType.PYTHON,
            timeout_ms=timeout_ms,
            handler=self.handler,
            code_dir=self.code_dir,
            function_name=name,
            environment=self.environment,
            payload_format=payload_format,
            memory_mb=self.memory_mb,
        )


@dataclass(frozen=True, slots=True)
class Bindings:
    functions: Mapping[str, FunctionBinding] = field(default_factory=dict)
    endpoints: tuple[tuple[str, str], ...] = ()
    parameters: Mapping[str, str] = field(default_factory=dict)

    def endpoint(self, uri: str) -> str:
        """``uri`` with its longest bound prefix replaced."""
        for prefix, target in sorted(self.endpoints, key=lambda pair: -len(pair[0])):
            if uri.startswith(prefix):
                return target.rstrip("/") + uri[len(prefix.rstrip("/")) :]
        return uri

    def merged(self, other: Bindings) -> Bindings:
        """These bindings with ``other``'s entries taking precedence."""
        endpoints = dict(self.endpoints)
        endpoints.update(other.endpoints)
        return Bindings(
            {**self.functions, **other.functions},
            tuple(endpoints.items()),
            {**self.parameters, **other.parameters},
        )


def parse_bindings(raw: Any, base_dir: Path, where: str, issues: Issues) -> Bindings:
    """``{functions: {...}, endpoints: {...}}`` (see the module docstring); problems to ``issues``."""
    if raw is None:
        return Bindings()
    if not isinstance(raw, dict):
        issues.error(where, "bindings are a mapping of functions and endpoints")
        return Bindings()
    for key in raw:
        if key not in ("functions", "endpoints", "parameters"):
            issues.error(loc(where, str(key)), f"unknown key {key!r} (use functions, endpoints, parameters)")
    functions: dict[str, FunctionBinding] = {}
    raw_functions = raw.get("functions") or {}
    if not isinstance(raw_functions, dict):
        issues.error(loc(where, "functions"), "a mapping of function name: handler")
        raw_functions = {}
    for name, value in raw_functions.items():
        binding = _function(value, base_dir, loc(loc(where, "functions"), str(name)), issues)
        if binding is not None:
            functions[str(name)] = binding
    endpoints: list[tuple[str, str]] = []
    raw_endpoints = raw.get("endpoints") or {}
    if not isinstance(raw_endpoints, dict):
        issues.error(loc(where, "endpoints"), "a mapping of URL prefix: local URL")
        raw_endpoints = {}
    for prefix, target in raw_endpoints.items():
        at = loc(loc(where, "endpoints"), str(prefix))
        if not isinstance(target, str) or not re.match(r"^https?://", target):
            issues.error(at, "the local URL must start with http:// or https://")
            continue
        endpoints.append((str(prefix), target))
    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, dict) or any(isinstance(v, dict | list) for v in parameters.values()):
        issues.error(loc(where, "parameters"), "a mapping of template parameter: value")
        parameters = {}
    return Bindings(functions, tuple(endpoints), {str(k): scalar_text(v) for k, v in parameters.items()})


def _function(value: Any, base_dir: Path, where: str, issues: Issues) -> FunctionBinding | None:
    if isinstance(value, str):
        handler = lambda_handler(value, base_dir, where, issues)
        return None if handler is None else FunctionBinding(handler, base_dir)
    if not isinstance(value, dict) or not isinstance(value.get("handler"), str):
        issues.error(where, "a handler (path/module.function) or {handler, codeUri, environment, memorySize}")
        return None
    for key in value:
        if key not in _FUNCTION_KEYS:
            issues.error(loc(where, str(key)), f"unknown key {key!r} (use {', '.join(_FUNCTION_KEYS)})")
    code_uri = value.get("codeUri", ".")
    if not isinstance(code_uri, str):
        issues.error(loc(where, "codeUri"), "a folder, relative to the definition")
        return None
    task_root = (base_dir / code_uri).resolve()
    handler = lambda_handler(value["handler"], task_root, loc(where, "handler"), issues)
    environment = value.get("environment") or {}
    if not isinstance(environment, dict):
        issues.error(loc(where, "environment"), "a mapping of NAME: value")
        environment = {}
    memory = value.get("memorySize", 1024)
    if isinstance(memory, bool) or not isinstance(memory, int) or memory <= 0:
        issues.error(loc(where, "memorySize"), "a positive integer (MB)")
        memory = 1024
    if handler is None:
        return None
    env = {str(k): scalar_text(v) for k, v in environment.items() if v is not None}
    return FunctionBinding(handler, task_root, frozen_map(env), memory)


def refuse_lambda_authorizer(config: AuthorizerConfig, kind: ApiKind, location: str, issues: Issues) -> bool:
    """Whether ``config`` must be refused on an API of ``kind`` (errors reported at ``location``):
    the load-time check every authorizer type shares (server/config/authorizer_rules.py), so a
    route is never served with an authorizer that cannot be enforced."""
    return not check_authorizer(config, kind, location, lambda key: loc(location, key), issues)
