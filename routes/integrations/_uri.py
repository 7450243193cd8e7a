"""Integration URI templates for HTTP and HTTP_PROXY integrations (aws-contract.md §2.2, §6).

A template such as ``http://${stageVariables.host}/pets/{id}/{proxy+}?v=${stageVariables.v}`` is
compiled once, when the integration is built, into a tuple of parts; rendering a request is then a
single pass of dictionary look-ups and one ``str.join`` (no regex work per request).

Substitution rules:

* ``${stageVariables.name}``: the stage variable's value, whole or as part of any component (host,
  path, query). An undefined stage variable renders as the empty string (what AWS's parity
  implementation does; the URL is then usually invalid, which the caller reports as a
  configuration error).
* ``{name}`` and ``{name+}``: the path parameter ``name`` exactly as received, still
  percent-encoded; a greedy value keeps its ``/``. A template parameter the route does not provide
  raises :class:`MissingPathParameter` (AWS rejects such an integration when it is created).
* Anything else (including other ``${...}`` expressions) is literal text.

Pure core: imports no I/O library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

__all__ = ["MissingPathParameter", "UriTemplate", "append_query", "requote"]

# Stage variable names are alphanumerics and "_" (aws-contract.md §6); parameter names follow the mapping rule
# ^[a-zA-Z0-9._$-]+$ (aws-contract.md §7.4). Compiled once, used only while compiling a template.
_TOKEN: Final = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}|(?<!\$)\{([A-Za-z0-9._$-]+)\+?\}")

# Characters that may not appear raw in a request target: controls, space, DEL and non-ASCII.
_UNSAFE: Final = re.compile(r"[^\x21-\x7e]")
# RFC 3986 reserved characters plus "%" (existing escapes stay as they are).
_SAFE: Final = "!#$%&'()*+,/:;=?@[]~"

_LITERAL: Final = 0
_PATH_PARAM: Final = 1
_STAGE_VAR: Final = 2


class MissingPathParameter(LookupError):
    """The template names a path parameter the request does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class UriTemplate:
    """A compiled integration URI.

    Attributes:
        source: the template as configured.
        path_parameters: names of the ``{name}`` parameters used, in order.
        stage_variables: names of the ``${stageVariables.name}`` references used, in order.
        is_static: True when there is nothing to substitute (``render`` returns ``source``).
    """

    __slots__ = ("_parts", "is_static", "path_parameters", "source", "stage_variables")

    def __init__(self, source: str) -> None:
        self.source = source
        parts: list[tuple[int, str]] = []
        position = 0
        for match in _TOKEN.finditer(source):
            if match.start() > position:
                parts.append((_LITERAL, source[position : match.start()]))
            stage_var, param = match.group(1), match.group(2)
            parts.append((_STAGE_VAR, stage_var) if stage_var is not None else (_PATH_PARAM, param))
            position = match.end()
        if position < len(source):
            parts.append((_LITERAL, source[position:]))
        self._parts: tuple[tuple[int, str], ...] = tuple(parts)
        self.path_parameters = tuple(value for kind, value in parts if kind == _PATH_PARAM)
        self.stage_variables = tuple(value for kind, value in parts if kind == _STAGE_VAR)
        self.is_static = not self.path_parameters and not self.stage_variables

    def render(self, path_parameters: Mapping[str, str], stage_variables: Mapping[str, str]) -> str:
        """The URI with every token substituted (values inserted verbatim, not re-encoded)."""
        if self.is_static:
            return self.source
        out: list[str] = []
        for kind, value in self._parts:
            if kind == _LITERAL:
                out.append(value)
            elif kind == _STAGE_VAR:
                out.append(stage_variables.get(value, ""))
            else:
                try:
                    out.append(path_parameters[value])
                except KeyError:
                    raise MissingPathParameter(value) from None
        return "".join(out)

    def __repr__(self) -> str:
        return f"UriTemplate({self.source!r})"


def append_query(url: str, query_string: str) -> str:
    """Add the client's raw query string to ``url``, merging with a query the URI already has.

    A fragment is dropped (it is never sent to a server, and a query after it would be lost).
    """
    fragment = url.find("#")
    if fragment >= 0:
        url = url[:fragment]
    if not query_string:
        return url
    if "?" not in url:
        return f"{url}?{query_string}"
    if url.endswith(("?", "&")):
        return url + query_string
    return f"{url}&{query_string}"


def requote(url: str) -> str:
    """Percent-encode characters that cannot appear raw in a URL; existing escapes are kept.

    Path parameter values arrive already encoded, so the common case is a single regex search that
    finds nothing and returns ``url`` unchanged.
    """
    if _UNSAFE.search(url) is None:
        return url
    return quote(url, safe=_SAFE)
