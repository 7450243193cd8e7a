"""CloudFormation intrinsic functions in a serverless.yml: the values Portway can know locally.

A ``serverless.yml`` mixes Serverless variables (resolved by :mod:`.variables`) with CloudFormation
intrinsic functions (``{"Ref": x}``, ``{"Fn::GetAtt": [a, b]}``, ``!Sub ...``; the short-form tags
load as these long forms, see :mod:`.yamlio`), which AWS resolves at deploy time. Locally Portway
knows what the stack would hold when the template names it:

* pseudo parameters: ``AWS::Region``, ``AWS::AccountId``, ``AWS::Partition``, ``AWS::StackName``
  (``{service}-{stage}``, as serverless names the stack), ``AWS::URLSuffix``;
* ``Ref``/``Fn::GetAtt`` of a resource in ``resources.Resources`` whose physical name is set in the
  template (DynamoDB tables, S3 buckets, SQS queues, SNS topics: their name, ARN, URL), of a
  template parameter with a ``Default``, of a function (``HelloLambdaFunction``: its name and ARN)
  and of the APIs Portway serves (``ApiGatewayRestApi``, ``HttpApi``, ``WebsocketsApi``: their ids);
* ``Fn::Sub``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::Base64``, ``Fn::FindInMap``
  (``resources.Mappings``), ``Fn::ToJsonString``, ``Fn::Length`` over knowable arguments.

Anything else (conditions, imports, generated names, ``AWS::NoValue``) is :data:`UNKNOWN`: the
caller keeps the value opaque. Pure core: no I/O; the template is read through a callback.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["UNKNOWN", "Evaluator", "Stack", "function_logical_id", "intrinsic"]

UNKNOWN: Final = object()  # not knowable without deploying

Lookup = Callable[[tuple[str, ...]], Any]
"""Reads ``resources.<path>`` of the template (variables resolved); None when absent or unusable."""

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def intrinsic(value: Any) -> str | None:
    """The function of an intrinsic call (``Ref``, ``Condition``, ``Fn::Join``, ...), else None."""
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if isinstance(key, str) and (key in ("Ref", "Condition") or key.startswith("Fn::")):
            return key
    return None


def function_logical_id(name: str) -> str:
    """Serverless's logical id of a function's ``AWS::Lambda::Function`` (``hello-world`` ->
    ``HelloDashworldLambdaFunction``)."""
    normalized = name.replace("-", "Dash").replace("_", "Underscore")
    return f"{normalized[:1].upper()}{normalized[1:]}LambdaFunction"


@dataclass(frozen=True, slots=True)
class Stack:
    """What the deployed stack would be: its account, region and name, the functions' names
    (logical id -> function name), the APIs' ids (logical id -> id), and the template's
    ``resources`` section (through ``lookup``)."""

    region: str
    account_id: str
    name: str
    lookup: Lookup
    functions: Mapping[str, str] = field(default_factory=dict)
    apis: Mapping[str, str] = field(default_factory=dict)


class Evaluator:
    """Evaluates intrinsic functions against a :class:`Stack`; :data:`UNKNOWN` when it cannot."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._active: set[str] = set()  # logical ids being resolved (a template may loop)

    def evaluate(self, value: Any) -> Any:
        """``value`` with every intrinsic call inside evaluated, or :data:`UNKNOWN`."""
        function = intrinsic(value)
        if function is not None:
            handler = _FUNCTIONS.get(function)
            return UNKNOWN if handler is None else handler(self, value[function])
        if isinstance(value, dict):
            items = {key: self.evaluate(item) for key, item in value.items()}
            return UNKNOWN if any(item is UNKNOWN for item in items.values()) else items
        if isinstance(value, list):
            values = [self.evaluate(item) for item in value]
            return UNKNOWN if any(item is UNKNOWN for item in values) else values
        return value

    def _text(self, value: Any) -> str | object:
        value = self.evaluate(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value) if isinstance(value, str | int | float) else UNKNOWN

    def _pseudo(self, name: str) -> str | object:
        stack = self._stack
        values = {
            "AWS::Region": stack.region,
            "AWS::AccountId": stack.account_id,
            "AWS::Partition": "aws",
            "AWS::StackName": stack.name,
            "AWS::URLSuffix": "amazonaws.com",
        }
        return values.get(name, UNKNOWN)

    def ref(self, argument: Any) -> Any:
        name = self._text(argument)
        if not isinstance(name, str):
            return UNKNOWN
        if name.startswith("AWS::"):
            return self._pseudo(name)
        if name in self._stack.functions:
            return self._stack.functions[name]
        if name in self._stack.apis:
            return self._stack.apis[name]
        if self._stack.lookup(("Parameters", name)) is not None:
            default = self._stack.lookup(("Parameters", name, "Default"))
            return UNKNOWN if default is None else self.evaluate(default)
        return self._resource(name, "Ref")

    def get_att(self, argument: Any) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        parts = self.evaluate(argument)
        if not (isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, str) for p in parts)):
            return UNKNOWN
        name, attribute = parts
        if name in self._stack.functions and attribute == "Arn":
            stack = self._stack
            return f"arn:aws:lambda:{stack.region}:{stack.account_id}:function:{stack.functions[name]}"
        return self._resource(name, attribute)

    def _resource(self, name: str, attribute: str) -> Any:
        kind = self._stack.lookup(("Resources", name, "Type"))
        known = _RESOURCES.get(kind) if isinstance(kind, str) else None
        if known is None or name in self._active:
            return UNKNOWN
        name_property, attributes = known
        self._active.add(name)
        try:
            physical = self._text(self._stack.lookup(("Resources", name, "Properties", name_property)))
        finally:
            self._active.discard(name)
        template = attributes.get(attribute)
        if not isinstance(physical, str) or template is None:
            return UNKNOWN
        return template.format(name=physical, region=self._stack.region, account=self._stack.account_id)

    def sub(self, argument: Any) -> Any:
        variables: dict[str, Any] = {}
        if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
            argument, variables = argument
        if not isinstance(argument, str):
            return UNKNOWN
        unknown = False

        def replace(match: re.Match[str]) -> str:
            nonlocal unknown
            body = match.group(1).strip()
            if body.startswith("!"):  # `${!Literal}` is the text `${Literal}`
                return "${" + body[1:] + "}"
            if body in variables:
                value = self._text(variables[body])
            elif "." in body and not body.startswith("AWS::"):
                value = self._text(self.get_att(body))
            else:
                value = self._text(self.ref(body))
            if not isinstance(value, str):
                unknown = True
                return ""
            return value

        result = _PLACEHOLDER.sub(replace, argument)
        return UNKNOWN if unknown else result

    def join(self, argument: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 2):
            return UNKNOWN
        delimiter, values = self._text(argument[0]), self.evaluate(argument[1])
        if not isinstance(delimiter, str) or not isinstance(values, list):
            return UNKNOWN
        texts = [self._text(value) for value in values]
        return UNKNOWN if not all(isinstance(t, str) for t in texts) else delimiter.join(map(str, texts))

    def select(self, argument: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 2):
            return UNKNOWN
        index, values = self.evaluate(argument[0]), self.evaluate(argument[1])
        if isinstance(index, str) and index.isdigit():
            index = int(index)
        if isinstance(index, bool) or not isinstance(index, int) or not isinstance(values, list):
            return UNKNOWN
        return values[index] if 0 <= index < len(values) else UNKNOWN

    def split(self, argument: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 2):
            return UNKNOWN
        delimiter, text = self._text(argument[0]), self._text(argument[1])
        if not (isinstance(delimiter, str) and delimiter and isinstance(text, str)):
            return UNKNOWN
        return text.split(delimiter)

    def base64(self, argument: Any) -> Any:
        text = self._text(argument)
        return base64.b64encode(text.encode()).decode("ascii") if isinstance(text, str) else UNKNOWN

    def find_in_map(self, argument: Any) -> Any:
        keys = self.evaluate(argument)
        if not (isinstance(keys, list) and len(keys) == 3):
            return UNKNOWN
        value = self._stack.lookup(("Mappings", *(str(key) for key in keys)))
        return UNKNOWN if value is None else self.evaluate(value)

    def to_json_string(self, argument: Any) -> Any:
        value = self.evaluate(argument)
        return UNKNOWN if value is UNKNOWN else json.dumps(value, separators=(",", ":"))

    def length(self, argument: Any) -> Any:
        value = self.evaluate(argument)
        return len(value) if isinstance(value, list) else UNKNOWN


