"""IAM policy evaluation (server/auth/policy.py): the rules of aws-contract.md §5.1 / §5.5."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.auth.policy import Decision, PolicyError, evaluate, parse_policy, wildcard_match

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/GET/pets/1"


def policy(*statements: dict[str, object]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(resource: object, action: object = "execute-api:Invoke") -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(resource: object, action: object = "execute-api:Invoke") -> dict[str, object]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


@pytest.mark.parametrize(
    ("pattern", "hit"),
    [
        (ARN, True),
        ("arn:aws:execute-api:*:*:abc123/*/GET/*", True),
        ("arn:aws:execute-api:us-east-1:123456789012:abc123/*", True),
        ("arn:aws:execute-api:us-east-1:123456789012:abc123/dev/POST/*", False),
        ("arn:aws:execute-api:us-east-1:123456789012:abc123/dev/GET/pets/?", True),
        ("arn:aws:execute-api:us-east-1:123456789012:abc123/dev/GET/pets/??", False),
        ("arn:aws:execute-api:us-east-1:123456789012:ABC123/dev/GET/pets/1", False),  # ARNs: case-sensitive
        ("*", True),
    ],
)
def test_resource_wildcards(pattern: str, hit: bool) -> None:
    expected = Decision.ALLOW if hit else Decision.NONE
    assert evaluate(parse_policy(policy(allow(pattern))), "execute-api:Invoke", ARN) is expected


@pytest.mark.parametrize(
    "action", ["execute-api:Invoke", "execute-api:*", "*", "EXECUTE-API:invoke", "execute-api:In*"]
)
def test_action_forms(action: str) -> None:
    assert evaluate(parse_policy(policy(allow(ARN, action))), "execute-api:Invoke", ARN) is Decision.ALLOW


def test_explicit_deny_wins_in_any_order() -> None:
    for statements in ([allow("*"), deny(ARN)], [deny(ARN), allow("*")]):
        assert evaluate(parse_policy(policy(*statements)), "execute-api:Invoke", ARN) is Decision.DENY


def test_other_action_does_not_match() -> None:
    doc = policy(allow("*", "execute-api:ManageConnections"))
    assert evaluate(parse_policy(doc), "execute-api:Invoke", ARN) is Decision.NONE


def test_not_action_and_not_resource() -> None:
    doc = policy({"Effect": "Deny", "NotResource": ARN, "Action": "*"}, allow("*"))
    assert evaluate(parse_policy(doc), "execute-api:Invoke", ARN) is Decision.ALLOW
    other = ARN.replace("GET", "DELETE")
    assert evaluate(parse_policy(doc), "execute-api:Invoke", other) is Decision.DENY
    doc = policy({"Effect": "Allow", "NotAction": "execute-api:ManageConnections", "Resource": "*"})
    assert evaluate(parse_policy(doc), "execute-api:Invoke", ARN) is Decision.ALLOW


def test_resource_list_and_single_statement_object() -> None:
    doc = {"Statement": allow([ARN.replace("GET", "PUT"), ARN])}
    assert evaluate(parse_policy(doc), "execute-api:Invoke", ARN) is Decision.ALLOW


@pytest.mark.parametrize(
    "document",
    [
        None,
        [],
        {"Statement": "x"},
        {"Statement": [{"Effect": "allow", "Action": "*", "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": 5}]},
        {"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "*", "Resource": "*"}]},
    ],
)
def test_malformed_documents(document: object) -> None:
    with pytest.raises(PolicyError):
        parse_policy(document)


@given(st.text(alphabet="ab/:*?", max_size=8), st.text(alphabet="ab/:", max_size=8))
def test_wildcards_agree_with_fnmatch_semantics(pattern: str, value: str) -> None:
    import fnmatch
    import re

    # fnmatch without character classes ('[' never appears): the same '*' and '?' semantics.
    expected = re.fullmatch(fnmatch.translate(pattern), value, re.DOTALL) is not None
    assert wildcard_match(pattern, value) is expected
