"""Read a gateway definition file, detect its format, and build the model.

* A mapping with a top-level ``portway:`` key is Portway's native format (:mod:`.native`).
* A mapping with ``service:`` plus ``provider:`` or ``functions:`` is a Serverless Framework v3
  ``serverless.yml`` (:mod:`.serverless`).

YAML is parsed with ``yaml.CSafeLoader`` when libyaml is available. Syntax errors are reported
with their line and column; so are duplicate mapping keys, which plain PyYAML silently collapses
(the last one would win and hide a route).

Every problem found is collected; :func:`load_config` raises one :class:`ConfigError` with all
of them, or returns the :class:`GatewayConfig` (whose ``warnings`` list what was ignored).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from server.config.errors import ConfigError, ConfigIssue, Issues
from server.config.model import GatewayConfig
from server.config.native import load_native
from server.config.serverless import load_serverless

__all__ = ["detect_format", "load_config", "parse_yaml"]

if TYPE_CHECKING:
    _BaseLoader = yaml.SafeLoader
else:
    _BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(_BaseLoader):
    """Safe loader that records duplicate keys (YAML forbids them; PyYAML keeps the last)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[ConfigIssue] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                if key_node.value in seen:
                    mark = key_node.start_mark
                    self.duplicates.append(
                        ConfigIssue(
                            f"line {mark.line + 1}, column {mark.column + 1}",
                            f"duplicate key {key_node.value!r} (YAML keys must be unique in a mapping)",
                        )
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> tuple[Any, list[ConfigIssue]]:
    """Parse one YAML document safely; return (data, issues). Data is None when parsing failed."""
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        return None, [ConfigIssue(where, f"YAML syntax error: {message}")]
    except yaml.YAMLError as exc:
        return None, [ConfigIssue("", f"YAML error: {exc}")]
    finally:
        loader.dispose()
    return data, loader.duplicates


def detect_format(document: Any) -> str | None:
    """``"native"``, ``"serverless"`` or None."""
    if not isinstance(document, dict):
        return None
    if "portway" in document:
        return "native"
    if "service" in document and ("provider" in document or "functions" in document):
        return "serverless"
    return None


def load_config(
    path: Path, *, stage: str | None = None, env: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Load ``path`` (native or serverless.yml, detected) into a validated :class:`GatewayConfig`.

    Args:
        path: the definition file; relative paths inside it (handlers, ``codeDir``) are resolved
            against its folder.
        stage: native: serve only this stage of every API; serverless: ``--stage`` (overrides
            ``provider.stage`` and answers ``${opt:stage}``).
        env: environment for serverless ``${env:NAME}`` variables (default ``os.environ``).

    Raises:
        ConfigError: with every problem found.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue("", f"cannot read the file: {exc}")], path) from None
    document, problems = parse_yaml(text)
    issues = Issues(errors=list(problems))
    if document is None and not problems:
        issues.error("", "the file is empty")
    issues.raise_if_any(path)
    kind = detect_format(document)
    if kind is None:
        issues.error(
            "",
            "not a gateway definition: a Portway file starts with `portway: 1`; a serverless.yml has "
            "`service:` and `provider:` or `functions:`",
        )
        issues.raise_if_any(path)
    if kind == "native":
        config = load_native(document, source=path, stage=stage, issues=issues)
    else:
        environment = os.environ if env is None else env
        config = load_serverless(document, source=path, stage=stage, env=environment, issues=issues)
    issues.raise_if_any(path)
    return config
