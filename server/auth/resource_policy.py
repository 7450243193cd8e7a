"""API resource policies (aws-contract.md §5.5): who may invoke an API, by caller address, transport and
principal; pure (no I/O imports).

A resource policy is an IAM policy whose statements also carry a ``Principal`` and may carry a
``Condition``. A statement applies to a request when its principal names the caller (``*``: anyone,
signed or not; an account id or ``arn:aws:iam::{account}:root``: any IAM caller of that account; a
user/role ARN: that caller) and every condition holds. The applicable statements are then
evaluated with :func:`server.auth.policy.evaluate` (explicit deny wins, else any allow).

Condition keys supported (anything else is refused when the config loads: fail closed):
``aws:SourceIp`` (``IpAddress``/``NotIpAddress``), ``aws:SecureTransport`` (``Bool``),
``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:UserAgent``, ``aws:Referer``
(``StringEquals``/``StringNotEquals``/``StringLike``/``StringNotLike``, ``ArnEquals``/``ArnLike``/
``ArnNotEquals``/``ArnNotLike``). A key the request does not have (``aws:PrincipalArn`` of an
anonymous caller) fails a positive operator and satisfies a negated one, as in IAM.

The caller's address is the TCP peer, unless the peer is one of the configured trusted proxies:
then it is the right-most ``X-Forwarded-For`` address that is not itself a trusted proxy
(:func:`client_address`), so a client cannot choose its address by sending the header itself.
Likewise ``aws:SecureTransport`` believes ``X-Forwarded-Proto`` from trusted proxies only.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from server.auth.policy import (
    Decision,
    Policy,
    PolicyError,
    Statement,
    evaluate,
    parse_policy,
    wildcard_match,
)

__all__ = [
    "Caller",
    "Network",
    "RequestFacts",
    "ResourcePolicy",
    "access_denied_message",
    "client_address",
    "decide",
    "parse_networks",
    "parse_resource_policy",
    "secure_transport",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated IAM principal (an access key of the gateway)."""

    arn: str
    account: str


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What conditions are evaluated against. ``caller`` None: anonymous (not SigV4-signed)."""

    source_ip: str
    secure: bool
    caller: Caller | None = None
    user_agent: str | None = None
    referer: str | None = None


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses); raises ValueError naming the bad one."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


@lru_cache(maxsize=4096)
def _address(text: str) -> _Address | None:
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _inside(address: _Address | None, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address: the peer, or (only when the peer is a trusted proxy) the right-most
    ``X-Forwarded-For`` entry that is not a trusted proxy. ``forwarded_for``: every value of the
    header, in arrival order (each may list several addresses)."""
    if not trusted or not _inside(_address(peer), trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _inside(_address(hop), trusted):
            return hop
    return hops[0] if hops else peer  # every hop is a trusted proxy: the left-most is the origin


def secure_transport(
    scheme: str, peer: str, forwarded_proto: Sequence[str], trusted: Sequence[Network]
) -> bool:
    """``aws:SecureTransport``: the gateway terminated TLS itself, or a trusted proxy says it did
    (the last ``X-Forwarded-Proto`` value it sent is ``https``)."""
    if scheme == "https":
        return True
    if not forwarded_proto or not trusted or not _inside(_address(peer), trusted):
        return False
    return forwarded_proto[-1].split(",")[-1].strip().lower() == "https"


# -- conditions ------------------------------------------------------------------------------

_STRING_KEYS = {"aws:principalarn", "aws:principalaccount", "aws:useragent", "aws:referer"}
_KEYS = {"aws:sourceip", "aws:securetransport", *_STRING_KEYS}
_STRING_OPERATORS = {
    "StringEquals": (False, False),  # (negated, wildcards)
    "StringNotEquals": (True, False),
    "StringLike": (False, True),
    "StringNotLike": (True, True),
    "ArnEquals": (False, True),
    "ArnLike": (False, True),
    "ArnNotEquals": (True, True),
    "ArnNotLike": (True, True),
}
_OPERATORS = {"IpAddress", "NotIpAddress", "Bool", *_STRING_OPERATORS}

Check = Callable[[RequestFacts], bool]


def _values(raw: Any, where: str) -> tuple[str, ...]:
    if isinstance(raw, bool):
        return ("true" if raw else "false",)
    if isinstance(raw, str | int):
        return (str(raw),)
    if isinstance(raw, list) and raw and all(isinstance(v, str | int | bool) for v in raw):
        return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in raw)
    raise PolicyError(f"{where}: a condition value must be a string or a list of strings")


def _fact(facts: RequestFacts, key: str) -> str | None:
    if key == "aws:principalarn":
        return facts.caller.arn if facts.caller else None
    if key == "aws:principalaccount":
        return facts.caller.account if facts.caller else None
    if key == "aws:useragent":
        return facts.user_agent
    return facts.referer


