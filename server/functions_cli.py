"""``portway invoke`` and ``portway events``: run one function, print sample events.

    portway invoke FUNCTION [--config FILE] [--data JSON | --path FILE] [--event-shape rest|http|ws]
    portway events [--config FILE] [--stage NAME]

``invoke`` is ``serverless invoke local``: the function runs once, in a worker process with the
environment, memory limit, timeout and code path it has when served, and its result is printed as
JSON on stdout (its logs go to stderr). Without ``--event-shape`` the event is the ``--data`` JSON
(or ``{}``) as given; with one, it is the event a request to the function's first route of that
kind would produce (:mod:`server.sample_events`), the data as its body. A function error prints
Lambda's error payload and exits 1. FUNCTION is the function's key in serverless.yml (``hello``),
its full name (``service-dev-hello``) or a native route's ``function`` name.

``events`` prints, for every route, the event its integration gets for a sample request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from routes.integrations.base import FunctionError, InvokeFailure
from routes.integrations.python_deps import DependencyError, cache_dir
from routes.integrations.python_handler import HandlerInvokers, function_name_of
from server.config.model import ApiConfig, GatewayConfig, IntegrationType, Isolation, RouteConfig
from server.ids import new_request_uuid
from server.sample_events import SHAPES, SampleIds, sample_event, shape_of

__all__ = ["COMMANDS", "add_parsers", "run"]

COMMANDS = ("invoke", "events")
DEFAULT_CONFIGS = ("serverless.yml", "serverless.yaml", "portway.yaml", "portway.yml")


def add_parsers(sub: Any) -> None:
    invoke = sub.add_parser(
        "invoke", help="run one function once with an event (like serverless invoke local)"
    )
    invoke.add_argument(
        "function", help="serverless.yml function key, full function name or native function name"
    )
    invoke.add_argument("--config", type=Path, help="default: serverless.yml or portway.yaml here")
    invoke.add_argument("--stage")
    data = invoke.add_mutually_exclusive_group()
    data.add_argument("--data", "-d", help="the event (JSON), or the body with --event-shape")
    data.add_argument("--path", "-p", type=Path, help="a file holding what --data would")
    invoke.add_argument(
        "--event-shape", choices=sorted(SHAPES), help="wrap the data in the event of a rest/http/ws route"
    )
    events = sub.add_parser("events", help="print the sample event of every route")
    events.add_argument("--config", type=Path, help="default: serverless.yml or portway.yaml here")
    events.add_argument("--stage")


def run(args: argparse.Namespace, load: Any) -> int:
    """``load(path, stage)`` -> GatewayConfig | None (the CLI's loader, which prints errors)."""
    path = args.config or next((Path(name) for name in DEFAULT_CONFIGS if Path(name).exists()), None)
    if path is None:
        print(f"no --config given and none of {', '.join(DEFAULT_CONFIGS)} here", file=sys.stderr)
        return 2
    config = load(path, args.stage)
    if config is None:
        return 1
    if args.command == "events":
        print(json.dumps(all_events(config, args.stage), indent=2))
        return 0
    return _invoke(args, config)


def all_events(config: GatewayConfig, stage: str | None) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    return {
        f"{api.name} {route.route_key}": sample_event(config, api, route, now_ms=now_ms, stage=stage)
        for api in config.apis
        for route in api.routes
        if route.integration.type in (IntegrationType.PYTHON, IntegrationType.AWS_PROXY)
    }


def _function_routes(config: GatewayConfig, name: str) -> list[tuple[ApiConfig, RouteConfig]]:
    found = []
    for api in config.apis:
        for route in api.routes:
            integration = route.integration
            if integration.type is not IntegrationType.PYTHON:
                continue
            full = function_name_of(integration)
            if full == name or full.endswith(f"-{name}"):
                found.append((api, route))
    return found


def _invoke(args: argparse.Namespace, config: GatewayConfig) -> int:
    routes = _function_routes(config, args.function)
    if not routes:
        names = sorted(
            {function_name_of(r.integration) for a in config.apis for r in a.routes if r.integration.handler}
        )
        print(f"no function {args.function!r} (functions: {', '.join(names) or 'none'})", file=sys.stderr)
        return 2
    try:
        text = args.path.read_text() if args.path else args.data
    except OSError as exc:
        print(f"--path: {exc}", file=sys.stderr)
        return 2
    if args.event_shape:
        shaped = [(api, route) for api, route in routes if shape_of(api) == args.event_shape]
        if not shaped:
            print(f"function {args.function!r} has no {args.event_shape} route", file=sys.stderr)
            return 2
        api, route = shaped[0]
        request_id = new_request_uuid()
        event = sample_event(
            config,
            api,
            route,
            now_ms=int(time.time() * 1000),
            body=text,
            stage=args.stage,
            ids=SampleIds(request_id=request_id),
        )
    else:
        route = routes[0][1]
        try:
            event = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            print(f"the event is not JSON: {exc}", file=sys.stderr)
            return 2
        request_id = new_request_uuid()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    return asyncio.run(_run_once(config, route, event, request_id))


async def _run_once(config: GatewayConfig, route: RouteConfig, event: Any, request_id: str) -> int:
    integration = route.integration
    invokers = HandlerInvokers(region=config.region, account_id=config.account_id)
    try:
        if integration.isolation is Isolation.PROCESS:
            await invokers.prepare(config, cache_dir(config.source))
        invoker = invokers.get(integration)
        result = await invoker.invoke_event(
            event, request_id=request_id, timeout_s=integration.timeout_ms / 1000
        )
    except FunctionError as exc:
        error = {
            "errorMessage": exc.error_message,
            "errorType": exc.error_type,
            "stackTrace": exc.stack_trace,
        }
        print(json.dumps(error, indent=2))
        return 1
    except TimeoutError:
        print(f"Task timed out after {integration.timeout_ms / 1000:.2f} seconds", file=sys.stderr)
        return 1
    except (InvokeFailure, DependencyError) as exc:
        print(f"invoke failed: {exc}", file=sys.stderr)
        return 1
    finally:
        await invokers.close_all()
    print(json.dumps(result, indent=2))
    return 0
