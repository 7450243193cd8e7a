"""HTTP API parameter mapping (reference §7.4; DG:http-api-parameter-mapping), compiled once.

Request (``parameterMapping``): ``append|overwrite|remove:header.<name>``,
``append|overwrite|remove:querystring.<name>`` and ``overwrite:path`` (the whole backend path),
with values mixing static text and ``$request.header.x``, ``$request.querystring.x``,
``$request.body.<JSONPath>``, ``$request.path``, ``$request.path.x``, ``$context.x`` and
``$stageVariables.x`` (``${...}`` to delimit). Response (per status code, ``responseParameters``):
``append|overwrite|remove:header.<name>`` and ``overwrite:statuscode`` with ``$response.header.x``,
``$response.body.<JSONPath>``, ``$context.x``, ``$stageVariables.x`` and static values.

Pure core: imports no I/O library.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson

from server.events import RequestInfo
from server.messages import HttpRequest, HttpResponse, header_get
from server.transform.jsonpath import MISSING, evaluate

__all__ = ["KEY", "HttpApiRequestMapping", "HttpApiResponseMapping", "check_mapping_key"]

KEY = re.compile(
    r"^(append|overwrite|remove):(header\.[A-Za-z0-9!#$%&'*+.^_`|~-]+|querystring\.[^\s]+|path|statuscode)$"
)
_VALUE = re.compile(
    r"\$\{([^}]+)\}|\$((?:request|response|context|stageVariables)(?:\.[A-Za-z0-9_\-\[\]'$@]+)*)"
)

Sources = Mapping[str, Callable[[str], str | None]]


def check_mapping_key(key: str, response: bool) -> str | None:
    """An error message for a mapping key that is not AWS's, else None."""
    match = KEY.match(key)
    if match is None:
        return f"{key!r}: use append|overwrite|remove:header.<name> or :querystring.<name>, overwrite:path"
    action, target = match.groups()
    if target == "path" and (response or action != "overwrite"):
        return f"{key!r}: only overwrite:path, in request mappings"
    if target == "statuscode" and (not response or action != "overwrite"):
        return f"{key!r}: only overwrite:statuscode, in response mappings"
    if response and target.startswith("querystring."):
        return f"{key!r}: response mappings change headers and the status code"
    return None


def _render(template: str, sources: Sources) -> str | None:
    """The value with every variable substituted; None when one of them is missing."""
    missing = False

    def one(match: re.Match[str]) -> str:
        nonlocal missing
        variable = match.group(1) or match.group(2)
        root, _, rest = variable.partition(".")
        getter = sources.get(root)
        value = getter(rest) if getter is not None else None
        if value is None:
            missing = True
            return ""
        return value

    out = _VALUE.sub(one, template)
    return None if missing else out


def _body_getter(body: bytes) -> Callable[[str], str | None]:
    parsed: list[Any] = []

    def get(path: str) -> str | None:
        if not parsed:
            try:
                parsed.append(orjson.loads(body))
            except orjson.JSONDecodeError:
                parsed.append(None)
        found = evaluate(parsed[0], "$." + path if path else "$")
        if found is MISSING:
            return None
        return found if isinstance(found, str) else orjson.dumps(found).decode()

    return get


def _context(info: RequestInfo) -> Callable[[str], str | None]:
    values = {
        "requestId": info.extended_request_id,
        "apiId": info.api_id,
        "stage": info.stage,
        "routeKey": info.route_key,
        "httpMethod": info.request.method,
        "path": info.stage_prefix + info.path,
        "domainName": info.request.host.partition(":")[0],
        "accountId": info.account_id,
        "identity.sourceIp": info.request.source_ip,
    }
    return values.get


class HttpApiRequestMapping:
    __slots__ = ("_items",)

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._items = tuple(
            (key.partition(":")[0], key.partition(":")[2], value) for key, value in mapping.items()
        )

    def apply(self, info: RequestInfo) -> RequestInfo:
        req = info.request
        query = parse_qsl(req.query_string, keep_blank_values=True)
        query_map = dict(query)

        def request_source(rest: str) -> str | None:
            kind, _, name = rest.partition(".")
            if kind == "header":
                return header_get(req.headers, name)
            if kind == "querystring":
                return query_map.get(name)
            if kind == "path":
                return info.path if not name else info.path_parameters.get(name)
            if kind == "body":
                return _body_getter(req.body)(name)
            return None

        sources: Sources = {
            "request": request_source,
            "context": _context(info),
            "stageVariables": info.stage_variables.get,
        }
        headers = list(req.headers)
        path: str | None = None
        for action, target, template in self._items:
            value = None if action == "remove" else _render(template, sources)
            if action != "remove" and value is None:
                continue
            if target == "path":
                path = value
                continue
            kind, _, name = target.partition(".")
            if kind == "header":
                lowered = name.lower()
                if action != "append":
                    headers = [(k, v) for k, v in headers if k.lower() != lowered]
                if value is not None:
                    existing = next((i for i, (k, _) in enumerate(headers) if k.lower() == lowered), None)
                    if action == "append" and existing is not None:
                        headers[existing] = (headers[existing][0], headers[existing][1] + "," + value)
                    else:
                        headers.append((name, value))
            else:
                if action != "append":
                    query = [(k, v) for k, v in query if k != name]
                if value is not None:
                    query.append((name, value))
        request = HttpRequest(
            req.method,
            req.raw_path,
            "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query),
            tuple(headers),
            req.body,
            req.source_ip,
            req.host,
            req.scheme,
            req.protocol,
            req.content_length,
        )
        mapped = copy.copy(info)
        mapped.request = request
        if path is not None:
            # overwrite:path replaces the backend path: served as the {proxy} of a proxy URI.
            mapped.path_parameters = {**info.path_parameters, "proxy": path.lstrip("/")}
        return mapped


class HttpApiResponseMapping:
    __slots__ = ("_by_status",)

    def __init__(self, mapping: Mapping[str, Mapping[str, str]]) -> None:
        self._by_status = {
            int(status): tuple((k.partition(":")[0], k.partition(":")[2], v) for k, v in items.items())
            for status, items in mapping.items()
        }

    def apply(self, info: RequestInfo, response: HttpResponse) -> HttpResponse:
        items = self._by_status.get(response.status)
        if not items:
            return response
        sources: Sources = {
            "response": lambda rest: (
                header_get(response.headers, rest.partition(".")[2])
                if rest.startswith("header.")
                else _body_getter(response.body)(rest.partition(".")[2])
                if rest.startswith("body")
                else None
            ),
            "context": _context(info),
            "stageVariables": info.stage_variables.get,
        }
        headers = list(response.headers)
        status = response.status
        for action, target, template in items:
            value = None if action == "remove" else _render(template, sources)
            if action != "remove" and value is None:
                continue
            if target == "statuscode":
                try:
                    code = int(value or "")
                except ValueError:
                    continue
                if 100 <= code <= 599:
                    status = code
                continue
            name = target.partition(".")[2]
            lowered = name.lower()
            if action != "append":
                headers = [(k, v) for k, v in headers if k.lower() != lowered]
            if value is not None:
                headers.append((name, value))
        return HttpResponse(status, headers, response.body)