def _condition(operator: str, key: str, raw: Any) -> Check:
    where = f"Condition.{operator}.{key}"
    lkey = key.lower()
    if lkey not in _KEYS:
        raise PolicyError(
            f"{where}: condition key {key!r} is not supported (supported: {', '.join(sorted(_KEYS))})"
        )
    values = _values(raw, where)
    if operator in ("IpAddress", "NotIpAddress"):
        if lkey != "aws:sourceip":
            raise PolicyError(f"{where}: {operator} applies to aws:SourceIp only")
        try:
            networks = parse_networks(values)
        except ValueError as exc:
            raise PolicyError(f"{where}: {exc}") from None
        negated = operator == "NotIpAddress"
        return lambda facts: _inside(_address(facts.source_ip), networks) != negated
    if operator == "Bool":
        if lkey != "aws:securetransport" or any(v.lower() not in ("true", "false") for v in values):
            raise PolicyError(f"{where}: Bool applies to aws:SecureTransport with true or false")
        wanted = {v.lower() == "true" for v in values}
        return lambda facts: facts.secure in wanted
    if lkey not in _STRING_KEYS:
        raise PolicyError(f"{where}: {operator} does not apply to {key}")
    negated, wildcards = _STRING_OPERATORS[operator]

    def check(facts: RequestFacts) -> bool:
        value = _fact(facts, lkey)
        if value is None:
            return negated  # a missing key: positive operators fail, negated ones hold
        hit = any(wildcard_match(p, value) if wildcards else p == value for p in values)
        return hit != negated

    return check


def _conditions(raw: Mapping[str, Any] | None) -> tuple[Check, ...]:
    checks: list[Check] = []
    for operator, body in (raw or {}).items():
        if operator not in _OPERATORS:
            raise PolicyError(
                f"Condition operator {operator!r} is not supported "
                f"(supported: {', '.join(sorted(_OPERATORS))})"
            )
        if not isinstance(body, Mapping) or not body:
            raise PolicyError(f"Condition.{operator} must be an object of condition keys")
        checks.extend(_condition(operator, str(key), value) for key, value in body.items())
    return tuple(checks)


# -- principals ------------------------------------------------------------------------------

PrincipalMatch = Callable[[Caller | None], bool]


def _principal(raw: Any) -> PrincipalMatch:
    if raw == "*" or (isinstance(raw, Mapping) and raw.get("AWS") == "*"):
        return lambda caller: True
    if not isinstance(raw, Mapping) or set(raw) != {"AWS"}:
        raise PolicyError('Principal must be "*" or {"AWS": <account ids or IAM ARNs>}')
    names = raw["AWS"] if isinstance(raw["AWS"], list) else [raw["AWS"]]
    if not names or not all(isinstance(name, str) and name for name in names):
        raise PolicyError("Principal.AWS must be a string or a list of strings")
    accounts = {n for n in names if n.isdigit()} | {
        n.split(":")[4] for n in names if n.startswith("arn:") and n.endswith(":root") and n.count(":") >= 5
    }
    arns = {n for n in names if n.startswith("arn:") and not n.endswith(":root")}
    if "*" in names:
        return lambda caller: True
    return lambda caller: caller is not None and (caller.account in accounts or caller.arn in arns)


@dataclass(frozen=True, slots=True)
class _Rule:
    statement: Statement
    principal: PrincipalMatch
    checks: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class ResourcePolicy:
    """A parsed resource policy: the policy plus each statement's compiled principal/conditions."""

    policy: Policy
    rules: tuple[_Rule, ...]


def parse_resource_policy(document: Any) -> ResourcePolicy:
    """A resource policy: a policy document, or just its list of statements. Raises PolicyError."""
    if isinstance(document, list):
        document = {"Statement": document}
    policy = parse_policy(document)
    # ``execute-api:/stage/VERB/path`` is AWS's shorthand for this API's own ARNs (expanded on
    # import): any region/account/API id is equivalent here, since the policy is the API's.
    policy = Policy(
        tuple(
            dataclasses.replace(
                statement,
                resources=tuple(
                    "arn:aws:execute-api:*:*:*/" + r.removeprefix("execute-api:/")
                    if r.startswith("execute-api:/")
                    else r
                    for r in statement.resources
                ),
            )
            for statement in policy.statements
        )
    )
    rules = []
    for statement in policy.statements:
        if statement.principal is None:
            raise PolicyError("every statement of a resource policy needs a Principal")
        rules.append(_Rule(statement, _principal(statement.principal), _conditions(statement.condition)))
    return ResourcePolicy(policy, tuple(rules))


def decide(policy: ResourcePolicy, facts: RequestFacts, action: str, resource: str) -> Decision:
    """The resource policy's answer for this caller: DENY (an explicit deny applies), ALLOW, or
    NONE (no statement applies)."""
    applicable = [
        rule.statement
        for rule in policy.rules
        if rule.principal(facts.caller) and all(check(facts) for check in rule.checks)
    ]
    return evaluate(policy.policy, action, resource, applicable)


def access_denied_message(caller: Caller | None, action: str, resource: str, *, explicit: bool) -> str:
    """AWS's 403 wording for a policy refusal; the account id in the resource is masked to its
    last four digits, as AWS does (aws-contract.md §0.4)."""
    parts = resource.split(":", 5)
    if len(parts) == 6 and parts[4]:
        parts[4] = "********" + parts[4][-4:]
    masked = ":".join(parts)
    who = caller.arn if caller is not None else "anonymous"
    suffix = " with an explicit deny" if explicit else ""
    return f"User: {who} is not authorized to perform: {action} on resource: {masked}{suffix}"
