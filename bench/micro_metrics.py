"""What the per-route metrics add to one request, without network noise: ``Gateway.handle`` of a
MOCK route (the cheapest request) with and without :class:`~server.request_metrics.RequestMetrics`.

    .venv/bin/python bench/micro_metrics.py [--number 20000]

Times ``number`` awaited ``Gateway.handle`` calls in one event-loop run, best of 7 (so other
tenants' load inflates neither side), alternating on and off; prints microseconds per request.
Compare the difference with the server CPU per request of a real request (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from routes.dispatch import ApiDispatcher  # noqa: E402
from routes.integrations.factory import build_integrations  # noqa: E402
from routes.integrations.http_client import HttpClientPool  # noqa: E402
from routes.integrations.python_handler import HandlerInvokers  # noqa: E402
from server.config.model import (  # noqa: E402
    ApiConfig,
    ApiKind,
    GatewayConfig,
    IntegrationConfig,
    IntegrationType,
    MockResponse,
    RouteConfig,
    StageConfig,
)
from server.messages import HttpRequest  # noqa: E402
from server.pipeline import Gateway, default_stages  # noqa: E402
from server.request_metrics import RequestMetrics  # noqa: E402


def config() -> GatewayConfig:
    mock = IntegrationConfig(type=IntegrationType.MOCK, mock=MockResponse(status=200, body='{"ok":true}'))
    api = ApiConfig(
        name="bench",
        id="benchapi01",
        kind=ApiKind.REST,
        stages=(StageConfig("dev"),),
        routes=(RouteConfig("GET", "/mock", mock),),
    )
    return GatewayConfig(apis=(api,), account_throttle=None)


def request() -> HttpRequest:
    return HttpRequest(
        method="GET",
        raw_path="/dev/mock",
        query_string="",
        headers=(("Host", "127.0.0.1:8080"),),
        body=b"",
        source_ip="127.0.0.1",
        host="127.0.0.1:8080",
        scheme="http",
        protocol="HTTP/1.1",
        content_length=None,
    )


async def main_async(number: int, repeat: int) -> dict[str, float]:
    cfg = config()
    async with aiohttp.ClientSession() as session:
        integrations = build_integrations(
            cfg,
            session=session,
            client=HttpClientPool(),
            invokers=HandlerInvokers(region="us-east-1", account_id="1"),
        )
        dispatcher = ApiDispatcher(cfg)
        gateways = {}
        for name, metrics in (("on", RequestMetrics()), ("off", None)):
            gateways[name] = Gateway(
                default_stages(dispatcher, cfg, integrations, metrics=metrics), metrics=metrics
            )
        best = {name: float("inf") for name in gateways}
        for _ in range(repeat):
            for name, gateway in gateways.items():
                handle = gateway.handle
                start = time.perf_counter()
                for _ in range(number):
                    response = await handle(request())
                elapsed = time.perf_counter() - start
                assert response.status == 200, response.body
                best[name] = min(best[name], elapsed / number * 1e6)
        return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    best = asyncio.run(main_async(args.number, args.repeat))
    print(f"Gateway.handle, MOCK route: metrics on {best['on']:.2f} us, off {best['off']:.2f} us, ")
    print(f"  cost {best['on'] - best['off']:.2f} us per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
