"""The ``portway`` command: ``serve`` a definition, ``validate`` one, manage a running gateway.

    portway serve CONFIG [--host H] [--port P] [--redis-url URL | --state-file PATH]
                         [--tls-cert F --tls-key F | --tls self-signed] [--stage S]
                         [--quiet] [--pass-env NAME] [--workers N] [--bindings F]
                         [client limits: docs/operations.md]
    portway validate CONFIG [--stage S] [--strict] [--bindings F]
    portway export CONFIG [--api NAME] [--output FILE]   (OpenAPI 3 with x-amazon-apigateway-*)
    portway cluster CONFIG [--nodes N] [--port P]  (Redis, N nodes, nginx on loopback: cluster_cmd.py)
    portway keys|plans|usage ...  (the admin API of a running gateway: server/admin/commands.py)

CONFIG is a native ``portway.yaml``, a Serverless Framework v3 ``serverless.yml`` or an OpenAPI 3 /
Swagger 2 document with API Gateway's extensions (detected; ``--bindings`` maps its Lambda functions
and backends to local ones).
``--redis-url`` (or ``PORTWAY_REDIS_URL``) selects Redis; otherwise the embedded store is used,
and ``--state-file`` (or ``PORTWAY_STATE_FILE``) keeps its quota and usage counters and API
keys across restarts (ignored with Redis, which persists by itself). ``--tls self-signed`` serves
https/wss with a local CA's certificate (server/local_tls.py) that handler workers trust.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from aiohttp import web

from routes.integrations.lambda_env import pass_env_names
from routes.integrations.python_deps import DependencyError
from routes.integrations.python_worker_process import TLS_TRUST_VARIABLE
from routes.integrations.python_workers import WorkerPoolInvoker
from server.access_format import AccessFormat, compile_format
from server.access_log import AccessLog
from server.admin.commands import COMMANDS as ADMIN_COMMANDS
from server.admin.commands import add_parsers as add_admin_parsers
from server.admin.commands import run as run_admin
from server.admin_site import start_admin_site
from server.app import INVOKERS, create_app
from server.auth.iam import MissingSecret, missing_secrets
from server.config.errors import ConfigError
from server.config.export import export_openapi
from server.config.load import load_config
from server.config.model import DEFAULT_STAGE, ApiKind, GatewayConfig
from server.console import setup_console
from server.functions_cli import COMMANDS as FUNCTION_COMMANDS
from server.functions_cli import add_parsers as add_function_parsers
from server.functions_cli import run as run_functions
from server.health_http import LIFECYCLE
from server.http_server import GatewayRunner, raise_fd_limit
from server.limits import DEFAULT_LIMITS, ServerLimits
from server.store.base import StoreError
from server.supervisor import Supervisor, WorkerSpec, reserve_port

__all__ = ["main"]

log = logging.getLogger("portway")


_BINDINGS_HELP = "OpenAPI/SAM/CloudFormation: local handlers and backends for its functions and URLs"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portway", description="Self-hosted API gateway (AWS API Gateway).")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a gateway process")
    serve.add_argument("config", type=Path)
    # PORTWAY_HOST/PORTWAY_PORT: the Docker image listens on 0.0.0.0 and its HEALTHCHECK reads the port.
    serve.add_argument("--host", default=os.environ.get("PORTWAY_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=os.environ.get("PORTWAY_PORT", "3000"))
    serve.add_argument("--redis-url", default=os.environ.get("PORTWAY_REDIS_URL"))
    serve.add_argument(
        "--state-file",
        type=Path,
        default=os.environ.get("PORTWAY_STATE_FILE") or None,
        help="embedded store: keep quota/usage counters and API keys in this file across restarts",
    )
    serve.add_argument("--tls-cert", type=Path)
    serve.add_argument("--tls-key", type=Path)
    serve.add_argument(
        "--tls",
        choices=["self-signed"],
        help="serve https/wss with a local CA's certificate for localhost (kept in $PORTWAY_TLS_DIR, "
        "else ~/.cache/portway/tls); handler workers get AWS_CA_BUNDLE trusting it",
    )
    serve.add_argument("--stage", help="serverless.yml: override provider.stage")
    serve.add_argument("--bindings", type=Path, help=_BINDINGS_HELP)
    serve.add_argument("--log-level", default=os.environ.get("PORTWAY_LOG_LEVEL", "INFO"))
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("PORTWAY_WORKERS", "1")),
        metavar="N",
        help="gateway processes sharing the port (SO_REUSEPORT) under a supervisor; N > 1 needs "
        "--redis-url (default 1; docs/operations.md, 'All cores')",
    )
    serve.add_argument(
        "--admin-port",
        type=int,
        default=int(os.environ["PORTWAY_ADMIN_PORT"]) if os.environ.get("PORTWAY_ADMIN_PORT") else None,
        metavar="P",
        help="serve /@metrics on this port only, not on the API's (with --workers N: worker i on P+i)",
    )
    serve.add_argument("--admin-host", default="127.0.0.1", help="address of the admin listener")
    # A supervisor's worker: listen with SO_REUSEPORT, then write one byte on this fd.
    serve.add_argument("--worker-ready-fd", type=int, help=argparse.SUPPRESS)
    limits = serve.add_argument_group("client limits (docs/operations.md, 'Client limits')")
    d = DEFAULT_LIMITS
    limits.add_argument(
        "--header-timeout",
        type=float,
        default=d.header_timeout_s,
        metavar="S",
        help=f"seconds to receive a request line and headers (default {d.header_timeout_s:g})",
    )
    limits.add_argument(
        "--body-timeout",
        type=float,
        default=d.body_timeout_s,
        metavar="S",
        help=f"seconds to receive a request body (default {d.body_timeout_s:g})",
    )
    limits.add_argument(
        "--keepalive-timeout",
        type=float,
        default=d.keepalive_timeout_s,
        metavar="S",
        help=f"seconds an idle keep-alive connection stays open (default {d.keepalive_timeout_s:g})",
    )
    limits.add_argument(
        "--max-header-bytes",
        type=int,
        default=d.max_header_bytes,
        metavar="N",
        help=f"request line + header values, bytes (default {d.max_header_bytes}, as AWS)",
    )
    limits.add_argument(
        "--max-body-bytes-in-flight",
        type=int,
        default=d.max_body_bytes_in_flight,
        metavar="N",
        help="bytes of request bodies held at once by this process; beyond: 503 (default 256 MiB)",
    )
    limits.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="on SIGTERM, seconds in-flight requests get before the process exits (default 10)",
    )
    limits.add_argument(
        "--drain-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="on SIGTERM, seconds to keep serving with /@ready answering 503 before closing the "
        "listener, so load balancers stop sending first (default 0; a second signal ends it)",
    )
    serve.add_argument(
        "--reload",
        action="store_true",
        help="dev loop: restart a function's workers when a *.py under its task root changes; "
        "re-validate the definition when it changes (docs/integrations.md, 'Reload')",
    )
    serve.add_argument(
        "--quiet", action="store_true", help="no access lines (one per request and WebSocket event)"
    )
    serve.add_argument(
        "--access-log-format",
        type=_access_format,
        default=os.environ.get("PORTWAY_ACCESS_LOG_FORMAT"),
        metavar="FORMAT",
        help="REST/HTTP access lines in AWS's accessLogSettings.format syntax, e.g. "
        '\'{"requestId":"$context.requestId","status":"$context.status"}\' (docs/operations.md)',
    )
    serve.add_argument(
        "--access-log", type=Path, metavar="FILE", help="append the access lines to FILE instead of stderr"
    )
    serve.add_argument(
        "--pass-env",
        action="append",
        default=[],
        metavar="NAME",
        help="also give handler workers this variable of the gateway's environment (repeatable; "
        "PORTWAY_PASS_ENV=A,B too). AWS credential/endpoint variables always pass; PORTWAY_* never do",
    )
    add_function_parsers(sub)
    validate = sub.add_parser("validate", help="check a definition and print every error and warning")
    validate.add_argument("config", type=Path)
    validate.add_argument("--stage")
    validate.add_argument("--bindings", type=Path, help=_BINDINGS_HELP)
    validate.add_argument(
        "--strict", action="store_true", help="exit non-zero on warnings too (a handler not found, ...)"
    )
    export = sub.add_parser(
        "export", help="write an API of a definition as OpenAPI 3 with API Gateway's extensions"
    )
    export.add_argument("config", type=Path)
    export.add_argument("--stage")
    export.add_argument("--bindings", type=Path, help=_BINDINGS_HELP)
    export.add_argument("--api", help="the API's name, when the definition has several")
    export.add_argument("--output", "-o", type=Path, help="the file to write (default: standard output)")
    add_admin_parsers(sub)
    from server.cluster_cmd import add_parser as add_cluster_parser  # its own module: portway cluster

    add_cluster_parser(sub)
    return parser


def _load(path: Path, stage: str | None, bindings: Path | None = None) -> GatewayConfig | None:
    try:
        return load_config(path, stage=stage, bindings=bindings)
    except ConfigError as exc:
        for issue in exc.issues:
            where = f"{issue.location}: " if issue.location else ""
            print(f"{path}: {where}{issue.message}", file=sys.stderr)
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


class ListenError(Exception):
    """The listening socket could not be opened (a port in use): one line for the user."""


async def _serve(args: argparse.Namespace, config: GatewayConfig) -> None:
    ssl_context: ssl.SSLContext | None = None
    if args.tls_cert:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(str(args.tls_cert), str(args.tls_key) if args.tls_key else None)
    limits = ServerLimits(
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        keepalive_timeout_s=args.keepalive_timeout,
        max_header_bytes=args.max_header_bytes,
        max_body_bytes_in_flight=args.max_body_bytes_in_flight,
    )
    fd_limit = raise_fd_limit()
    app = create_app(
        config,
        redis_url=args.redis_url,
        state_path=args.state_file,
        limits=limits,
        pass_env=args.pass_env_names,
        access_log=None if args.quiet else _access_log(args),
        # Off only to measure what the per-route counters and histograms cost (bench/).
        request_metrics=os.environ.get("PORTWAY_REQUEST_METRICS", "1") != "0",
        metrics_on_api=args.admin_port is None,
    )
    runner = GatewayRunner(
        app,
        limits=limits,
        fd_limit=fd_limit,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=args.drain_timeout,
    )
    await runner.setup()
    # Start-up objects (config, compiled routes, modules) never die: move them out of the
    # collector's way, and collect the young generation less often. Requests create no cyclic
    # garbage (checked under load), and the default threshold cost ~5-7 us per proxied request.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 1000)
    worker = args.worker_ready_fd is not None
    site = web.TCPSite(
        runner, args.host, args.port, ssl_context=ssl_context, backlog=1024, reuse_port=worker or None
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        # errno's own words: the exception's text differs between asyncio and uvloop; a name that
        # does not resolve (socket.gaierror) has a negative errno and its own strerror.
        errno = exc.errno or 0
        reason = (os.strerror(errno) if errno > 0 else exc.strerror or str(exc)).lower()
        raise ListenError(f"cannot listen on {args.host}:{args.port}: {reason}") from None
    admin: web.AppRunner | None = None
    admin_line = ""
    if args.admin_port is not None:
        # Workers of one supervisor each get their own port: metrics are per process.
        admin_port = args.admin_port + int(os.environ.get("PORTWAY_WORKER", "0")) if args.admin_port else 0
        try:
            admin = await start_admin_site(app, args.admin_host, admin_port)
        except OSError as exc:
            await runner.cleanup()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(f"cannot listen on {args.admin_host}:{admin_port}: {reason.lower()}") from None
        bound = admin.addresses[0][1] if admin.addresses else admin_port
        admin_line = f"Portway metrics on http://{args.admin_host}:{bound}/@metrics"
    if worker:
        os.write(args.worker_ready_fd, b"1")  # the supervisor prints the banner
    scheme = "https" if ssl_context else "http"
    # --port 0 binds a free port: report the real one.
    port = runner.addresses[0][1] if runner.addresses else args.port
    base_url = f"{scheme}://{args.host}:{port}"
    if not worker:
        _banner(base_url, args, config)
    if admin is not None:
        print(admin_line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if worker:  # a terminal's hangup reaches the whole group: the supervisor handles it
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        loop.add_reader(args.worker_ready_fd, _watch_supervisor, args.worker_ready_fd, stop)
    watcher = _start_reload(args, app) if args.reload or config.reload_handler else None
    try:
        await stop.wait()
        await _drain_delay(app, stop, args.drain_delay)
    finally:
        print("Portway shutting down", flush=True)
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        if admin is not None:
            await admin.cleanup()
        try:
            # aiohttp cancels requests still running after the drain; the margin is for the
            # resources' own bounded closes (sockets' $disconnect, workers, store).
            await asyncio.wait_for(runner.cleanup(), args.drain_timeout + _CLOSE_MARGIN_S)
        except TimeoutError:
            log.warning("shutdown took longer than the drain timeout: exiting anyway")
        invokers = app.get(INVOKERS)
        if invokers is not None:
            invokers.drop_queued()
        _exit_without_hung_threads(invokers.threads_alive() if invokers is not None else 0)


_CLOSE_MARGIN_S = 5.0


def _start_reload(args: argparse.Namespace, app: web.Application) -> asyncio.Task[None]:
    from server.reload import watch  # only --reload pays for it

    invokers = app[INVOKERS]

    def pools() -> list[WorkerPoolInvoker]:
        return [inv for inv in invokers.all() if isinstance(inv, WorkerPoolInvoker)]

    print("Portway --reload: watching the functions' *.py and the definition", flush=True)
    return asyncio.create_task(watch(pools, args.config.absolute(), stage=args.stage, bindings=args.bindings))


async def _drain_delay(app: web.Application, stop: asyncio.Event, delay_s: float) -> None:
    """Not ready from the first signal on; with ``--drain-delay`` keep serving that long (load
    balancers and Kubernetes endpoints take a few probe periods to stop routing here)."""
    app[LIFECYCLE].draining = True
    if delay_s <= 0:
        return
    print(f"Portway draining: /@ready answers 503, closing in {delay_s:g} s", flush=True)
    stop.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay_s)


def _watch_supervisor(fd: int, stop: asyncio.Event) -> None:
    """A worker's line to its supervisor turned readable: EOF means the supervisor is gone
    (even killed with SIGKILL), so drain and exit like on SIGTERM."""
    try:
        data = os.read(fd, 64)
    except OSError:
        data = b""
    if not data:
        asyncio.get_running_loop().remove_reader(fd)
        log.warning("the supervisor is gone: stopping")
        stop.set()


def _banner(base_url: str, args: argparse.Namespace, config: GatewayConfig, workers: int = 1) -> None:
    if args.redis_url:
        store = "redis " + args.redis_url
    else:
        store = "embedded store" + (f", state {args.state_file}" if args.state_file else "")
    if workers > 1:
        store += f", {workers} workers"
    print(f"Portway listening on {base_url} ({store})", flush=True)
    for line in _route_lines(config, base_url):
        print(line, flush=True)


def _supervise(args: argparse.Namespace, config: GatewayConfig, argv: Sequence[str]) -> int:
    """``--workers N`` (N > 1): reserve the port, start N ``portway serve`` workers on it."""
    try:
        reserved = reserve_port(args.host, args.port)
    except OSError as exc:
        print(
            f"portway: cannot listen on {args.host}:{args.port}: {os.strerror(exc.errno or 0).lower()}",
            file=sys.stderr,
        )
        return 1
    port = reserved.getsockname()[1]

    def worker_argv(index: int, ready_fd: int) -> list[str]:
        # Later options win in argparse: the resolved port, and the readiness pipe.
        return [
            sys.executable,
            "-m",
            "server",
            *argv,
            "--port",
            str(port),
            "--worker-ready-fd",
            str(ready_fd),
        ]

    spec = WorkerSpec(
        argv=worker_argv,
        count=args.workers,
        start_timeout_s=_WORKER_START_TIMEOUT_S,
        stop_timeout_s=args.drain_timeout + _CLOSE_MARGIN_S,
    )
    supervisor = Supervisor(spec, check=lambda: _load(args.config, args.stage) is not None)
    supervisor.install_signals()
    try:
        if not supervisor.start():
            print("portway: a worker did not start (its output is above)", file=sys.stderr)
            return 1
        scheme = "https" if args.tls_cert else "http"
        _banner(f"{scheme}://{args.host}:{port}", args, config, workers=args.workers)
        supervisor.run()
        print("Portway stopped", flush=True)
        return 0
    finally:
        reserved.close()


# A worker installs its functions' requirements before it listens (cached after the first).
_WORKER_START_TIMEOUT_S = 600.0


def _exit_without_hung_threads(alive: int) -> None:
    """Python joins thread-pool threads at exit, and a hung in-process sync handler never
    returns (SIGTERM used to leave the process alive for minutes): exit without them."""
    if alive:
        log.warning("exiting with %d in-process handler thread(s) still running", alive)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _use_local_tls(args: argparse.Namespace) -> None:
    """``--tls self-signed``: serve the local CA's certificate, and have handler workers trust it."""
    from server.local_tls import SERVER_NAMES, default_tls_dir, ensure_local_tls  # cryptography: when asked

    local = ensure_local_tls(default_tls_dir(), datetime.datetime.now(datetime.UTC))
    args.tls_cert, args.tls_key = local.cert, local.key
    os.environ[TLS_TRUST_VARIABLE] = str(local.trust)
    if args.host not in SERVER_NAMES:
        log.warning(
            "--tls self-signed: the certificate names localhost, 127.0.0.1 and ::1 only; clients "
            "reaching %s by another name fail to verify it (use --tls-cert/--tls-key)",
            args.host,
        )
    print(
        f"TLS: certificate for localhost, 127.0.0.1 and ::1 from the local CA {local.ca} "
        f"(clients trust it with that file; handlers get AWS_CA_BUNDLE={local.trust})",
        flush=True,
    )


