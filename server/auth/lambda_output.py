"""What a Lambda authorizer answers, and what the gateway makes of it (reference §5.1, §5.2); pure
(no I/O imports).

Two response forms:

* **IAM** (REST, WebSocket, HTTP API by default): ``principalId``, ``policyDocument`` (evaluated
  with :mod:`server.auth.policy` against each request's method ARN, so a cached policy that
  allows one method denies the others), optional ``context`` and ``usageIdentifierKey``;
* **simple** (HTTP API payload 2.0 with ``enableSimpleResponses``): ``isAuthorized`` and an
  optional ``context``.

A response that does not fit its form raises :class:`MalformedResult` (the caller answers 500).
REST and WebSocket ``context`` values must be strings, numbers or booleans and reach the
integration stringified (``1`` -> ``"1"``, ``true`` -> ``"true"``); HTTP API context values may be
any JSON and are passed as they are, under ``lambda``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from server.auth.base import AuthResult
from server.auth.policy import Decision, Policy, PolicyError, evaluate, parse_policy
from server.config.model import ApiKind
from server.errors import AccessDenied

__all__ = ["EXPLICIT_DENY", "MalformedResult", "Verdict", "decide", "parse_verdict", "stringify"]

EXPLICIT_DENY = "User is not authorized to access this resource with an explicit deny"
_INVOKE = "execute-api:Invoke"
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class MalformedResult(ValueError):
    """An authorizer response the gateway cannot use (AWS: AuthorizerConfigurationException)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A parsed authorizer response; cached (parsed) per distinct response."""

    principal_id: str | None
    policy: Policy | None  # IAM form
    allowed: bool  # simple form (IAM form: unused)
    context: Mapping[str, Any]  # as the integration will see it
    usage_identifier_key: str | None


def stringify(value: Any) -> str:
    """A context value as AWS passes it on: ``true``/``false``, numbers as JSON writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return repr(value)  # 1.0 stays "1.0", as Java's Double.toString does
    return str(value)


def _context(raw: Any, kind: ApiKind) -> Mapping[str, Any]:
    if raw is None:
        return _EMPTY
    if not isinstance(raw, dict):
        raise MalformedResult("context must be an object")
    if kind is ApiKind.HTTP:
        return MappingProxyType(dict(raw))
    out: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if not isinstance(value, str | int | float):
            raise MalformedResult(f"context value {key!r} must be a string, number or boolean")
        out[str(key)] = stringify(value)
    return MappingProxyType(out)


def parse_verdict(raw: Any, kind: ApiKind, *, simple: bool) -> Verdict:
    """Parse a handler's return value; :class:`MalformedResult` if it does not fit the form."""
    if not isinstance(raw, dict):
        raise MalformedResult("the authorizer must return an object")
    context = _context(raw.get("context"), kind)
    if simple:
        allowed = raw.get("isAuthorized")
        if not isinstance(allowed, bool):
            raise MalformedResult("isAuthorized must be true or false")
        return Verdict(None, None, allowed, context, None)
    principal = raw.get("principalId")
    if kind is not ApiKind.HTTP and not isinstance(principal, str | int):
        raise MalformedResult("principalId is required")
    try:
        policy = parse_policy(raw.get("policyDocument"))
    except PolicyError as exc:
        raise MalformedResult(f"policyDocument: {exc}") from exc
    key = raw.get("usageIdentifierKey")
    if key is not None and not isinstance(key, str):
        raise MalformedResult("usageIdentifierKey must be a string")
    return Verdict(None if principal is None else str(principal), policy, False, context, key)


def decide(verdict: Verdict, method_arn: str, kind: ApiKind, latency_ms: int) -> AuthResult:
    """Allow (the :class:`AuthResult` the integration's event carries) or raise
    :class:`AccessDenied` (403; REST: with AWS's explicit-deny wording when a Deny matched)."""
    if verdict.policy is None:
        if not verdict.allowed:
            raise AccessDenied()
    else:
        decision = evaluate(verdict.policy, _INVOKE, method_arn)
        if decision is not Decision.ALLOW:
            if decision is Decision.DENY and kind is not ApiKind.HTTP:
                raise AccessDenied(EXPLICIT_DENY)
            raise AccessDenied()
    authorizer: dict[str, Any]
    if kind is ApiKind.HTTP:
        authorizer = {"lambda": dict(verdict.context)}
    else:
        authorizer = dict(verdict.context)
        authorizer["principalId"] = verdict.principal_id
        authorizer["integrationLatency"] = latency_ms
    return AuthResult(
        authorizer=MappingProxyType(authorizer),  # may be shared by the requests of a cached result
        principal_id=verdict.principal_id,
        usage_identifier_key=verdict.usage_identifier_key,
    )
