"""``AWS_IAM`` authorization: SigV4 callers with the gateway's own access keys (aws-contract.md §5.5).

:class:`IamKeyring` holds the configured access keys (secrets read from the environment once, at
start-up) with their identity-based policies. :func:`authorize_iam` is the whole decision for
one request, shared by ``aws_iam`` routes (REST, HTTP API, WebSocket ``$connect``) and the
``@connections`` API: verify the signature (:mod:`server.auth.sigv4`), then combine the key's
policy with the API's resource policy as AWS does for callers of the same account (Table A): an
explicit deny in either refuses, else an allow in either admits, else the implicit deny.

:class:`IamAuthorizer` is the :class:`~server.auth.base.Authorizer` for ``aws_iam`` routes. It
needs nothing from the route's :class:`AuthorizerConfig` beyond its type, so every loader's
``aws_iam`` form works with it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from server.auth.base import AuthRequest, AuthResult
from server.auth.policy import Decision, Policy, evaluate
from server.auth.resource_policy import (
    Caller,
    Network,
    RequestFacts,
    ResourcePolicy,
    access_denied_message,
    decide,
    parse_networks,
    secure_transport,
)
from server.auth.sigv4 import SigningSecret, verify
from server.config.model import ApiConfig, ApiKind, AuthorizerConfig, GatewayConfig
from server.errors import AccessDenied
from server.messages import HttpRequest

__all__ = [
    "INVOKE",
    "MANAGE_CONNECTIONS",
    "IamAuthorizer",
    "IamCaller",
    "IamKeyring",
    "MissingSecret",
    "authorize_iam",
    "build_iam_authorizer",
    "missing_secrets",
]

INVOKE = "execute-api:Invoke"
MANAGE_CONNECTIONS = "execute-api:ManageConnections"


class MissingSecret(ValueError):
    """An access key whose ``secretAccessKeyEnv`` variable is unset or empty."""


def missing_secrets(config: GatewayConfig, environ: Mapping[str, str]) -> list[str]:
    """One message per access key whose secret variable is not set (``portway validate`` warns,
    ``serve`` refuses to start)."""
    return [
        f"iam.credentials {cred.access_key_id}: environment variable {cred.secret_env} "
        "(secretAccessKeyEnv) is not set"
        for cred in config.iam_credentials
        if cred.secret_env is not None and not environ.get(cred.secret_env)
    ]


@dataclass(frozen=True, slots=True)
class IamCaller:
    """One access key: its secret, its policy and who it is (``requestContext.identity``)."""

    access_key_id: str
    secret: SigningSecret
    policy: Policy
    principal: Caller
    identity: Mapping[str, Any]


class IamKeyring:
    """The gateway's access keys, by access key id."""

    def __init__(self, callers: Mapping[str, IamCaller]) -> None:
        self._callers = dict(callers)

    @classmethod
    def from_config(cls, config: GatewayConfig, environ: Mapping[str, str] | None = None) -> IamKeyring:
        """Resolve each key's secret (inline, or the environment variable it names). A secret that
        is missing raises ValueError: the gateway refuses to start rather than refuse every
        signature without saying why."""
        env = os.environ if environ is None else environ
        missing = missing_secrets(config, env)
        if missing:
            raise MissingSecret("; ".join(missing))
        callers: dict[str, IamCaller] = {}
        for cred in config.iam_credentials:
            secret = env[cred.secret_env] if cred.secret_env is not None else cred.secret_access_key
            assert secret is not None  # the loaders require one of the two
            account = config.account_id
            if cred.arn and len(cred.arn.split(":")) > 4 and cred.arn.split(":")[4]:
                account = cred.arn.split(":")[4]
            user = cred.user or cred.access_key_id
            arn = cred.arn or f"arn:aws:iam::{account}:user/{user}"
            identity = MappingProxyType(
                {
                    "accessKey": cred.access_key_id,
                    "accountId": account,
                    "caller": user,
                    "user": user,
                    "userArn": arn,
                }
            )
            callers[cred.access_key_id] = IamCaller(
                cred.access_key_id,
                SigningSecret(secret, cred.session_token),
                cred.policy,
                Caller(arn, account),
                identity,
            )
        return cls(callers)

    def __len__(self) -> int:
        return len(self._callers)

    def secret(self, access_key_id: str) -> SigningSecret | None:
        caller = self._callers.get(access_key_id)
        return caller.secret if caller is not None else None

    def caller(self, access_key_id: str) -> IamCaller:
        return self._callers[access_key_id]


def authorize_iam(
    keyring: IamKeyring,
    request: HttpRequest,
    *,
    region: str,
    action: str,
    resource: str,
    now: float,
    resource_policy: ResourcePolicy | None = None,
    source_ip: str | None = None,
    trusted: Sequence[Network] = (),
) -> IamCaller:
    """The verified caller allowed to perform ``action`` on ``resource``; else the SigV4 errors of
    :func:`server.auth.sigv4.verify` or :class:`AccessDenied` (AWS's wording)."""
    verified = verify(request, secrets=keyring.secret, region=region, now=now)
    caller = keyring.caller(verified.access_key_id)
    decisions = [evaluate(caller.policy, action, resource)]
    if resource_policy is not None:
        facts = RequestFacts(
            source_ip=request.source_ip if source_ip is None else source_ip,
            secure=secure_transport(
                request.scheme,
                request.source_ip,
                [value for name, value in request.headers if name.lower() == "x-forwarded-proto"],
                trusted,
            ),
            caller=caller.principal,
            user_agent=request.header("user-agent"),
            referer=request.header("referer"),
        )
        decisions.append(decide(resource_policy, facts, action, resource))
    if Decision.DENY in decisions:
        raise AccessDenied(access_denied_message(caller.principal, action, resource, explicit=True))
    if Decision.ALLOW not in decisions:
        raise AccessDenied(access_denied_message(caller.principal, action, resource, explicit=False))
    return caller


class IamAuthorizer:
    """The ``aws_iam`` authorizer of one API (the API's resource policy takes part, Table A)."""

    # The signature covers the payload's SHA-256: the authorize phase reads the body first.
    needs_body = True

    def __init__(
        self,
        keyring: IamKeyring,
        *,
        region: str,
        kind: ApiKind,
        resource_policy: ResourcePolicy | None = None,
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        self._keyring = keyring
        self._region = region
        self._kind = kind
        self._resource_policy = resource_policy
        self._trusted = parse_networks(trusted_proxies)

    async def authorize(self, request: AuthRequest) -> AuthResult:
        caller = authorize_iam(
            self._keyring,
            request.info.request,
            region=self._region,
            action=INVOKE,
            resource=request.method_arn,
            now=time.time(),
            resource_policy=self._resource_policy,
            source_ip=request.source_ip or None,
            trusted=self._trusted,
        )
        identity = caller.identity
        # HTTP API payload 2.0 events carry IAM callers under requestContext.authorizer.iam
        # (payload 1.0 and REST under requestContext.identity, which is set for every kind).
        authorizer = None
        if self._kind is ApiKind.HTTP:
            authorizer = {
                "iam": {
                    "accessKey": identity["accessKey"],
                    "accountId": identity["accountId"],
                    "callerId": identity["caller"],
                    "cognitoIdentity": None,
                    "principalOrgId": None,
                    "userArn": identity["userArn"],
                    "userId": identity["user"],
                }
            }
        return AuthResult(authorizer=authorizer, principal_id=caller.principal.arn, identity=identity)

    async def close(self) -> None:
        return None


def build_iam_authorizer(declared: AuthorizerConfig, api: ApiConfig, deps: Any) -> IamAuthorizer:
    """The :data:`server.auth.factory.BUILDERS` entry for ``AWS_IAM``: the app passes its keyring
    as ``deps.extra["iam_keyring"]`` (shared with ``@connections``); without it one is built from
    the config."""
    keyring = deps.extra.get("iam_keyring")
    if keyring is None:
        keyring = IamKeyring.from_config(deps.config)
    return IamAuthorizer(
        keyring,
        region=deps.config.region,
        kind=api.kind,
        resource_policy=api.resource_policy,
        trusted_proxies=deps.config.trusted_proxies,
    )
