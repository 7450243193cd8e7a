"""One :class:`~server.auth.base.Authorizer` per declared authorizer, shared by the routes that
name it (so its result cache is shared too, as on AWS: the cache is per authorizer).

Each authorizer type registers its builder in :data:`BUILDERS`. A route whose authorizer type has
no builder is refused when the app starts (the loaders refuse it earlier, with its location):
Portway never serves a route open because its authorizer is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from server.auth.base import Authorizer
from server.auth.iam import build_iam_authorizer
from server.config.model import ApiConfig, AuthorizerConfig, AuthorizerType, GatewayConfig

__all__ = ["BUILDERS", "AuthDeps", "UnsupportedAuthorizer", "build_authorizers", "close_authorizers"]


@dataclass(slots=True)
class AuthDeps:
    """What authorizers may need from the app (each builder takes what it uses).

    ``store``: the shared store (result caches, so every node shares them); ``invokers``: the
    Python handler invokers (Lambda authorizers); ``extra``: anything else a builder needs, by name.
    """

    config: GatewayConfig
    store: Any = None
    invokers: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


Builder = Callable[[AuthorizerConfig, ApiConfig, AuthDeps], Authorizer]

# AuthorizerType -> builder. Each implementation module adds its own entry here.
BUILDERS: dict[AuthorizerType, Builder] = {
    AuthorizerType.AWS_IAM: build_iam_authorizer,
}


class UnsupportedAuthorizer(RuntimeError):
    """An authorizer type without an implementation (a loader bug: they refuse it first)."""


def build_authorizers(deps: AuthDeps) -> Mapping[int, Authorizer]:
    """``id(route) -> authorizer`` for every route that declares one (one instance per
    (API, authorizer) pair)."""
    by_route: dict[int, Authorizer] = {}
    built: dict[tuple[str, int], Authorizer] = {}
    for api in deps.config.apis:
        for route in api.routes:
            declared = route.authorizer
            if declared is None:
                continue
            key = (api.id, id(declared))
            if key not in built:
                builder = BUILDERS.get(declared.type)
                if builder is None:
                    raise UnsupportedAuthorizer(
                        f"{api.name} {route.route_key}: authorizer {declared.name!r} of type "
                        f"{declared.type} cannot be enforced; refusing to serve it open"
                    )
                built[key] = builder(declared, api, deps)
            by_route[id(route)] = built[key]
    return by_route


async def close_authorizers(authorizers: Mapping[int, Authorizer]) -> None:
    for authorizer in {id(a): a for a in authorizers.values()}.values():
        await authorizer.close()