def _validate(args: argparse.Namespace) -> int:
    config = _load(args.config, args.stage, args.bindings)
    if config is None:
        return 1
    routes = sum(len(api.routes) for api in config.apis)
    warnings = [*config.warnings, *missing_secrets(config, os.environ)]
    if routes == 0 and not warnings:  # serverless.yml says why itself ("nothing to serve")
        warnings.append("(document): no routes: nothing to serve")
    for warning in warnings:
        print(f"{args.config}: warning: {warning}", file=sys.stderr)
    counts = f"{len(config.apis)} API(s), {routes} route(s)"
    if warnings and args.strict:
        print(
            f"{args.config}: {len(warnings)} warning(s), an error with --strict ({counts})", file=sys.stderr
        )
        return 1
    noted = f", {len(warnings)} warning(s)" if warnings else ""
    print(f"{args.config}: OK ({counts}{noted})")
    return 0


def _export(args: argparse.Namespace) -> int:
    """``portway export``: the document on stdout or in ``--output``; what it leaves out on stderr."""
    config = _load(args.config, args.stage, args.bindings)
    if config is None:
        return 1
    apis = [api for api in config.apis if args.api in (None, api.name)]
    if len(apis) != 1:
        names = ", ".join(repr(api.name) for api in config.apis)
        what = f"no API named {args.api!r}" if args.api else "several APIs: choose one with --api"
        print(f"{args.config}: {what} ({names})", file=sys.stderr)
        return 2
    out_dir = (args.output.parent if args.output else Path.cwd()).resolve()
    try:
        document, notes = export_openapi(config, apis[0], out_dir)
    except ValueError as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 2
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    for note in notes:
        print(f"{args.config}: note: {note}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.command in ADMIN_COMMANDS:
        return run_admin(args)
    if args.command == "validate":
        return _validate(args)
    if args.command == "cluster":
        from server.cluster_cmd import run as run_cluster

        return run_cluster(args)
    if args.command in FUNCTION_COMMANDS:
        return run_functions(args, _load)
    if args.command == "export":
        return _export(args)
    setup_console(args.log_level)
    if args.tls_key and not args.tls_cert:
        print("--tls-key needs --tls-cert", file=sys.stderr)
        return 2
    if args.tls and args.tls_cert:
        print("--tls self-signed and --tls-cert are alternatives: give one", file=sys.stderr)
        return 2
    try:
        args.pass_env_names = pass_env_names(args.pass_env, os.environ.get("PORTWAY_PASS_ENV"))
    except ValueError as exc:
        print(f"--pass-env: {exc}", file=sys.stderr)
        return 2
    if args.tls:
        try:
            _use_local_tls(args)
        except OSError as exc:  # e.g. an unwritable PORTWAY_TLS_DIR: one line, not a traceback
            print(f"portway: --tls self-signed: {exc}", file=sys.stderr)
            return 1
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1 and args.worker_ready_fd is None and not args.redis_url:
        print(
            "--workers N > 1 needs --redis-url: workers share connections, throttle buckets, quotas "
            "and API keys only through Redis (with the embedded store each would have its own)",
            file=sys.stderr,
        )
        return 2
    if args.redis_url and args.state_file:
        log.warning("--state-file (PORTWAY_STATE_FILE) is ignored with --redis-url: Redis persists by itself")
        args.state_file = None
    config = _load(args.config, args.stage, args.bindings)
    if config is None:
        return 1
    for warning in config.warnings:
        log.warning("%s: %s", args.config, warning)
    if args.workers > 1 and args.worker_ready_fd is None:
        return _supervise(args, config, argv)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep asyncio as a fallback
        run = asyncio.run
    else:
        run = uvloop.run
    try:
        run(_serve(args, config))
    except (StoreError, ListenError, DependencyError, MissingSecret) as exc:  # one line, no traceback
        print(f"portway: {exc}", file=sys.stderr)
        return 1
    return 0


def _access_format(text: str | AccessFormat | None) -> AccessFormat | None:
    if text is None or isinstance(text, AccessFormat):
        return text
    try:
        return compile_format(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _access_log(args: argparse.Namespace) -> AccessLog:
    line_format = _access_format(args.access_log_format)
    if args.access_log is None:
        return AccessLog(line_format=line_format)
    # Line-buffered append: each worker's lines land whole in the shared file; open for the
    # process's life (closed at exit).
    stream = args.access_log.open("a", buffering=1, encoding="utf-8")
    return AccessLog(stream, line_format=line_format)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
