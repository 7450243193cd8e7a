"""Load a SAM or CloudFormation template (:mod:`.template`) into a :class:`GatewayConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server.config import template_plans, template_resources, template_sam
from server.config.bindings import Bindings, parse_bindings
from server.config.errors import Issues, loc
from server.config.model import DEFAULT_STAGE, ApiConfig, ApiKind, GatewayConfig, StageConfig
from server.config.rules import (
    BuiltApi,
    check_api_keys,
    check_gateway,
    check_routes,
    check_selection_expression,
    check_stage_name,
)
from server.config.template import DEPLOYMENT_ONLY, Template

__all__ = ["load_template"]


def load_template(
    document: Mapping[str, Any], *, source: Path, stage: str | None, bindings: Bindings, issues: Issues
) -> GatewayConfig:
    """Build the gateway definition; problems go to ``issues`` (the caller raises)."""
    metadata = document.get("Metadata")
    portway = metadata.get("Portway") if isinstance(metadata, dict) else None
    own = parse_bindings(portway, source.parent, "Metadata.Portway", issues)
    template = Template(document, source, own.merged(bindings), issues)
    handled = template_sam.read_functions(template)
    handled |= template_resources.read_functions(template)
    handled |= template_sam.read_apis(template)
    handled |= template_resources.read_apis(template)
    plans, keys, read = template_plans.read_plans(template, template.sam_usage_plans)
    handled |= read
    for name, body in template.resources.items():
        kind = str(body.get("Type", ""))
        if "Condition" in body and name in handled:
            issues.warn(
                loc(loc("Resources", name), "Condition"),
                f"condition {body['Condition']!r} is not evaluated: the resource is served as if it held",
            )
        if name not in handled and kind not in DEPLOYMENT_ONLY:
            issues.warn(
                loc("Resources", name), f"{kind or 'a resource without Type'} is not served by Portway"
            )
    built: list[BuiltApi] = []
    for draft in template.apis.values():
        stage_name = stage if stage and draft.kind is not ApiKind.HTTP else draft.stage
        check_stage_name(stage_name or DEFAULT_STAGE, draft.kind, loc("Resources", draft.logical_id), issues)
        if draft.kind is ApiKind.WEBSOCKET:
            check_selection_expression(
                draft.route_selection_expression,
                loc(loc("Resources", draft.logical_id), "Properties"),
                issues,
            )
        api = ApiConfig(
            name=draft.name,
            id=draft.id,
            kind=draft.kind,
            stages=(StageConfig(stage_name or DEFAULT_STAGE),),
            routes=tuple(route for route, _ in draft.routes),
            binary_media_types=draft.binary_media_types,
            api_key_source=draft.api_key_source,
            route_selection_expression=draft.route_selection_expression,
        )
        check_routes(api.kind, draft.routes, issues)
        built.append(BuiltApi(api, loc("Resources", draft.logical_id), tuple(w for _, w in draft.routes)))
    check_gateway(built, issues)
    apis = [b.api for b in built]
    check_api_keys(plans, keys, apis, {p.plan.id for p in plans}, issues, key_required="ApiKeyRequired: true")
    if not built:
        issues.warn("Resources", "no API resources or function events: nothing to serve")
    return GatewayConfig(
        apis=tuple(apis),
        source=source,
        warnings=tuple(issues.warnings),
        usage_plans=tuple(p.plan for p in plans),
        api_keys=tuple(k.key for k in keys),
    )
