"""Per-message cost of the pure-Python pieces Portway adds to one WebSocket echo (no network I/O).

    taskset -c 1 .venv/bin/python bench/micro_ws.py [--number 20000]

Builds the WebSocket benchmark's gateway pieces (``servers/portway_ws.py``'s config: ``$default``
with a route response to the in-process ``async def`` echo handler) and times, on uvloop, each step
``connections/websocket.py`` runs for one 79-byte text message, except aiohttp's own frame reading
and writing: route selection, ids, the MESSAGE event, the invoker (event copy, timeout scope,
context, call, result encoding), the proxy result (and, for ``max_inflight`` > 1, the task per
message). Best of 5, in
microseconds per message. Compare the total with the server CPU per round trip that
``bench_ws.py`` reports for Portway and for the raw aiohttp echo: the difference between those two
is what these steps (plus the heartbeat and frame guard) cost.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import sys
import time
import timeit
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent / "servers"))

from portway_ws import ws_bench_config

from connections.events import ConnectionInfo, message_event
from connections.frames import FrameScanner
from connections.integration import _as_result, build_route_integrations
from routes.integrations.lambda_context import LambdaContext, dumps
from routes.integrations.python_handler import HandlerInvokers
from routes.selection import compile_expression, select_route
from server.ids import clf_time, new_apigw_id, new_message_id

MESSAGE = '{"action":"message","data":"hello from the websocket benchmark client hello f"}'


def nothing_sync() -> None:
    return None


def best(fn: Callable[[], Any], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


async def abest(make: Callable[[], Awaitable[Any]], number: int) -> float:
    results = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(number):
            await make()
        results.append((time.perf_counter() - start) / number * 1e6)
    return min(results)


async def main_async(number: int) -> list[tuple[str, float, str]]:
    config = ws_bench_config()
    api = config.apis[0]
    invokers = HandlerInvokers(region=config.region, account_id=config.account_id)
    integrations = build_route_integrations(api, client=None, invokers=invokers)  # type: ignore[arg-type]
    integration = integrations["$default"]
    invoker = invokers.get(api.routes[0].integration)
    function = await invoker.load()  # type: ignore[attr-defined]
    expression = compile_expression(api.route_selection_expression)
    route_keys = frozenset({"$default"})
    info = ConnectionInfo(
        connection_id=new_apigw_id(),
        api_id=api.id,
        stage="dev",
        domain_name="127.0.0.1:8091",
        source_ip="127.0.0.1",
        connected_at_ms=int(time.time() * 1000),
        user_agent="portway-bench-ws-load",
    )
    now_ms = int(time.time() * 1000)
    event = message_event(
        info, route_key="$default", body=MESSAGE, message_id=new_apigw_id(), request_id="r", now_ms=now_ms
    )
    result_value = {"statusCode": 200, "body": MESSAGE}
    context_args = {
        "aws_request_id": "r",
        "function_name": "ws-bench-echo",
        "memory_limit_in_mb": 1024,
        "region": "us-east-1",
        "account_id": "123456789012",
        "deadline_ms": now_ms + 29000,
        "log_stream_name": "x",
    }
    frame = bytes([0x81, 0x80 | len(MESSAGE)]) + b"\x01\x02\x03\x04" + MESSAGE.encode()
    rows: list[tuple[str, float, str]] = []

    def row(name: str, us: float, where: str) -> None:
        rows.append((name, us, where))
        print(f"{us:8.2f} us  {name}  ({where})", flush=True)

    row(
        "select_route($request.body.action)",
        best(lambda: select_route(expression, MESSAGE, route_keys), number),
        "connections/websocket.py _read -> routes/selection.py select_route",
    )
    row("new_apigw_id() (urandom; 2 per message in _process)", best(new_apigw_id, number), "server/ids.py")
    row("new_message_id() (counter)", best(new_message_id, number), "server/ids.py")
    row("clf_time()", best(lambda: clf_time(now_ms), number), "server/ids.py clf_time")
    row(
        "message_event()",
        best(
            lambda: message_event(
                info, route_key="$default", body=MESSAGE, message_id="m", request_id="r", now_ms=now_ms
            ),
            number,
        ),
        "connections/events.py message_event",
    )
    row(
        "event copy: orjson.loads(orjson.dumps(event))",
        best(lambda: orjson.loads(orjson.dumps(event)), number),
        "routes/integrations/python_inprocess.py invoke_event",
    )
    row(
        "LambdaContext(...)",
        best(lambda: LambdaContext(**context_args), number),
        "routes/integrations/python_inprocess.py invoke_event",
    )
    row(
        "result copy: orjson.loads(dumps(result))",
        best(lambda: orjson.loads(dumps(result_value)), number),
        "routes/integrations/python_inprocess.py invoke_event",
    )
    row("_as_result(value)", best(lambda: _as_result(result_value), number), "connections/integration.py")
    scanner = FrameScanner(32 * 1024)
    row(
        "FrameScanner.scan(one 85-byte frame)",
        best(lambda: scanner.scan(frame), number),
        "connections/frames.py",
    )

    async def with_timeout() -> None:
        async with asyncio.timeout(29.0):  # noqa: ASYNC100 - the scope's own cost is measured
            pass

    row(
        "async with asyncio.timeout(29): (empty; replaced in 1b70b4c)", await abest(with_timeout, number), "-"
    )
    loop = asyncio.get_running_loop()

    def timer() -> None:
        loop.call_later(29.0, nothing_sync).cancel()

    row("loop.call_later(29, f).cancel() (per call)", best(timer, number), "python_inprocess.py invoke_event")
    row(
        "asyncio.current_task() (a getpid syscall)", best(asyncio.current_task, number), "python_inprocess.py"
    )

    async def call_handler() -> Any:
        call = functools.partial(function, event, None)
        result = call()
        return await result if inspect.isawaitable(result) else result

    row(
        "handler call (partial + isawaitable + await)",
        await abest(call_handler, number),
        "python_inprocess.py",
    )

    async def nothing() -> None:
        return None

    def done(task: asyncio.Task[None]) -> None:
        task.cancelled()

    async def task_per_message() -> None:
        task = asyncio.create_task(nothing())
        task.add_done_callback(done)
        await task

    row(
        "asyncio.create_task + done callback + run (max_inflight > 1 only)",
        await abest(task_per_message, number),
        "websocket.py _read",
    )
    row(
        "invoker.invoke_event(event) (copy, timeout, context, call, result copy)",
        await abest(lambda: invoker.invoke_event(event, request_id="r", timeout_s=29.0), number),
        "routes/integrations/python_inprocess.py",
    )
    row(
        "LambdaRouteIntegration.invoke(event) (+ _as_result)",
        await abest(lambda: integration.invoke(event, request_id="r"), number),
        "connections/integration.py",
    )

    async def process() -> None:
        # what WebSocketGateway._read + _process do for one message, minus aiohttp's receive/send
        key = select_route(expression, MESSAGE, route_keys)
        assert key is not None
        request_id = new_apigw_id()  # as connections/websocket.py _process does
        ev = message_event(
            info,
            route_key=key,
            body=MESSAGE,
            message_id=new_apigw_id(),
            request_id=request_id,
            now_ms=int(time.time() * 1000),
        )
        result = await integration.invoke(ev, request_id=request_id)
        assert result.body == MESSAGE

    row("whole per-message path (select .. result), inline", await abest(process, number), "sum")
    await invokers.close_all()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args(argv)
    if not 100 <= args.number <= 1_000_000:
        parser.error("--number must be in 100..1000000")
    uvloop.run(main_async(args.number))
    return 0


if __name__ == "__main__":
    sys.exit(main())
