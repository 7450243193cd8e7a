"""The admin listener (``portway serve --admin-port P``): ``GET /@metrics`` on its own address, so
the metrics need not be exposed with the API (later: the admin API and the dashboard).

It is a second aiohttp site in the same process, reading the gateway app's state; the gateway's own
listener then no longer answers ``/@metrics``. The caller policy is the same as on the API
listener (loopback and private networks, or ``PORTWAY_MANAGEMENT_NETWORKS``).
"""

from __future__ import annotations

from aiohttp import web

from server.app import metrics_response

__all__ = ["start_admin_site"]


async def start_admin_site(gateway: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve the admin paths of ``gateway`` on ``host:port``; the caller cleans the runner up.
    OSError when the address cannot be bound."""

    async def metrics(request: web.Request) -> web.Response:
        return metrics_response(gateway, request)

    admin = web.Application()
    admin.router.add_get("/@metrics", metrics)
    runner = web.AppRunner(admin, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner
