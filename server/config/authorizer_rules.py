"""Load-time checks of an :class:`~server.config.model.AuthorizerConfig`, shared by both config
formats (reference §5). Pure: no I/O imports.

Each check reports at the location of the offending setting (``field(name)`` gives it) so both
loaders point at the key the user wrote. A route whose authorizer has an error is never served.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable

from server.auth.lambda_input import parse_identity_source
from server.config.errors import Issues
from server.config.model import ApiKind, AuthorizerConfig, AuthorizerType

__all__ = [
    "ENFORCED",
    "MAX_TTL_S",
    "UNENFORCED",
    "TYPE_NAMES",
    "check_authorizer",
    "check_scopes",
    "unknown_authorizer",
]

MAX_TTL_S = 3600  # AWS's authorizerResultTtlInSeconds maximum
TYPE_NAMES = {
    "token": AuthorizerType.TOKEN,
    "request": AuthorizerType.REQUEST,
    "jwt": AuthorizerType.JWT,
    "cognito": AuthorizerType.COGNITO_USER_POOLS,
    "cognito_user_pools": AuthorizerType.COGNITO_USER_POOLS,
    "iam": AuthorizerType.AWS_IAM,
    "aws_iam": AuthorizerType.AWS_IAM,
}
_KINDS_OF = {
    AuthorizerType.TOKEN: (ApiKind.REST,),
    AuthorizerType.REQUEST: (ApiKind.REST, ApiKind.HTTP, ApiKind.WEBSOCKET),
    AuthorizerType.JWT: (ApiKind.HTTP,),
    AuthorizerType.COGNITO_USER_POOLS: (ApiKind.REST,),
    AuthorizerType.AWS_IAM: (ApiKind.REST, ApiKind.HTTP, ApiKind.WEBSOCKET),
}
_LAMBDA = (AuthorizerType.TOKEN, AuthorizerType.REQUEST)
# Types this version can enforce (each has its builder in server.auth.factory.BUILDERS, which
# refuses any other again at start-up). Anything else is a load-time error: fail closed.
ENFORCED = frozenset(
    {
        AuthorizerType.TOKEN,
        AuthorizerType.REQUEST,
        AuthorizerType.JWT,
        AuthorizerType.COGNITO_USER_POOLS,
        AuthorizerType.AWS_IAM,
    }
)
UNENFORCED = (
    "this authorizer cannot be enforced by this version of Portway; refusing to serve the route "
    "open (remove the authorizer to serve it without authentication)"
)


def check_authorizer(
    auth: AuthorizerConfig, kind: ApiKind, where: str, field: Callable[[str], str], issues: Issues
) -> bool:
    """True when ``auth`` can be enforced on an API of ``kind``; else errors were reported
    (``where``: the authorizer; ``field(name)``: one of its settings)."""
    errors = len(issues.errors)
    if auth.type not in ENFORCED:
        issues.error(where, f"{auth.type.value}: {UNENFORCED}")
        return False
    if kind not in _KINDS_OF[auth.type]:
        kinds = " or ".join(k.value for k in _KINDS_OF[auth.type])
        issues.error(where, f"a {auth.type.value} authorizer applies to {kinds} APIs, not {kind.value}")
        return False
    if auth.type in _LAMBDA:
        _check_lambda(auth, kind, field, issues)
    if not 0 <= auth.ttl_s <= MAX_TTL_S:
        issues.error(field("resultTtlInSeconds"), f"must be 0 (no caching) to {MAX_TTL_S} seconds")
    if auth.identity_validation is not None:
        try:
            re.compile(auth.identity_validation)
        except re.error as exc:
            issues.error(field("identityValidationExpression"), f"not a valid regular expression: {exc}")
    return len(issues.errors) == errors


def _check_lambda(auth: AuthorizerConfig, kind: ApiKind, field: Callable[[str], str], issues: Issues) -> None:
    if auth.function is None:
        issues.error(field("function"), "a Lambda authorizer needs a function (module.function)")
    for text in auth.identity_sources:
        try:
            source = parse_identity_source(text, kind)
        except ValueError as exc:
            issues.error(field("identitySource"), str(exc))
            continue
        if auth.type is AuthorizerType.TOKEN and source.where != "header":
            issues.error(
                field("identitySource"), "a TOKEN authorizer reads a header: method.request.header.NAME"
            )
    if auth.type is AuthorizerType.TOKEN and len(auth.identity_sources) != 1:
        issues.error(field("identitySource"), "a TOKEN authorizer has exactly one identity source (a header)")
    if auth.type is AuthorizerType.REQUEST and auth.ttl_s and not auth.identity_sources:
        issues.error(
            field("identitySource"),
            "caching (resultTtlInSeconds > 0) needs at least one identity source to key the cache on; "
            "add one or set resultTtlInSeconds: 0",
        )
    if auth.identity_validation is not None and auth.type is not AuthorizerType.TOKEN:
        issues.error(field("identityValidationExpression"), "applies to TOKEN (and Cognito) authorizers only")
    if kind is not ApiKind.HTTP:
        if auth.payload_format != "1.0":
            issues.error(field("payloadFormat"), "applies to HTTP API authorizers only")
        if auth.simple_responses:
            issues.error(field("simpleResponses"), "applies to HTTP API authorizers only")
    elif auth.payload_format not in ("1.0", "2.0"):
        issues.error(field("payloadFormat"), "use 1.0 or 2.0")
    elif auth.simple_responses and auth.payload_format != "2.0":
        issues.error(field("simpleResponses"), "simple responses need payloadFormat 2.0")


def check_scopes(auth: AuthorizerConfig | None, scopes: tuple[str, ...], where: str, issues: Issues) -> None:
    """Route ``authorizationScopes`` need a JWT or Cognito authorizer."""
    if scopes and (auth is None or auth.type not in (AuthorizerType.JWT, AuthorizerType.COGNITO_USER_POOLS)):
        issues.error(where, "authorizationScopes apply to routes with a jwt or cognito authorizer")


def unknown_authorizer(name: str, declared: Iterable[str]) -> str:
    """The message for a route naming an authorizer nobody declared (with a did-you-mean)."""
    names = sorted(declared)
    close = difflib.get_close_matches(name, names, 1)
    hint = f"did you mean {close[0]!r}?" if close else f"declared: {', '.join(names) or 'none'}"
    return f"no authorizer named {name!r} in this API's authorizers ({hint}); or use aws_iam"
