"""Validation rules shared by both config formats (AWS's rules, aws-contract.md §0.1, §2.1, §2.2, §6).

Every check records problems in an :class:`~server.config.errors.Issues` collector and returns
something usable (or ``None``) so that loading continues and reports every problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from routes.selection import SelectionSyntaxError, compile_expression
from server.config.errors import Issues, loc
from server.config.handlers import check_handler_source, module_file
from server.config.model import (
    DEFAULT_STAGE,
    HTTP_METHODS,
    ApiConfig,
    ApiKeyConfig,
    ApiKind,
    IntegrationConfig,
    IntegrationType,
    QuotaSettings,
    RouteConfig,
    UsagePlanConfig,
)

__all__ = [
    "API_KEY_NAME_RULE",
    "API_KEY_VALUE_RULE",
    "DEFAULT_TIMEOUTS_MS",
    "HTTP_API_NO_KEYS",
    "METHODS",
    "MIN_TIMEOUT_MS",
    "PLAN_ID_RULE",
    "QUOTA_PERIODS",
    "BuiltApi",
    "BuiltKey",
    "BuiltPlan",
    "check_api_keys",
    "check_gateway",
    "check_method_throttles",
    "check_path",
    "check_quota",
    "check_routes",
    "check_stage_name",
    "check_stage_variables",
    "check_selection_expression",
    "check_timeout",
    "check_uri",
    "check_websocket_route_key",
    "function_name_from",
    "lambda_handler",
    "scalar_text",
    "split_handler",
    "valid_plan_id",
]

METHODS = (*HTTP_METHODS, "ANY")
MIN_TIMEOUT_MS = 50
DEFAULT_TIMEOUTS_MS = {ApiKind.REST: 29_000, ApiKind.HTTP: 30_000, ApiKind.WEBSOCKET: 29_000}

_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_VAR_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_VAR_VALUE = re.compile(r"^[A-Za-z0-9\-._~:/?#&=,]{1,512}$")
_LITERAL = re.compile(r"^[A-Za-z0-9._~:,@-]+$")
_PARAM = re.compile(r"^\{([A-Za-z0-9._$-]+)(\+?)\}$")
_HANDLER = re.compile(
    r"^(?P<dir>(?:[^/\\\s]+/)*)(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\.(?P<func>[A-Za-z_]\w*)$"
)
_WEBSOCKET_ROUTE_KEY = re.compile(r"^(\$connect|\$disconnect|\$default|[^$].{0,127})$", re.DOTALL)
_DOLLAR_VAR = re.compile(r"\$\{([^}]*)\}")
_API_KEY_VALUE = re.compile(r"^[A-Za-z0-9]{20,128}$")
_PLAN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

QUOTA_PERIODS = ("DAY", "WEEK", "MONTH")
# The same wording as the schema's x-messages, so a problem found by both is reported once.
API_KEY_VALUE_RULE = (
    "an API key value is 20 to 128 letters and digits (AWS's rule: API Gateway rejects any other value)"
)
API_KEY_NAME_RULE = "an API key name is 1 to 1024 characters"
PLAN_ID_RULE = "a usage plan id is 1 to 128 letters, digits, '-', '_' and '.'"
HTTP_API_NO_KEYS = "HTTP APIs have no usage plans or API keys (use a REST API)"
_URI_PARAM = re.compile(r"(?<!\$)\{([^}]*)\}")


def scalar_text(value: object) -> str:
    """A YAML scalar as the string AWS would store (``true``, ``9001``, ``1.5``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class BuiltApi:
    """An API as built by a loader, with the document locations of the API and of each route."""

    api: ApiConfig
    location: str
    route_locations: tuple[str, ...] = field(default=())


def check_stage_name(name: str, kind: ApiKind, location: str, issues: Issues) -> bool:
    if name == DEFAULT_STAGE:
        if kind is ApiKind.HTTP:
            return True
        issues.error(location, "only HTTP APIs have a $default stage")
        return False
    if not _STAGE.match(name):
        issues.error(location, f"stage name {name!r}: use letters, digits, '-' and '_' (at most 128)")
        return False
    return True


def check_stage_variables(variables: Mapping[str, str], location: str, issues: Issues) -> None:
    if len(variables) > 100:
        issues.error(location, f"{len(variables)} stage variables; a stage has at most 100")
    for name, value in variables.items():
        if not _VAR_NAME.match(name):
            issues.error(
                loc(location, name), f"stage variable name {name!r}: letters, digits and '_' (at most 64)"
            )
        if not _VAR_VALUE.match(value):
            issues.error(
                loc(location, name),
                f"stage variable {name}={value!r}: values are 1..512 characters of "
                "letters, digits and - . _ ~ : / ? # & = ,",
            )


def check_path(path: str, location: str, issues: Issues) -> tuple[str, ...] | None:
    """Validate a resource path (``/pets/{id}``, ``/{proxy+}``); return its parameter names."""
    if not path.startswith("/"):
        issues.error(location, f"path {path!r} must start with '/'")
        return None
    if path == "/":
        return ()
    segments = path[1:].split("/")
    names: list[str] = []
    valid = True
    for index, segment in enumerate(segments):
        match = _PARAM.match(segment)
        problem = ""
        if not segment:
            problem = f"path {path!r} has an empty segment ('//' or a trailing '/')"
        elif match:
            name = match.group(1)
            if match.group(2) and index != len(segments) - 1:
                problem = f"greedy parameter {segment} must be the last segment of {path!r}"
            elif name in names:
                problem = f"path parameter {{{name}}} appears twice in {path!r}"
            names.append(name)
        elif "{" in segment or "}" in segment:
            problem = f"segment {segment!r}: a parameter is a whole segment, like {{id}} or {{proxy+}}"
        elif not _LITERAL.match(segment):
            problem = f"segment {segment!r}: use letters, digits and - . _ ~ : , @"
        if problem:
            issues.error(location, problem)
            valid = False
    return tuple(names) if valid else None


def split_handler(handler: str, base_dir: Path, location: str, issues: Issues) -> tuple[Path, str] | None:
    """``src/handlers/users.get`` relative to ``base_dir`` -> (``base_dir/src/handlers``, ``users.get``).

    A module file that cannot be found is a warning, not an error (it may be installed elsewhere).
    """
    match = _HANDLER.match(handler)
    if not match:
        issues.error(
            location, f"handler {handler!r} is not module.function (pets.get_pet, src/handlers/users.get)"
        )
        return None
    code_dir = (base_dir / match["dir"]).resolve()
    module = match["module"]
    source = module_file(code_dir, module)
    if source is not None:
        check_handler_source(source, match["func"], _shown(source, base_dir), location, issues)
    elif not (code_dir / module.replace(".", "/")).is_dir():
        issues.warn(location, f"handler module {module!r} not found in {code_dir}")
    return code_dir, f"{module}.{match['func']}"


def _shown(path: Path, base_dir: Path) -> str:
    """``path`` relative to the definition's folder when inside it (shorter messages)."""
    try:
        return str(path.relative_to(base_dir.resolve()))
    except ValueError:
        return str(path)


def lambda_handler(handler: str, task_root: Path, location: str, issues: Issues) -> str | None:
    """``todos/list.list`` -> ``todos.list.list``: imported from ``task_root`` as Lambda's runtime
    imports it (the path's slashes become the dots of one module name), not from ``todos/``.

    The module's source is checked without running it (it parses, it defines the function); a
    module file that cannot be found is a warning, not an error (it may be installed elsewhere).
    """
    match = _HANDLER.match(handler)
    if not match:
        issues.error(
            location, f"handler {handler!r} is not module.function (pets.get_pet, src/handlers/users.get)"
        )
        return None
    module = match["dir"].replace("/", ".") + match["module"]
    source = module_file(task_root, module)
    if source is not None:
        check_handler_source(source, match["func"], _shown(source, task_root), location, issues)
    elif not (task_root / module.replace(".", "/")).is_dir():
        issues.warn(location, f"handler module {module!r} not found in {task_root}")
    return f"{module}.{match['func']}"


def function_name_from(text: str) -> str:
    """A Lambda-style function name (``[A-Za-z0-9_-]``, at most 64) derived from ``text``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:64] or "function"


def check_timeout(timeout_ms: int, kind: ApiKind, location: str, issues: Issues) -> None:
    limit = DEFAULT_TIMEOUTS_MS[kind]
    if not MIN_TIMEOUT_MS <= timeout_ms <= limit:
        issues.error(
            location, f"timeout {timeout_ms} ms is outside {MIN_TIMEOUT_MS}..{limit} ms ({kind.value} API)"
        )


def check_websocket_route_key(key: str, location: str, issues: Issues) -> bool:
    """``$connect``, ``$disconnect``, ``$default`` or a key not starting with ``$`` (aws-contract.md §1.1)."""
    if _WEBSOCKET_ROUTE_KEY.match(key):
        return True
    issues.error(
        location,
        f"WebSocket route key {key!r}: use $connect, $disconnect, $default or a name not starting "
        "with '$' (at most 128 characters)",
    )
    return False


def check_selection_expression(expression: str, location: str, issues: Issues) -> None:
    """A route selection expression the gateway can evaluate (aws-contract.md §1.2)."""
    try:
        compile_expression(expression)
    except SelectionSyntaxError as exc:
        issues.error(location, f"route selection expression: {exc}")


def check_uri(uri: str, parameters: Sequence[str], location: str, issues: Issues) -> tuple[str, ...]:
    """Check an HTTP integration URI; return the stage variables it references."""
    if not re.match(r"^https?://\S+$", uri, re.IGNORECASE):
        issues.error(location, f"URI {uri!r} must start with http:// or https:// (no spaces)")
    stage_vars: list[str] = []
    for expression in _DOLLAR_VAR.findall(uri):
        name = expression.removeprefix("stageVariables.")
        if name == expression or not _VAR_NAME.match(name):
            issues.error(location, f"${{{expression}}}: only ${{stageVariables.name}} is substituted in URIs")
        else:
            stage_vars.append(name)
    for raw in _URI_PARAM.findall(uri):
        name = raw.removesuffix("+")
        if name not in parameters:
            have = ", ".join(f"{{{p}}}" for p in parameters) or "none"
            issues.error(location, f"{{{raw}}} is not a path parameter of this route (it has: {have})")
    return tuple(stage_vars)


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    variables: dict[bool, tuple[str, str, _Node]] = field(default_factory=dict)  # greedy -> (name, key, node)
    keys: set[str] = field(default_factory=set)


def check_method_throttles(
    kind: ApiKind,
    keys: Mapping[str, str],
    routes: Sequence[RouteConfig],
    issues: Issues,
) -> None:
    """Each method-throttle key (route key -> its location) must name a route of the API
    (WebSocket APIs: ``$connect``, ``sendmessage``, ``$default`` ...; their limits apply per
    message)."""
    known = {route.route_key for route in routes}
    for key, location in keys.items():
        if key not in known:
            listed = ", ".join(sorted(known)) or "none"
            issues.error(location, f"no route {key!r} in this API (routes: {listed})")


def check_routes(kind: ApiKind, routes: Sequence[tuple[RouteConfig, str]], issues: Issues) -> None:
    """Duplicate routes, and path variables with different names at the same position."""
    root = _Node()
    for route, location in routes:
        if kind is ApiKind.WEBSOCKET or route.path == DEFAULT_STAGE:
            node = root
        else:
            node = _insert(root, route, location, kind, issues)
        key = route.route_key
        if key in node.keys:
            issues.error(location, f"duplicate route {key!r}")
        node.keys.add(key)


def _insert(root: _Node, route: RouteConfig, location: str, kind: ApiKind, issues: Issues) -> _Node:
    node = root
    segments = [] if route.path == "/" else route.path[1:].split("/")
    for segment in segments:
        match = _PARAM.match(segment)
        if not match:
            node = node.literal.setdefault(segment, _Node())
            continue
        name, greedy = match.group(1), bool(match.group(2))
        slot = node.variables.get(greedy)
        if slot is None:
            other = node.variables.get(not greedy)
            if other is not None and kind is ApiKind.REST:
                issues.warn(
                    location,
                    f"{segment} and the variable of {other[1]!r} are siblings: "
                    "AWS allows one variable per level",
                )
            slot = node.variables[greedy] = (name, route.route_key, _Node())
        elif slot[0] != name:
            issues.error(
                location,
                f"{{{name}}} conflicts with {{{slot[0]}}} of {slot[1]!r}: path variables at the same "
                "position must have the same name",
            )
        node = slot[2]
    return node


def check_gateway(apis: Sequence[BuiltApi], issues: Issues) -> None:
    """Across APIs: unique names and ids, one API per (stage, base path), consistent functions."""
    names: dict[str, str] = {}
    ids: dict[str, str] = {}
    mounts: dict[tuple[str, str, str], str] = {}
    functions: dict[str, tuple[tuple[object, ...], str]] = {}
    for built in apis:
        api = built.api
        if api.name in names:
            issues.error(built.location, f"API name {api.name!r} is already used by {names[api.name]}")
        elif api.id in ids:
            issues.error(built.location, f"API id {api.id!r} is already used by {ids[api.id]}")
        names.setdefault(api.name, built.location)
        ids.setdefault(api.id, built.location)
        for stage in api.stages:
            group = "ws" if api.kind is ApiKind.WEBSOCKET else "http"
            mount = (group, stage.name, api.base_path)
            if mount in mounts:
                issues.error(
                    built.location,
                    f"stage {stage.name!r} with base path {api.base_path or '(none)'!r} is already served "
                    f"by {mounts[mount]}; give one of them a different basePath",
                )
            mounts.setdefault(mount, f"API {api.name!r}")
        for route, location in zip(api.routes, built.route_locations, strict=False):
            _check_function(route.integration, location, functions, issues)


def _check_function(
    integration: IntegrationConfig,
    location: str,
    functions: dict[str, tuple[tuple[object, ...], str]],
    issues: Issues,
) -> None:
    if integration.type is not IntegrationType.PYTHON:
        return
    settings = (
        integration.code_dir,
        integration.handler,
        tuple(sorted(integration.environment.items())),
        integration.isolation,
        integration.workers,
        integration.memory_mb,
    )
    name = integration.function_name
    if name in functions and functions[name][0] != settings:
        issues.error(
            location,
            f"function {name!r} is also used by {functions[name][1]} with a different handler or "
            "settings (environment, isolation, workers, memorySize); give one a distinct `function:` name",
        )
    functions.setdefault(name, (settings, location))


@dataclass(frozen=True, slots=True)
class BuiltPlan:
    """A usage plan as built by a loader: its location and the location of each of its stages."""

    plan: UsagePlanConfig
    location: str
    stage_locations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BuiltKey:
    """An API key as built by a loader, with where its name, value and each plan id are written."""

    key: ApiKeyConfig
    name_location: str
    value_location: str
    plan_locations: tuple[str, ...] = ()


def valid_plan_id(plan_id: str) -> bool:
    """A usage plan id (:data:`PLAN_ID_RULE`)."""
    return bool(_PLAN_ID.match(plan_id))


def check_quota(quota: QuotaSettings, location: str, issues: Issues) -> None:
    """``offset`` (requests counted as used in the plan's first period) must leave some of ``limit``."""
    if quota.offset and quota.offset >= quota.limit:
        issues.error(
            loc(location, "offset"),
            f"offset {quota.offset} must be less than limit {quota.limit} "
            "(it is the number of requests already used in the first period)",
        )


def check_api_keys(
    plans: Sequence[BuiltPlan],
    keys: Sequence[BuiltKey],
    apis: Sequence[ApiConfig],
    declared_plans: Collection[str],
    issues: Issues,
    *,
    key_required: str = "apiKeyRequired: true",
) -> None:
    """Usage plans and API keys together (aws-contract.md §3.2, §3.3).

    Keys: names 1..1024 characters and unique, values AWS's 20..128 letters and digits and
    unique, every plan id declared (``declared_plans``: ids in the document, built or not), at
    most one plan per API stage. Plans: a warning for a stage whose API has no route requiring a
    key (the plan never applies there; ``key_required`` names the setting that requires one).
    """
    by_id = {api.id: api for api in apis}
    for located in plans:
        for entry, location in zip(located.plan.stages, located.stage_locations, strict=True):
            api = by_id.get(entry.api_id)
            if api is not None and not any(route.api_key_required for route in api.routes):
                issues.warn(
                    location,
                    f"no route of API {api.name!r} requires an API key ({key_required}): "
                    "this plan never applies to it",
                )
    plan_stages = {located.plan.id: located.plan.stages for located in plans}
    names: dict[str, str] = {}
    values: dict[str, tuple[str, str]] = {}
    for declared in keys:
        key = declared.key
        if not 1 <= len(key.name) <= 1024:
            issues.error(declared.name_location, API_KEY_NAME_RULE)
        elif key.name in names:
            issues.error(
                declared.name_location, f"API key name {key.name!r} is already used by {names[key.name]}"
            )
        names.setdefault(key.name, declared.name_location)
        if key.value is not None:
            if not _API_KEY_VALUE.match(key.value):
                issues.error(declared.value_location, API_KEY_VALUE_RULE)
            elif key.value in values:
                other, where = values[key.value]
                issues.error(
                    declared.value_location,
                    f"API key {key.name!r} has the same value as API key {other!r} ({where}); "
                    "values are unique",
                )
            values.setdefault(key.value, (key.name, declared.value_location))
        covered: dict[tuple[str, str], str] = {}
        for plan_id, location in zip(key.plans, declared.plan_locations, strict=True):
            if plan_id not in declared_plans:
                listed = ", ".join(sorted(declared_plans)) or "none"
                issues.error(location, f"no usage plan {plan_id!r} (plans: {listed})")
                continue
            for entry in plan_stages.get(plan_id, ()):
                other = covered.setdefault((entry.api_id, entry.stage), plan_id)
                if other != plan_id:
                    api = by_id.get(entry.api_id)
                    api_name = api.name if api is not None else entry.api_id
                    issues.error(
                        location,
                        f"API key {key.name!r} is in usage plans {other!r} and {plan_id!r}, which both "
                        f"include stage {entry.stage!r} of API {api_name!r}; a key may be in at most "
                        "one plan per API stage",
                    )
                    break