# Resource type -> (the property holding its physical name, {attribute: value}); "Ref" is Ref's.
_RESOURCES: dict[str, tuple[str, dict[str, str]]] = {
    "AWS::DynamoDB::Table": (
        "TableName",
        {"Ref": "{name}", "Arn": "arn:aws:dynamodb:{region}:{account}:table/{name}"},
    ),
    "AWS::S3::Bucket": (
        "BucketName",
        {
            "Ref": "{name}",
            "Arn": "arn:aws:s3:::{name}",
            "DomainName": "{name}.s3.amazonaws.com",
            "RegionalDomainName": "{name}.s3.{region}.amazonaws.com",
        },
    ),
    "AWS::SQS::Queue": (
        "QueueName",
        {
            "Ref": "https://sqs.{region}.amazonaws.com/{account}/{name}",
            "QueueUrl": "https://sqs.{region}.amazonaws.com/{account}/{name}",
            "Arn": "arn:aws:sqs:{region}:{account}:{name}",
            "QueueName": "{name}",
        },
    ),
    "AWS::SNS::Topic": (
        "TopicName",
        {
            "Ref": "arn:aws:sns:{region}:{account}:{name}",
            "TopicArn": "arn:aws:sns:{region}:{account}:{name}",
            "TopicName": "{name}",
        },
    ),
}

_FUNCTIONS: dict[str, Callable[[Evaluator, Any], Any]] = {
    "Ref": Evaluator.ref,
    "Fn::GetAtt": Evaluator.get_att,
    "Fn::Sub": Evaluator.sub,
    "Fn::Join": Evaluator.join,
    "Fn::Select": Evaluator.select,
    "Fn::Split": Evaluator.split,
    "Fn::Base64": Evaluator.base64,
    "Fn::FindInMap": Evaluator.find_in_map,
    "Fn::ToJsonString": Evaluator.to_json_string,
    "Fn::Length": Evaluator.length,
}
