"""Per-route request counters and latency histograms, as plain ints (pure: no I/O, no clock).

The pipeline finds the :class:`RouteSeries` of a request's route and stage with one dict lookup
keyed by a plain int (:func:`series_key` of the route and stage objects, which live as long as the
app), then bumps a few integers: no lock, no label formatting, no tuple, no ``prometheus_client``
object on the hot path. Labels (API, stage, route key)
are resolved when ``/@metrics`` is scraped (server/metrics.py).

Histogram buckets are stored non-cumulative (one increment per observation) and made cumulative
at scrape time, as Prometheus wants them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["LATENCY_BOUNDS_S", "Histogram", "RequestMetrics", "RouteLabels", "RouteSeries", "series_key"]

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


class RouteSeries:
    """One route on one stage: answers by status, gateway and integration latency."""

    __slots__ = ("labels", "statuses", "latency", "integration")

    def __init__(self, labels: RouteLabels) -> None:
        self.labels = labels
        self.statuses: dict[int, int] = {}
        self.latency = Histogram()
        self.integration = Histogram()

    def answered(self, status: int, seconds: float) -> None:
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        self.latency.observe(seconds)


def series_key(route_id: int, stage_id: int) -> int:
    """One int for a (route object, stage object) pair: ids are addresses below 2**64, so the
    pair is unique and, unlike a tuple, allocates nothing the garbage collector tracks (a
    tuple per request made gen-0 collections more frequent: measured in bench/RESULTS.md)."""
    return (route_id << 64) | stage_id


class RequestMetrics:
    """Requests by API/stage/route/status, gateway and integration latency per API/stage/route."""

    __slots__ = ("_series", "unmatched", "_management")

    def __init__(self) -> None:
        self._series: dict[int, RouteSeries] = {}
        self.unmatched = RouteSeries(_UNMATCHED)  # requests no route matched
        self._management: dict[tuple[str, int], int] = {}

    def series(self, key: int) -> RouteSeries | None:
        return self._series.get(key)

    def add_series(self, key: int, labels: RouteLabels) -> RouteSeries:
        """Name a route once (the first time it is seen)."""
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = RouteSeries(labels)
        return found

    def management_call(self, method: str, status: int) -> None:
        """One ``@connections`` call answered with ``status``."""
        key = (method, status)
        self._management[key] = self._management.get(key, 0) + 1

    # Scrape time ----------------------------------------------------------------------------------

    def _all(self) -> list[RouteSeries]:
        return [self.unmatched, *list(self._series.values())]

    def requests(self) -> Iterator[tuple[RouteLabels, int, int]]:
        """``(labels, status, count)`` for every route and status seen."""
        for series in self._all():
            for status, count in list(series.statuses.items()):
                yield series.labels, status, count

    def latencies(self) -> Iterator[tuple[RouteLabels, Histogram]]:
        for series in self._all():
            if series.statuses:
                yield series.labels, series.latency

    def management_calls(self) -> list[tuple[str, int, int]]:
        """``(method, status, count)`` of the ``@connections`` calls answered so far."""
        return [(method, status, count) for (method, status), count in list(self._management.items())]

    def integration_latencies(self) -> Iterator[tuple[RouteLabels, Histogram]]:
        for series in self._all():
            if series.integration.counts != _EMPTY:
                yield series.labels, series.integration


_EMPTY = [0] * (len(LATENCY_BOUNDS_S) + 1)
