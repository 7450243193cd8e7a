"""IAM policy evaluation for ``execute-api`` (aws-contract.md §5.1, §5.5); pure (no I/O imports).

Used by Lambda authorizers (the ``policyDocument`` they return), IAM callers (the policy of the
gateway's access key) and resource policies. Rules, as IAM applies them:

* a statement matches when one of its ``Action`` patterns matches the action (case-insensitive;
  ``*`` and ``?`` wildcards; ``NotAction`` inverts) and one of its ``Resource`` patterns matches
  the ARN (case-sensitive; ``*`` matches any run of characters, ``/`` and ``:`` included; ``?`` one
  character; ``NotResource`` inverts);
* an explicit ``Deny`` anywhere wins; else any ``Allow`` allows; else the implicit deny.

A malformed document raises :class:`PolicyError`; callers map it to their own error (a Lambda
authorizer's malformed policy is a 500, a config policy is a load-time error).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

__all__ = ["Decision", "Policy", "PolicyError", "Statement", "evaluate", "parse_policy", "wildcard_match"]


class PolicyError(ValueError):
    """A policy document that IAM would refuse."""


class Decision(Enum):
    ALLOW = "Allow"
    DENY = "Deny"  # an explicit Deny statement matched
    NONE = "None"  # nothing matched: the implicit deny


@dataclass(frozen=True, slots=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_actions: bool = False
    not_resources: bool = False
    # Resource policies only; evaluated by their own module (principal and condition keys).
    principal: Any = None
    condition: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    statements: tuple[Statement, ...]


@lru_cache(maxsize=4096)
def _compile(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's ``StringLike``: ``*`` any run of characters, ``?`` exactly one; the whole value."""
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return _compile(pattern, ignore_case).fullmatch(value) is not None


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise PolicyError(f"{what} must be a string or a non-empty list of strings")


def _statement(raw: Any) -> Statement:
    if not isinstance(raw, Mapping):
        raise PolicyError("a Statement must be an object")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"Effect must be Allow or Deny, not {effect!r}")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError("a Statement needs exactly one of Action and NotAction")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise PolicyError("a Statement needs exactly one of Resource and NotResource")
    not_actions, not_resources = "NotAction" in raw, "NotResource" in raw
    actions = _strings(raw["NotAction" if not_actions else "Action"], "Action")
    resources = _strings(raw["NotResource" if not_resources else "Resource"], "Resource")
    condition = raw.get("Condition")
    if condition is not None and not isinstance(condition, Mapping):
        raise PolicyError("Condition must be an object")
    return Statement(effect, actions, resources, not_actions, not_resources, raw.get("Principal"), condition)


def parse_policy(document: Any) -> Policy:
    """A policy document (a dict, as JSON decodes it). ``Statement`` may be one object or a list;
    ``Version`` is not checked (AWS accepts policies without it from authorizers)."""
    if not isinstance(document, Mapping):
        raise PolicyError("the policy document must be an object")
    raw = document.get("Statement")
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list):
        raise PolicyError("the policy document needs a Statement list")
    return Policy(tuple(_statement(item) for item in raw))


def _matches(statement: Statement, action: str, resource: str) -> bool:
    action_hit = any(wildcard_match(p, action, ignore_case=True) for p in statement.actions)
    if action_hit == statement.not_actions:
        return False
    resource_hit = any(wildcard_match(p, resource) for p in statement.resources)
    return resource_hit != statement.not_resources


def evaluate(
    policy: Policy, action: str, resource: str, statements: Sequence[Statement] | None = None
) -> Decision:
    """Explicit deny wins, then any allow, else :attr:`Decision.NONE`. ``statements``: evaluate
    only these (callers that filtered by principal or condition first), default all."""
    allowed = False
    for statement in policy.statements if statements is None else statements:
        if _matches(statement, action, resource):
            if statement.effect == "Deny":
                return Decision.DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.NONE
