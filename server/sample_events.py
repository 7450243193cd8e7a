"""Sample Lambda events for a configured route, built by the same code as served requests'
(``portway events`` and ``portway invoke --event-shape``, like ``serverless invoke local``).

A sample request: the route's method (``ANY`` -> ``GET``, or ``POST`` with a body), its path with
each ``{name}`` parameter filled with its name (``{proxy+}`` with ``example/path``), on host
``localhost:3000`` from ``127.0.0.1``, JSON body when ``body`` is given. REST and HTTP API routes
get their integration's payload format (1.0 or 2.0); WebSocket routes get a ``MESSAGE`` event
(``CONNECT`` for ``$connect``, ``DISCONNECT`` for ``$disconnect``).

Pure core: no I/O; ``now_ms`` and the ids come in as arguments.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from connections.events import ConnectionInfo, connect_event, disconnect_event, message_event
from server.config.model import DEFAULT_STAGE, ApiConfig, ApiKind, GatewayConfig, RouteConfig
from server.events import RequestInfo, http_v2_event, rest_v1_event
from server.messages import HttpRequest

__all__ = ["SampleIds", "SHAPES", "sample_event", "shape_of"]

SHAPES = {"rest": ApiKind.REST, "http": ApiKind.HTTP, "ws": ApiKind.WEBSOCKET}
HOST = "localhost:3000"
SOURCE_IP = "127.0.0.1"
_PARAM = re.compile(r"\{([^}/]+?)(\+?)\}")


@dataclass(frozen=True, slots=True)
class SampleIds:
    """The ids a served request would draw (passed in: this module draws nothing)."""

    request_id: str = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    extended_request_id: str = "c6af9ac67b6111e6="
    connection_id: str = "L0SM9cOFvHcCIhw="
    message_id: str = "L0SM9dOFvHcCIhw="


def shape_of(api: ApiConfig) -> str:
    return next(name for name, kind in SHAPES.items() if kind is api.kind)


def _stage(config: GatewayConfig, api: ApiConfig, stage: str | None) -> str:
    names = [s.name for s in api.stages]
    if stage in names:
        return str(stage)
    return names[0] if names else (DEFAULT_STAGE if api.kind is ApiKind.HTTP else "dev")


def _fill(path: str) -> tuple[str, dict[str, str]]:
    params: dict[str, str] = {}

    def value(match: re.Match[str]) -> str:
        name, greedy = match.group(1), match.group(2)
        params[name] = "example/path" if greedy else name
        return params[name]

    return _PARAM.sub(value, path), params


def sample_event(
    config: GatewayConfig,
    api: ApiConfig,
    route: RouteConfig,
    *,
    now_ms: int,
    body: str | None = None,
    stage: str | None = None,
    ids: SampleIds = SampleIds(),
) -> dict[str, Any]:
    """The event ``route``'s integration would get for a sample request (see the module doc)."""
    stage_name = _stage(config, api, stage)
    variables = dict(next((s.variables for s in api.stages if s.name == stage_name), {}))
    if api.kind is ApiKind.WEBSOCKET:
        conn = ConnectionInfo(
            connection_id=ids.connection_id,
            api_id=api.id,
            stage=stage_name,
            domain_name=HOST,
            source_ip=SOURCE_IP,
            connected_at_ms=now_ms,
            user_agent="portway-invoke",
            stage_variables=variables,
        )
        headers = [("Host", HOST), ("User-Agent", "portway-invoke")]
        if route.path == "$connect":
            return connect_event(
                conn, headers=headers, query_string="", request_id=ids.request_id, now_ms=now_ms
            )
        if route.path == "$disconnect":
            return disconnect_event(
                conn, status_code=1001, reason="Going away", request_id=ids.request_id, now_ms=now_ms
            )
        return message_event(
            conn,
            route_key=route.path,
            body=body if body is not None else json.dumps({"action": route.path}),
            message_id=ids.message_id,
            request_id=ids.request_id,
            now_ms=now_ms,
        )
    template = "/" if route.path == "$default" else route.path
    path, params = _fill(template)
    method = route.method if route.method not in ("", "ANY") else ("POST" if body is not None else "GET")
    headers = [("Host", HOST), ("User-Agent", "portway-invoke"), ("Accept", "*/*")]
    if body is not None:
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body.encode())))]
    prefix = "" if api.kind is ApiKind.HTTP and stage_name == DEFAULT_STAGE else f"/{stage_name}"
    raw_body = (body or "").encode()
    request = HttpRequest(method, prefix + path, "", tuple(headers), raw_body, SOURCE_IP, HOST)
    info = RequestInfo(
        request=request,
        api_id=api.id,
        account_id=config.account_id,
        stage=stage_name,
        stage_prefix=prefix,
        path=path,
        resource="$default" if route.path == "$default" else route.path,
        route_key=route.route_key,
        path_parameters=params,
        stage_variables=variables,
        request_id=ids.request_id,
        extended_request_id=ids.extended_request_id,
        now_ms=now_ms,
        binary_media_types=api.binary_media_types,
    )
    if route.integration.payload_format == "2.0":
        return http_v2_event(info)
    return rest_v1_event(info, http_api_v1=api.kind is ApiKind.HTTP)
