"""The ``portway`` command: ``serve`` a definition, ``validate`` one, manage a running gateway.

    portway serve CONFIG [--host H] [--port P] [--redis-url URL | --state-file PATH]
                         [--tls-cert F --tls-key F] [--stage S]
    portway validate CONFIG [--stage S]
    portway keys|plans|usage ...  (the admin API of a running gateway: server/admin/commands.py)

CONFIG is a native ``portway.yaml`` or a Serverless Framework v3 ``serverless.yml`` (detected).
``--redis-url`` (or ``PORTWAY_REDIS_URL``) selects Redis; otherwise the embedded store is used,
and ``--state-file`` (or ``PORTWAY_STATE_FILE``) keeps its quota and usage counters and API
keys across restarts (ignored with Redis, which persists by itself).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from routes.integrations.python_inprocess import shutdown_handler_executor
from server.admin.commands import COMMANDS as ADMIN_COMMANDS
from server.admin.commands import add_parsers as add_admin_parsers
from server.admin.commands import run as run_admin
from server.app import create_app
from server.auth.iam import MissingSecret, missing_secrets
from server.config.errors import ConfigError
from server.config.load import load_config
from server.config.model import DEFAULT_STAGE, ApiKind, GatewayConfig
from server.store.base import StoreError

__all__ = ["main"]

log = logging.getLogger("portway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portway", description="Self-hosted API gateway (AWS API Gateway).")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a gateway process")
    serve.add_argument("config", type=Path)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--redis-url", default=os.environ.get("PORTWAY_REDIS_URL"))
    serve.add_argument(
        "--state-file",
        type=Path,
        default=os.environ.get("PORTWAY_STATE_FILE") or None,
        help="embedded store: keep quota/usage counters and API keys in this file across restarts",
    )
    serve.add_argument("--tls-cert", type=Path)
    serve.add_argument("--tls-key", type=Path)
    serve.add_argument("--stage", help="serverless.yml: override provider.stage")
    serve.add_argument("--log-level", default=os.environ.get("PORTWAY_LOG_LEVEL", "INFO"))
    validate = sub.add_parser("validate", help="check a definition and print every error")
    validate.add_argument("config", type=Path)
    validate.add_argument("--stage")
    add_admin_parsers(sub)
    return parser


def _load(path: Path, stage: str | None) -> GatewayConfig | None:
    try:
        return load_config(path, stage=stage)
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"{path}: {issue.location}: {issue.message}", file=sys.stderr)
        print(f"{path}: {len(exc.issues)} error(s)", file=sys.stderr)
        return None


def _route_lines(config: GatewayConfig, base_url: str) -> list[str]:
    lines = []
    for api in config.apis:
        for stage in api.stages:
            prefix = "" if stage.name == DEFAULT_STAGE else f"/{stage.name}"
            if api.base_path:
                prefix += "/" + api.base_path.strip("/")
            if api.kind is ApiKind.WEBSOCKET:
                lines.append(f"  WS      {base_url.replace('http', 'ws', 1)}{prefix}  ({api.name})")
                continue
            for route in api.routes:
                path = "/*" if route.path == "$default" else route.path
                lines.append(f"  {route.method:<7} {base_url}{prefix}{path}  ({api.name})")
    return lines


async def _serve(args: argparse.Namespace, config: GatewayConfig) -> None:
    ssl_context: ssl.SSLContext | None = None
    if args.tls_cert:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(str(args.tls_cert), str(args.tls_key) if args.tls_key else None)
    app = create_app(config, redis_url=args.redis_url, state_path=args.state_file)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=10)
    await runner.setup()
    # Start-up objects (config, compiled routes, modules) never die: move them out of the
    # collector's way, and collect the young generation less often. Requests create no cyclic
    # garbage (checked under load), and the default threshold cost ~5-7 us per proxied request.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 1000)
    site = web.TCPSite(runner, args.host, args.port, ssl_context=ssl_context, backlog=1024)
    await site.start()
    scheme = "https" if ssl_context else "http"
    # --port 0 binds a free port: report the real one.
    port = runner.addresses[0][1] if runner.addresses else args.port
    base_url = f"{scheme}://{args.host}:{port}"
    if args.redis_url:
        store = "redis " + args.redis_url
    else:
        store = "embedded store" + (f", state {args.state_file}" if args.state_file else "")
    print(f"Portway listening on {base_url} ({store})", flush=True)
    for line in _route_lines(config, base_url):
        print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("Portway shutting down", flush=True)
        await runner.cleanup()
        shutdown_handler_executor()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ADMIN_COMMANDS:
        return run_admin(args)
    if args.command == "validate":
        config = _load(args.config, args.stage)
        if config is None:
            return 1
        routes = sum(len(api.routes) for api in config.apis)
        for warning in [*config.warnings, *missing_secrets(config, os.environ)]:
            print(f"{args.config}: warning: {warning}", file=sys.stderr)
        print(f"{args.config}: OK ({len(config.apis)} API(s), {routes} route(s))")
        return 0
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.tls_key and not args.tls_cert:
        print("--tls-key needs --tls-cert", file=sys.stderr)
        return 2
    if args.redis_url and args.state_file:
        log.warning("--state-file (PORTWAY_STATE_FILE) is ignored with --redis-url: Redis persists by itself")
        args.state_file = None
    config = _load(args.config, args.stage)
    if config is None:
        return 1
    for warning in config.warnings:
        log.warning("%s: %s", args.config, warning)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep asyncio as a fallback
        run = asyncio.run
    else:
        run = uvloop.run
    try:
        run(_serve(args, config))
    except (StoreError, MissingSecret) as exc:  # a corrupt --state-file, an unset secret: no traceback
        print(f"portway: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
