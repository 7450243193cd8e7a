"""Prometheus metrics of one gateway process: ``GET /@metrics`` (text exposition format).

The hot paths keep plain ``int`` counters on their own objects (an attribute increment costs
nothing measurable; a ``prometheus_client.Counter`` takes a lock on every call). This collector
reads them only when scraped, through ``prometheus_client``'s custom-collector API, so the
exposition format, escaping and content negotiation are the library's.

Who may scrape: callers in ``management.allowNetworks`` (loopback only by default; no signature,
and without ``management.auth: iam`` no request relayed by a proxy); anyone else gets 403.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from server.request_metrics import Histogram, RequestMetrics

__all__ = ["CONTENT_TYPE", "GatewayCollector", "PoolFigures", "Sources", "exposition"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True, slots=True)
class PoolFigures:
    """One function's handler worker pool (process isolation)."""

    function: str
    workers: int  # live worker processes
    waiting: int  # invocations queued for a free worker
    spawned: int
    killed: int
    timeouts: int
    queue_full: int


def _zero() -> int:
    return 0


def _no_messages() -> tuple[int, int]:
    return 0, 0


def _no_pools() -> Iterable[PoolFigures]:
    return ()


def _no_histogram() -> Histogram | None:
    return None


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
    requests: RequestMetrics | None = None
    websocket_connects: Callable[[], int] = _zero
    websocket_disconnects: Callable[[], int] = _zero
    websocket_messages: Callable[[], tuple[int, int]] = _no_messages  # received, sent
    connection_store_errors: Callable[[], int] = _zero
    store_latency: Callable[[], Histogram | None] = _no_histogram
    worker_pools: Callable[[], Iterable[PoolFigures]] = _no_pools
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
        yield from request_families(s)
        yield from node_families(s)


def _histogram(name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, labels=labels, unit="seconds")


def request_families(s: Sources) -> Iterator[Metric]:
    """Requests by route and status, latency histograms, @connections calls (RequestMetrics)."""
    metrics = s.requests
    if metrics is None:
        return
    labels = ["api", "stage", "route"]
    requests = CounterMetricFamily(
        "portway_requests",
        "REST/HTTP requests answered, by API, stage, route and status.",
        labels=[*labels, "status"],
    )
    for route, status, count in metrics.requests():
        requests.add_metric([route.api, route.stage, route.route, str(status)], count)
    yield requests
    gateway = _histogram(
        "portway_request_duration", "Time from the request's head to its answer, per route.", labels
    )
    for route, hist in metrics.latencies():
        gateway.add_metric([route.api, route.stage, route.route], hist.cumulative(), hist.total)
    yield gateway
    integration = _histogram(
        "portway_integration_duration",
        "Time spent in the route's integration (handler, backend), per route.",
        labels,
    )
    for route, hist in metrics.integration_latencies():
        integration.add_metric([route.api, route.stage, route.route], hist.cumulative(), hist.total)
    yield integration
    calls = CounterMetricFamily(
        "portway_connections_api_calls",
        "@connections calls answered, by method and status.",
        labels=["method", "status"],
    )
    for method, status, count in metrics.management_calls():
        calls.add_metric([method, str(status)], count)
    yield calls


def node_families(s: Sources) -> Iterator[Metric]:
    """WebSocket traffic, store latency, handler worker pools."""
    yield CounterMetricFamily(
        "portway_websocket_connects", "WebSocket connections opened on this node.", s.websocket_connects()
    )
    yield CounterMetricFamily(
        "portway_websocket_disconnects",
        "WebSocket connections closed on this node.",
        s.websocket_disconnects(),
    )
    received, sent = s.websocket_messages()
    messages = CounterMetricFamily(
        "portway_websocket_messages",
        "WebSocket messages received from and sent to clients.",
        labels=["direction"],
    )
    messages.add_metric(["in"], received)
    messages.add_metric(["out"], sent)
    yield messages
    yield CounterMetricFamily(
        "portway_connection_store_errors",
        "Connection record writes the store could not take (the socket stays reachable on this node).",
        s.connection_store_errors(),
    )
    store = s.store_latency()
    if store is not None:
        family = _histogram(
            "portway_store_admit_duration", "Time of one throttling decision in the store.", []
        )
        family.add_metric([], store.cumulative(), store.total)
        yield family
    pools = list(s.worker_pools())
    figures = [
        ("workers", GaugeMetricFamily, "Live handler worker processes, per function."),
        ("waiting", GaugeMetricFamily, "Invocations queued for a free handler worker, per function."),
        ("spawned", CounterMetricFamily, "Handler worker processes started, per function."),
        ("killed", CounterMetricFamily, "Handler worker processes killed (timeout, out of memory, broken)."),
        ("timeouts", CounterMetricFamily, "Invocations that passed their deadline, per function."),
        ("queue_full", CounterMetricFamily, "Invocations refused because the pool's queue was full."),
    ]
    for attr, kind, doc in figures:
        family = kind(f"portway_handler_pool_{attr}", doc, labels=["function"])
        for pool in pools:
            family.add_metric([pool.function], getattr(pool, attr))
        yield family
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
