"""Safe YAML parsing for definition files: line/column errors, duplicate keys, YAML 1.2 booleans.

* ``yaml.CSafeLoader`` (libyaml) when available, else ``yaml.SafeLoader``: no arbitrary objects.
* Syntax errors become a ConfigIssue at ``line L, column C``.
* Duplicate mapping keys are reported (YAML forbids them; PyYAML would keep the last silently and
  hide a route).
* CloudFormation's short-form tags (``!Ref``, ``!GetAtt``, ``!Sub``, ...) load as their long form
  (``{"Ref": x}``, ``{"Fn::GetAtt": [a, b]}``, ``{"Fn::Sub": ...}``), as CloudFormation reads them, so a
  ``serverless.yml`` with them in ``resources`` or ``iam`` parses (:mod:`.cloudformation` evaluates
  the ones Portway can know).
* Only ``true``/``false`` (any case style of YAML 1.2) are booleans: ``yes``, ``no``, ``on``,
  ``off`` stay strings, as in the YAML 1.2 parser the Serverless Framework uses, so
  ``environment: {DEBUG: on}`` means the same to both tools.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import yaml

from server.config.errors import ConfigIssue

__all__ = ["CLOUDFORMATION_TAGS", "parse_yaml"]

if TYPE_CHECKING:
    _BaseLoader = yaml.SafeLoader
else:
    _BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MERGE_TAG = "tag:yaml.org,2002:merge"

# Short-form tag -> long-form key (CloudFormation's template reference, "Intrinsic function reference").
CLOUDFORMATION_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in [
            "And",
            "Base64",
            "Cidr",
            "Equals",
            "FindInMap",
            "GetAZs",
            "GetAtt",
            "If",
            "ImportValue",
            "Join",
            "Not",
            "Or",
            "Select",
            "Split",
            "Sub",
            "Transform",
            "Length",
            "ToJsonString",
        ]
    },
}


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


def _construct_cloudformation(loader: _Loader, node: yaml.Node) -> dict[str, Any]:
    """``!Name value`` -> ``{long form: value}`` in the scalar, sequence and mapping forms alike."""
    key = CLOUDFORMATION_TAGS[node.tag[1:]]
    value: Any = None  # the three node kinds are all handled
    if isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if key == "Fn::GetAtt":  # `!GetAtt Table.Arn`: the logical id ends at the first dot
            value = value.split(".", 1)
    return {key: value}


def parse_yaml(text: str) -> tuple[Any, list[ConfigIssue]]:
    """Parse one YAML document safely; return (data, issues). Data is None when parsing failed."""
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        if "flow mapping" in message:
            message += " (in {...} mappings, quote keys and values that contain braces: '/pets/{id}')"
        return None, [ConfigIssue(where, f"YAML syntax error: {message}")]
    except yaml.YAMLError as exc:
        return None, [ConfigIssue("", f"YAML error: {exc}")]
    finally:
        loader.dispose()
    return data, loader.duplicates


_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
for _tag in CLOUDFORMATION_TAGS:
    _Loader.add_constructor(f"!{_tag}", _construct_cloudformation)
