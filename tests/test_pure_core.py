"""The pure core imports no I/O library, directly or transitively (style anchors, practice 1)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE_MODULES = [
    "server.errors",
    "server.messages",
    "server.health",
    "server.cluster_plan",
    "server.ids",
    "server.events",
    "server.proxy_response",
    "server.render",
    "server.pipeline",
    "server.request_metrics",
    "server.config.model",
    "routes.table",
    "routes.dispatch",
    "routes.integrations.lambda_proxy",
    "routes.integrations.mock",
    "routes.integrations.wsgi_adapter",
    "routes.selection",
    "connections.events",
    "connections.frames",
    "connections.core",
    "server.store.bucket",
    "server.throttle.admit",
    "server.throttle.quota",
    "server.throttle.levels",
    "server.keys.records",
    "server.config.route_keys",
    "server.config.cloudformation",
    "server.admin.shapes",
    "routes.integrations.http_wire",
    "server.store.spec_cache",
    "server.auth.base",
    "server.auth.policy",
    "server.auth.factory",
    "server.limits",
    "routes.dot_segments",
    "server.auth.sigv4",
    "server.auth.resource_policy",
    "server.auth.iam",
    "server.config.iam",
    "server.trace",
    "server.event_headers",
    "server.auth.lambda_input",
    "server.auth.lambda_output",
    "server.config.authorizer_rules",
    "server.gateway_responses",
    "server.validation",
    "server.cors",
    "server.transform.vtl",
    "server.transform.request",
    "server.transform.response",
    "server.transform.jsonpath",
    "server.transform.fastvtl",
    "server.transform.http_api",
    "server.config.export",
    "server.cache.policy",
    "server.cache.keys",
    "server.cache.entry",
]
FORBIDDEN = ("aiohttp", "redis", "aiobotocore", "botocore", "uvloop", "asyncio", "socket", "subprocess")


@pytest.mark.parametrize("module", PURE_MODULES)
def test_module_imports_no_io_library(module: str) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} pulls in {out.stdout.strip()}"
