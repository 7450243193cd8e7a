"""What ``/@health`` and ``/@ready`` answer (pure: no I/O, ``now`` passed in).

* Liveness (``/@health``): the process answers. Nothing is checked, so a slow or unreachable
  store never gets a healthy process restarted by its orchestrator.
* Readiness (``/@ready``): the configuration is loaded, the process is not draining, and the
  store answers when the configuration needs it. A load balancer or kubelet sends traffic only
  to ready nodes.

Both are probed by load balancers and kubelets from the network, so both answer any caller, and
their bodies name only the checks and their outcome: no addresses, versions or node ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.config.model import ApiKind, GatewayConfig

__all__ = ["HEALTH_PATH", "READY_PATH", "Lifecycle", "PingCache", "liveness", "readiness", "store_needed"]

HEALTH_PATH = "/@health"
READY_PATH = "/@ready"


@dataclass(slots=True)
class Lifecycle:
    """The node's phase as readiness sees it. ``draining`` is set once a stop was asked for
    (SIGTERM, or the application's shutdown): from then on the node is not ready, while requests
    still being served (and, during ``--drain-delay``, new ones) are answered."""

    draining: bool = False


def store_needed(config: GatewayConfig) -> bool:
    """Whether the gateway cannot do its job without the store.

    WebSocket APIs keep every connection's record there (``@connections`` from another node,
    ``$disconnect`` of a dead node's clients), and ``throttleFailure: closed`` refuses every
    throttled request while it is down. Otherwise REST/HTTP traffic is served through an outage
    (throttling fails open, API keys are checked against the node's copy), so the node stays
    ready and the body reports the store as unreachable.
    """
    if config.throttle_failure == "closed":
        return True
    return any(api.kind is ApiKind.WEBSOCKET or api.throttle_failure == "closed" for api in config.apis)


def liveness() -> tuple[int, dict[str, object]]:
    return 200, {"status": "ok"}


def readiness(
    *, config_loaded: bool, draining: bool, store_reachable: bool, store_needed: bool
) -> tuple[int, dict[str, object]]:
    """Status and JSON body of ``/@ready``: 200 when ready, else 503 naming the failing checks."""
    checks: dict[str, object] = {
        "config": "loaded" if config_loaded else "loading",
        "store": "ok" if store_reachable else "unreachable",
        "draining": draining,
    }
    ready = config_loaded and not draining and (store_reachable or not store_needed)
    return (200 if ready else 503), {"status": "ready" if ready else "not ready", "checks": checks}


class PingCache:
    """The store's last ping outcome, reused for ``ttl_s``: probes come from every load balancer
    and kubelet (and anyone on the network), and must not each cost a store round trip."""

    __slots__ = ("_ttl_s", "_at", "_ok")

    def __init__(self, ttl_s: float = 1.0) -> None:
        self._ttl_s = ttl_s
        self._at: float | None = None
        self._ok = False

    def fresh(self, now: float) -> bool | None:
        """The remembered outcome if it is younger than ``ttl_s``, else None (ping again)."""
        if self._at is None or now - self._at >= self._ttl_s or now < self._at:
            return None
        return self._ok

    def remember(self, ok: bool, now: float) -> None:
        self._ok = ok
        self._at = now
