"""deploy/grafana/portway.json: valid JSON, and every metric its panels query is one that
``GET /@metrics`` of a running app exposes (scraped, not a hand-kept list), so a renamed metric
breaks this test rather than a dashboard panel in production."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from server.app import create_app
from tests.server.test_metrics import config

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "portway.json"
METRIC = re.compile(r"\bportway_[a-z0-9_]+\b")
# The series a family of each type exposes (an empty family still has its HELP/TYPE lines).
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def expressions(node: Any) -> Iterator[str]:
    """Every PromQL ``expr`` and variable ``query`` in the dashboard."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "query", "definition") and isinstance(value, str):
                yield value
            else:
                yield from expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)


def exposed(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


async def test_dashboard_queries_only_exposed_metrics(aiohttp_client: Client) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "portway" and dashboard["panels"]
    queried = {name for expr in expressions(dashboard) for name in METRIC.findall(expr)}
    # The items the dashboard is for: requests, latency, WebSocket, throttling, store, pools.
    for wanted in (
        "portway_requests_total",
        "portway_request_duration_seconds_bucket",
        "portway_websocket_connections",
        "portway_websocket_messages_total",
        "portway_throttle_refused_total",
        "portway_store_admit_duration_seconds_bucket",
        "portway_handler_pool_workers",
    ):
        assert wanted in queried
    client = await aiohttp_client(create_app(config()))  # throttled: the store latency is exposed
    async with client.get("/dev/one") as response:
        await response.read()
    async with client.get("/@metrics") as response:
        assert response.status == 200
        names = exposed(await response.text())
    assert queried - names == set()
