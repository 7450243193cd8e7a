"""Per-route request counters and latency histograms, as plain ints (pure: no I/O, no clock).

The pipeline runs :meth:`RequestMetrics.request` once per answered request and
:meth:`RequestMetrics.integration` once per integration call. Each is a dict lookup keyed by the
route object's ``id`` (routes live as long as the app) plus a few integer increments: no lock, no
label formatting, no ``prometheus_client`` object on the hot path. Labels (API, stage, route key)
are resolved when ``/@metrics`` is scraped (server/metrics.py).

Histogram buckets are stored non-cumulative (one increment per observation) and made cumulative
at scrape time, as Prometheus wants them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["LATENCY_BOUNDS_S", "Histogram", "RequestMetrics", "RouteLabels"]

# Seconds; from a MOCK answer (~0.1 ms) to a slow Lambda (AWS's 29 s integration limit).
LATENCY_BOUNDS_S: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


@dataclass(slots=True)
class Histogram:
    """Counts per bucket of :data:`LATENCY_BOUNDS_S` (the last one is +Inf) and the sum."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_S) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BOUNDS_S, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as Prometheus's exposition wants them, ending with ``+Inf``."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*(repr(b) for b in LATENCY_BOUNDS_S), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


@dataclass(frozen=True, slots=True)
class RouteLabels:
    api: str
    stage: str
    route: str  # the route key ("GET /items/{id}", "$default"); "-" when no route matched


_UNMATCHED = RouteLabels("-", "-", "-")


class RequestMetrics:
    """Requests by API/stage/route/status, gateway and integration latency per API/stage/route."""

    __slots__ = ("_labels", "_counts", "_latency", "_integration", "_management")

    def __init__(self) -> None:
        # Route identity (id of its config object; 0 when none matched) -> labels, set once.
        self._labels: dict[tuple[int, str], RouteLabels] = {(0, "-"): _UNMATCHED}
        self._counts: dict[tuple[int, str, int], int] = {}
        self._latency: dict[tuple[int, str], Histogram] = {}
        self._integration: dict[tuple[int, str], Histogram] = {}
        self._management: dict[tuple[str, int], int] = {}

    def label(self, route_id: int, stage: str, labels: RouteLabels) -> None:
        """Name a route once (the first time it is seen)."""
        self._labels.setdefault((route_id, stage), labels)

    def knows(self, route_id: int, stage: str) -> bool:
        return (route_id, stage) in self._labels

    def request(self, route_id: int, stage: str, status: int, seconds: float) -> None:
        key = (route_id, stage, status)
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1
        hist = self._latency.get((route_id, stage))
        if hist is None:
            hist = self._latency[(route_id, stage)] = Histogram()
        hist.observe(seconds)

    def integration(self, route_id: int, stage: str, seconds: float) -> None:
        hist = self._integration.get((route_id, stage))
        if hist is None:
            hist = self._integration[(route_id, stage)] = Histogram()
        hist.observe(seconds)

    def management_call(self, method: str, status: int) -> None:
        """One ``@connections`` call answered with ``status``."""
        key = (method, status)
        self._management[key] = self._management.get(key, 0) + 1

    # Scrape time ----------------------------------------------------------------------------------

    def requests(self) -> Iterator[tuple[RouteLabels, int, int]]:
        """``(labels, status, count)`` for every route and status seen."""
        for (route_id, stage, status), count in list(self._counts.items()):
            yield self._labels.get((route_id, stage), _UNMATCHED), status, count

    def latencies(self) -> Iterator[tuple[RouteLabels, Histogram]]:
        for key, hist in list(self._latency.items()):
            yield self._labels.get(key, _UNMATCHED), hist

    def management_calls(self) -> list[tuple[str, int, int]]:
        """``(method, status, count)`` of the ``@connections`` calls answered so far."""
        return [(method, status, count) for (method, status), count in list(self._management.items())]

    def integration_latencies(self) -> Iterator[tuple[RouteLabels, Histogram]]:
        for key, hist in list(self._integration.items()):
            yield self._labels.get(key, _UNMATCHED), hist
