"""Resource policies (server/auth/resource_policy.py and the authorize stage): the matrix of source
address, X-Forwarded-For from trusted and untrusted peers, principals, aws:SecureTransport, and
the combination with aws_iam per Table A (aws-contract.md §5.5)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.auth.policy import Decision, PolicyError, parse_policy
from server.auth.resource_policy import (
    Caller,
    RequestFacts,
    access_denied_message,
    client_address,
    decide,
    parse_networks,
    parse_resource_policy,
    secure_transport,
)
from server.config.model import GatewayConfig, IamCredentialConfig
from tests.auth.signing import KEY_ID, SECRET, sign
from tests.auth.test_iam_routes import ACCOUNT, apis, send

INVOKE = "execute-api:Invoke"
ARN = "arn:aws:execute-api:us-east-1:123456789012:petsid/dev/GET/pets"
ALICE = Caller(f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT)


def statement(
    effect: str, principal: Any = "*", condition: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    body = {"Effect": effect, "Principal": principal, "Action": INVOKE, "Resource": kw.get("resource", "*")}
    if condition:
        body["Condition"] = condition
    return body


# -- pure: conditions and principals ------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "facts", "expected"),
    [
        ({"IpAddress": {"aws:SourceIp": ["192.0.2.0/24"]}}, RequestFacts("192.0.2.7", False), Decision.ALLOW),
        (
            {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24"]}},
            RequestFacts("198.51.100.1", False),
            Decision.NONE,
        ),
        (
            {"IpAddress": {"aws:SourceIp": "2001:db8::/32"}},
            RequestFacts("2001:db8::5", False),
            Decision.ALLOW,
        ),
        (
            {"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24"]}},
            RequestFacts("198.51.100.1", False),
            Decision.ALLOW,
        ),
        ({"IpAddress": {"aws:SourceIp": "192.0.2.1"}}, RequestFacts("not-an-ip", False), Decision.NONE),
        ({"Bool": {"aws:SecureTransport": "true"}}, RequestFacts("192.0.2.7", True), Decision.ALLOW),
        ({"Bool": {"aws:SecureTransport": True}}, RequestFacts("192.0.2.7", False), Decision.NONE),
        (
            {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}},
            RequestFacts("1.1.1.1", False, ALICE),
            Decision.ALLOW,
        ),
        ({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, RequestFacts("1.1.1.1", False), Decision.NONE),
        (
            {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/al*"}},
            RequestFacts("1.1.1.1", False, ALICE),
            Decision.ALLOW,
        ),
        # A negated operator holds for a key the request does not have (anonymous callers).
        ({"StringNotEquals": {"aws:PrincipalArn": "x"}}, RequestFacts("1.1.1.1", False), Decision.ALLOW),
        (
            {"StringLike": {"aws:UserAgent": "curl/*"}},
            RequestFacts("1.1.1.1", False, user_agent="curl/8"),
            Decision.ALLOW,
        ),
    ],
)
def test_conditions(condition: dict[str, Any], facts: RequestFacts, expected: Decision) -> None:
    policy = parse_resource_policy([statement("Allow", condition=condition)])
    assert decide(policy, facts, INVOKE, ARN) is expected


def test_principals() -> None:
    by_account = parse_resource_policy([statement("Allow", {"AWS": ACCOUNT})])
    by_root = parse_resource_policy([statement("Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:root"})])
    by_arn = parse_resource_policy([statement("Allow", {"AWS": [ALICE.arn]})])
    bob = Caller(f"arn:aws:iam::{ACCOUNT}:user/bob", ACCOUNT)
    stranger = Caller("arn:aws:iam::999999999999:user/alice", "999999999999")
    for policy in (by_account, by_root):
        assert decide(policy, RequestFacts("1.1.1.1", False, bob), INVOKE, ARN) is Decision.ALLOW
        assert decide(policy, RequestFacts("1.1.1.1", False, stranger), INVOKE, ARN) is Decision.NONE
        assert decide(policy, RequestFacts("1.1.1.1", False), INVOKE, ARN) is Decision.NONE  # anonymous
    assert decide(by_arn, RequestFacts("1.1.1.1", False, ALICE), INVOKE, ARN) is Decision.ALLOW
    assert decide(by_arn, RequestFacts("1.1.1.1", False, bob), INVOKE, ARN) is Decision.NONE


def test_explicit_deny_wins() -> None:
    policy = parse_resource_policy(
        [statement("Allow"), statement("Deny", condition={"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})]
    )
    assert decide(policy, RequestFacts("192.0.2.9", False), INVOKE, ARN) is Decision.DENY
    assert decide(policy, RequestFacts("198.51.100.9", False), INVOKE, ARN) is Decision.ALLOW


@pytest.mark.parametrize(
    "bad",
    [
        [statement("Allow", condition={"StringEquals": {"aws:SourceVpce": "vpce-1"}})],
        [statement("Allow", condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}})],
        [statement("Allow", condition={"IpAddress": {"aws:SourceIp": "not-a-cidr"}})],
        [statement("Allow", principal={"Federated": "x"})],
        [{"Effect": "Allow", "Action": INVOKE, "Resource": "*"}],
    ],
)
def test_what_cannot_be_enforced_is_refused(bad: list[dict[str, Any]]) -> None:
    with pytest.raises(PolicyError):
        parse_resource_policy(bad)


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("203.0.113.5", ["198.51.100.1"], [], "203.0.113.5"),  # no trusted proxies: the header is ignored
        ("203.0.113.5", ["198.51.100.1"], ["10.0.0.0/8"], "203.0.113.5"),  # an untrusted peer's header
        ("10.0.0.2", ["198.51.100.1"], ["10.0.0.0/8"], "198.51.100.1"),
        # The client prepends a spoofed hop; the proxy appends what it saw: the right-most
        # untrusted address is the real client.
        ("10.0.0.2", ["1.2.3.4, 198.51.100.1"], ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", ["1.2.3.4", "198.51.100.1, 10.0.0.3"], ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", [], ["10.0.0.0/8"], "10.0.0.2"),
        ("10.0.0.2", ["10.0.0.9, 10.0.0.3"], ["10.0.0.0/8"], "10.0.0.9"),
    ],
)
def test_client_address(peer: str, forwarded: list[str], trusted: list[str], client: str) -> None:
    assert client_address(peer, forwarded, parse_networks(trusted)) == client


@pytest.mark.parametrize(
    ("scheme", "peer", "proto", "trusted", "secure"),
    [
        ("https", "203.0.113.5", [], [], True),  # --tls-cert: the gateway terminated TLS
        ("http", "203.0.113.5", ["https"], [], False),  # anyone can send the header
        ("http", "203.0.113.5", ["https"], ["10.0.0.0/8"], False),
        ("http", "10.0.0.2", ["https"], ["10.0.0.0/8"], True),  # a trusted proxy terminated TLS
        ("http", "10.0.0.2", ["http"], ["10.0.0.0/8"], False),
        ("http", "10.0.0.2", ["https, http"], ["10.0.0.0/8"], False),  # the last hop's word counts
    ],
)
def test_secure_transport(scheme: str, peer: str, proto: list[str], trusted: list[str], secure: bool) -> None:
    assert secure_transport(scheme, peer, proto, parse_networks(trusted)) is secure


def test_denial_messages_mask_the_account() -> None:
    assert access_denied_message(None, INVOKE, ARN, explicit=True) == (
        "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
        "arn:aws:execute-api:us-east-1:********9012:petsid/dev/GET/pets with an explicit deny"
    )


# -- end to end: the authorize stage --------------------------------------------------------------

Start = Callable[..., Awaitable[str]]  # -> the gateway's base URL
NOTHING = parse_policy(
    {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "arn:aws:execute-api:*:*:none/*"}]}
)


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    servers: list[TestServer] = []

    async def run(
        policy: list[dict[str, Any]], *, key_policy: Any = NOTHING, trusted: tuple[str, ...] = ()
    ) -> str:
        rest, http = apis()
        rest = replace(rest, resource_policy=parse_resource_policy(policy))
        key = IamCredentialConfig(
            KEY_ID, key_policy, secret_access_key=SECRET, arn=f"arn:aws:iam::{ACCOUNT}:user/alice"
        )
        config = GatewayConfig(apis=(rest, http), iam_credentials=(key,), trusted_proxies=trusted)
        server = TestServer(create_app(config), port=0)
        servers.append(server)
        await server.start_server()
        return f"http://127.0.0.1:{server.port}"

    yield run
    for server in servers:
        await server.close()


async def test_no_authorizer_needs_an_explicit_allow(start: Start) -> None:
    gateway = await start([statement("Allow", condition={"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}})])
    assert (await send("GET", f"{gateway}/dev/open", []))[0] == 200
    gateway = await start([statement("Allow", condition={"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})])
    status, headers, body = await send("GET", f"{gateway}/dev/open", [])
    assert status == 403 and headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert body["Message"].startswith("User: anonymous is not authorized to perform: execute-api:Invoke")
    assert not body["Message"].endswith("explicit deny")


async def test_forwarded_for_only_from_trusted_proxies(start: Start) -> None:
    policy = [
        statement("Allow"),
        statement("Deny", condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
    ]
    spoofed = [("X-Forwarded-For", "203.0.113.7")]
    # The peer (127.0.0.1) is not a trusted proxy: its X-Forwarded-For is ignored.
    gateway = await start(policy, trusted=("10.0.0.0/8",))
    assert (await send("GET", f"{gateway}/dev/open", spoofed))[0] == 200
    # The peer is a trusted proxy: the forwarded client is the one the policy sees.
    gateway = await start(policy, trusted=("127.0.0.1/32",))
    status, _, body = await send("GET", f"{gateway}/dev/open", spoofed)
    assert status == 403 and body["Message"].endswith("with an explicit deny")
    # A client behind the proxy cannot hide by prepending an address of its own.
    hidden = [("X-Forwarded-For", "198.51.100.1, 203.0.113.7")]
    assert (await send("GET", f"{gateway}/dev/open", hidden))[0] == 403
    assert (await send("GET", f"{gateway}/dev/open", [("X-Forwarded-For", "198.51.100.1")]))[0] == 200


async def test_secure_transport_required(start: Start) -> None:
    policy = [statement("Allow"), statement("Deny", condition={"Bool": {"aws:SecureTransport": "false"}})]
    gateway = await start(policy, trusted=("127.0.0.1/32",))
    assert (await send("GET", f"{gateway}/dev/open", []))[0] == 403  # plain http
    assert (await send("GET", f"{gateway}/dev/open", [("X-Forwarded-Proto", "https")]))[0] == 200
    gateway = await start(policy)  # no trusted proxies: the header proves nothing
    assert (await send("GET", f"{gateway}/dev/open", [("X-Forwarded-Proto", "https")]))[0] == 403


async def test_explicit_deny_before_signature_checks(start: Start) -> None:
    # Denied by address: refused before (and whatever) the signature.
    gateway = await start([statement("Deny", condition={"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}})])
    status, _, body = await send("GET", f"{gateway}/dev/pets", [])
    assert status == 403 and body["Message"].endswith("with an explicit deny")


async def test_table_a_with_aws_iam(start: Start) -> None:
    allow_alice = [statement("Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"})]
    # The key's own policy allows nothing here, the resource policy allows the principal: Allow.
    gateway = await start(allow_alice)
    url, headers = sign("GET", f"{gateway}/dev/pets")
    assert (await send("GET", url, headers))[0] == 200
    # Neither allows: implicit deny.
    gateway = await start([statement("Allow", {"AWS": "999999999999"})])
    url, headers = sign("GET", f"{gateway}/dev/pets")
    status, _, body = await send("GET", url, headers)
    assert status == 403 and body["Message"].startswith(f"User: arn:aws:iam::{ACCOUNT}:user/alice is not")
    # The key allows, the resource policy explicitly denies the principal: Deny wins.
    allow_all = parse_policy({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})
    gateway = await start([statement("Deny", {"AWS": ACCOUNT})], key_policy=allow_all)
    url, headers = sign("GET", f"{gateway}/dev/pets")
    status, _, body = await send("GET", url, headers)
    assert status == 403 and body["Message"].endswith("with an explicit deny")
    # The key allows and the resource policy says nothing about it: Allow (either is enough).
    gateway = await start([statement("Allow", {"AWS": "999999999999"})], key_policy=allow_all)
    url, headers = sign("GET", f"{gateway}/dev/pets")
    assert (await send("GET", url, headers))[0] == 200
    # An unsigned request to an aws_iam route still needs its signature.
    assert (await send("GET", f"{gateway}/dev/pets", []))[0] == 403
