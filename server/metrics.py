"""Prometheus metrics of one gateway process: ``GET /@metrics`` (text exposition format).

The hot paths keep plain ``int`` counters on their own objects (an attribute increment costs
nothing measurable; a ``prometheus_client.Counter`` takes a lock on every call). This collector
reads them only when scraped, through ``prometheus_client``'s custom-collector API, so the
exposition format, escaping and content negotiation are the library's.

Who may scrape: callers in ``management.allowNetworks`` (loopback only by default; no signature,
and without ``management.auth: iam`` no request relayed by a proxy); anyone else gets 403.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "GatewayCollector", "Sources", "exposition"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(slots=True)
class Sources:
    """Where the figures live (each a zero-argument callable, read at scrape time)."""

    throttle_checked: Callable[[], int]
    throttle_limited: Callable[[], int]
    throttle_quota_limited: Callable[[], int]
    throttle_store_errors: Callable[[], int]
    throttle_store_failing: Callable[[], bool]
    api_keys: Callable[[], int]
    usage_plans: Callable[[], int]
    websocket_connections: Callable[[], int]
    websocket_flood_closes: Callable[[], int]
    websocket_control_flood_closes: Callable[[], int] = lambda: 0
    cache_hits: Callable[[], int] = lambda: 0
    cache_misses: Callable[[], int] = lambda: 0


class GatewayCollector:
    """A ``prometheus_client`` collector over :class:`Sources`."""

    def __init__(self, sources: Sources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        s = self._sources
        yield CounterMetricFamily(
            "portway_throttle_decisions",
            "Throttling decisions asked (requests and messages).",
            s.throttle_checked(),
        )
        limited = CounterMetricFamily(
            "portway_throttle_refused", "Requests and messages refused with 429, by cause.", labels=["cause"]
        )
        quota = s.throttle_quota_limited()
        store = s.throttle_store_errors()
        limited.add_metric(["quota"], quota)
        limited.add_metric(["throttle"], max(0, s.throttle_limited() - quota))
        yield limited
        yield CounterMetricFamily(
            "portway_throttle_store_errors",
            "Decisions the store could not make (answered per throttleFailure: open admits, closed refuses).",
            store,
        )
        yield GaugeMetricFamily(
            "portway_throttle_store_failing",
            "1 while the throttling store is unreachable.",
            1 if s.throttle_store_failing() else 0,
        )
        yield GaugeMetricFamily("portway_api_keys", "API keys known to this node.", s.api_keys())
        yield GaugeMetricFamily("portway_usage_plans", "Usage plans known to this node.", s.usage_plans())
        yield GaugeMetricFamily(
            "portway_websocket_connections",
            "WebSocket connections open on this node.",
            s.websocket_connections(),
        )
        yield CounterMetricFamily(
            "portway_websocket_flood_closes",
            "WebSocket connections closed with 1008 by the flood policy.",
            s.websocket_flood_closes(),
        )
        yield CounterMetricFamily(
            "portway_websocket_control_flood_closes",
            "WebSocket connections closed with 1008 for sending ping/pong frames over controlFrameThrottle.",
            s.websocket_control_flood_closes(),
        )
        cache = CounterMetricFamily(
            "portway_cache_lookups",
            "Stage cache lookups, by result (AWS's CacheHitCount/CacheMissCount).",
            labels=["result"],
        )
        cache.add_metric(["hit"], s.cache_hits())
        cache.add_metric(["miss"], s.cache_misses())
        yield cache


def exposition(sources: Sources) -> bytes:
    """The metrics page (a private registry per call: no process-global state)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(sources))
    return generate_latest(registry)
