"""Route tables: which route of an API serves a method and path.

Precedence follows API Gateway (aws-contract.md §2.1):

* a literal segment beats a ``{param}``, which beats a greedy ``{param+}``; the search backtracks,
  so ``/a/{x}/c`` still matches ``/a/b/c`` when ``/a/b`` exists without a ``c`` child;
* ``{name}`` matches exactly one non-empty segment; ``{name+}`` matches one or more segments, must
  be last, and does not match its parent path (``/{proxy+}`` does not match ``/``);
* one trailing slash is ignored for matching (the greedy value drops it), double slashes are kept
  (``proxy-value//double-slash``);
* **REST**: the most specific *resource* is chosen first, then its method: an explicit method beats
  ``ANY``; a resource without the method is a miss (403), it does not fall back to another resource.
  HEAD is not mapped to GET.
* **HTTP API**: routes are (method, path) pairs; the most specific path that has the method (or
  ``ANY``) wins, then the ``$default`` route.

Path-parameter values are returned exactly as they appear in the request path (still
percent-encoded, as AWS does for REST); literal segments are compared after percent-decoding.

Pure core: imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

from server.config.model import RouteConfig

__all__ = ["RouteMatch", "RouteTable", "split_path"]


@dataclass(slots=True)  # hot path: plain (non-frozen) init is cheaper
class RouteMatch:
    route: RouteConfig
    path_parameters: dict[str, str]
    resource: str  # the resource template, e.g. "/pets/{id}"


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: tuple[str, _Node] | None = None
    greedy: tuple[str, _Node] | None = None
    methods: dict[str, RouteConfig] = field(default_factory=dict)
    resource: str = "/"


def split_path(path: str) -> list[str]:
    """Split a path into segments, ignoring one trailing slash; ``/`` has no segments."""
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    if path == "/":
        return []
    return path[1:].split("/")


def _parse_segment(segment: str) -> tuple[str, str]:
    """Classify a template segment: ("literal", text) | ("param", name) | ("greedy", name)."""
    if segment.startswith("{") and segment.endswith("}"):
        name = segment[1:-1]
        if name.endswith("+"):
            return "greedy", name[:-1]
        return "param", name
    return "literal", segment


class RouteTable:
    """A compiled, immutable route table for one API.

    Raises ``ValueError`` at build time for definitions AWS rejects: a greedy variable that is not
    last, two different variable names at the same position, or the same method twice.
    """

    def __init__(self, routes: Iterable[RouteConfig], *, http_api: bool = False) -> None:
        self._root = _Node()
        self._http_api = http_api
        self._default: RouteConfig | None = None
        for route in routes:
            self._add(route)

    def _add(self, route: RouteConfig) -> None:
        if route.path == "$default":
            if self._default is not None:
                raise ValueError("duplicate $default route")
            self._default = route
            return
        node = self._root
        segments = split_path(route.path)
        for index, segment in enumerate(segments):
            kind, name = _parse_segment(segment)
            if kind == "literal":
                node = node.literal.setdefault(name, _Node())
            else:
                if kind == "greedy" and index != len(segments) - 1:
                    raise ValueError(f"{route.path}: a greedy path variable must be the last segment")
                slot = node.param if kind == "param" else node.greedy
                if slot is None:
                    slot = (name, _Node())
                    if kind == "param":
                        node.param = slot
                    else:
                        node.greedy = slot
                elif slot[0] != name:
                    raise ValueError(
                        f"{route.path}: conflicting variable names {{{slot[0]}}} and {{{name}}} "
                        "at the same position"
                    )
                node = slot[1]
            node.resource = "/" + "/".join(segments[: index + 1])
        if route.method in node.methods:
            raise ValueError(f"duplicate route {route.method} {route.path}")
        node.methods[route.method] = route

    def match(self, method: str, path: str) -> RouteMatch | None:
        """Find the route for ``method`` on ``path`` (the API-relative, still-encoded path)."""
        segments = split_path(path)
        for node, params in self._candidates(self._root, segments, 0, {}):
            route = node.methods.get(method) or node.methods.get("ANY")
            if route is not None:
                return RouteMatch(route, params, node.resource)
            if not self._http_api:
                return None  # REST: the resource is chosen first; a missing method is a miss
        if self._http_api and self._default is not None:
            return RouteMatch(self._default, {}, "$default")
        return None

    def _candidates(
        self, node: _Node, segments: list[str], index: int, params: dict[str, str]
    ) -> Iterator[tuple[_Node, dict[str, str]]]:
        """Yield resources that match, most specific first (depth-first, literal > param > greedy)."""
        if index == len(segments):
            if node.methods:
                yield node, params
            return
        segment = segments[index]
        child = node.literal.get(unquote(segment))
        if child is not None:
            yield from self._candidates(child, segments, index + 1, params)
        if node.param is not None and segment:
            name, child = node.param
            yield from self._candidates(child, segments, index + 1, {**params, name: segment})
        if node.greedy is not None:
            name, child = node.greedy
            if child.methods:
                yield child, {**params, name: "/".join(segments[index:])}
