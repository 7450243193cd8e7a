"""Portway's WebSocket benchmark launcher with optional in-memory patches: what would each fix save?

    python bench/servers/portway_ws_experiments.py --port 8091 --patch deadline-sweep --patch fast-ids
    .venv/bin/python bench/bench_ws.py --figures a \\
        --portway-launcher bench/servers/portway_ws_experiments.py --portway-arg=--patch=all

Serves exactly what ``portway_ws.py`` serves, after monkeypatching the named hot spots found by
profiling the echo path (``bench/micro_ws.py``, py-spy). Nothing here changes the repository's
gateway code; each patch is a sketch of a fix, measured in place, not a reviewed implementation:

* ``deadline-sweep``: ``InProcessInvoker.invoke_event`` (routes/integrations/python_inprocess.py)
  without a per-call ``asyncio.timeout`` (a uvloop timer created and cancelled per message): one
  shared sweeper cancels overdue async calls (timeouts fire up to 50 ms late). Sync handlers keep
  the original path.
* ``no-event-copy``: the same function without ``orjson.loads(orjson.dumps(event))`` for the
  event. The MESSAGE event is built fresh for each call from JSON-native values, so the copy only
  protects a dict nobody reads afterwards.
* ``fast-ids``: ``new_apigw_id`` (server/ids.py) from a pooled ``os.urandom`` buffer instead of one
  ``getrandom`` syscall per id (2 ids per message).
* ``clf-cache``: ``clf_time`` (server/ids.py, called by connections/events.py) cached per second.
* ``fast-select``: ``select_route`` (routes/selection.py) for the default ``$request.body.action``:
  ``orjson.loads`` and one ``dict.get``, without building two frozen ``EvaluationSources``.
* ``no-heartbeat``: ``ping_interval_s=None`` (no aiohttp heartbeat bookkeeping per received
  message; a fix would send pings from the existing idle sweeper instead).
* ``no-frame-guard``: no ``FrameGuard`` (connections/frames.py) in front of aiohttp's parser.
* ``lean-send``: ``LocalConnection.send_text`` (connections/registry.py) without the ABC
  ``isinstance`` per send.
* ``inline``: ``WebSocketGateway._read`` awaits ``_process`` instead of a task per message.
  **Changes semantics** (one message at a time per connection): an upper bound of what a cheaper
  task per message (Python 3.12's eager tasks) could save.
* ``all``: every patch above except ``inline``.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import dataclasses
import functools
import gc
import os
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import portway_ws

import connections.events as events_module
import connections.websocket as websocket_module
import server.ids as ids_module
from connections.registry import LocalConnection, SendStatus
from routes.integrations import python_inprocess
from routes.integrations.base import InvokeFailure
from routes.integrations.lambda_context import LambdaContext, MarshalError, dumps
from routes.selection import SelectionExpression, select_route

PATCHES = (
    "deadline-sweep",
    "no-event-copy",
    "fast-ids",
    "clf-cache",
    "fast-select",
    "no-heartbeat",
    "no-frame-guard",
    "lean-send",
    "inline",
)


# deadline-sweep / no-event-copy ---------------------------------------------------------------------


class Deadlines:
    """One timer for all in-flight calls: every ``tick`` s, cancel the tasks past their deadline."""

    def __init__(self, tick: float = 0.05) -> None:
        self.tick = tick
        self.calls: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self._handle: asyncio.TimerHandle | None = None

    def add(self, task: asyncio.Task[Any], deadline: float) -> None:
        self.calls[task] = deadline
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.tick, self._sweep)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in list(self.calls.items()):
            if deadline <= now:
                del self.calls[task]
                self.expired.add(task)
                task.cancel()
        self._handle = loop.call_later(self.tick, self._sweep) if self.calls else None


DEADLINES = Deadlines()


def patched_invoke_event(copy_event: bool, sweep: bool) -> Any:
    original = python_inprocess.InProcessInvoker.invoke_event

    async def invoke_event(
        self: python_inprocess.InProcessInvoker, event: dict[str, Any], *, request_id: str, timeout_s: float
    ) -> Any:
        if self._closed or not self._is_async or self._function is None or (not sweep and copy_event):
            return await original(self, event, request_id=request_id, timeout_s=timeout_s)
        if not sweep:  # no-event-copy alone: the original with the copy skipped
            return await _original_without_copy(self, event, request_id, timeout_s)
        deadline_ms = int((time.time() + timeout_s) * 1000)
        payload = orjson.loads(orjson.dumps(event)) if copy_event else event
        task = asyncio.current_task()
        assert task is not None
        DEADLINES.add(task, asyncio.get_running_loop().time() + timeout_s)
        try:
            context = LambdaContext(
                aws_request_id=request_id,
                function_name=self._function_name,
                memory_limit_in_mb=self._memory_mb,
                region=self._region,
                account_id=self._account_id,
                deadline_ms=deadline_ms,
                log_stream_name=self._log_stream,
            )
            result = await self._call_async(functools.partial(self._function, payload, context))
        except asyncio.CancelledError:
            if task in DEADLINES.expired:
                DEADLINES.expired.discard(task)
                task.uncancel()
                self.timeouts += 1
                raise TimeoutError from None
            raise
        finally:
            DEADLINES.calls.pop(task, None)
        try:
            return orjson.loads(dumps(result))
        except MarshalError as exc:
            raise InvokeFailure(str(exc)) from None

    async def _original_without_copy(
        self: python_inprocess.InProcessInvoker, event: dict[str, Any], request_id: str, timeout_s: float
    ) -> Any:
        deadline_ms = int((time.time() + timeout_s) * 1000)
        scope = asyncio.timeout(timeout_s)
        async with scope:
            context = LambdaContext(
                aws_request_id=request_id,
                function_name=self._function_name,
                memory_limit_in_mb=self._memory_mb,
                region=self._region,
                account_id=self._account_id,
                deadline_ms=deadline_ms,
                log_stream_name=self._log_stream,
            )
            result = await self._call_async(functools.partial(self._function, event, context))
        if scope.expired():
            raise TimeoutError
        return orjson.loads(dumps(result))

    return invoke_event


# fast-ids / clf-cache / fast-select -----------------------------------------------------------------


class _IdPool:
    def __init__(self) -> None:
        self.buf = b""
        self.pos = 0

    def new_apigw_id(self) -> str:
        if self.pos + 11 > len(self.buf):
            self.buf, self.pos = os.urandom(11 * 512), 0
        raw = self.buf[self.pos : self.pos + 11]
        self.pos += 11
        return base64.urlsafe_b64encode(raw).decode("ascii")[:15] + "="


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_clf_cache: list[Any] = [-1, ""]


def cached_clf_time(epoch_ms: int) -> str:
    second = epoch_ms // 1000
    if second != _clf_cache[0]:
        t = time.gmtime(second)
        _clf_cache[0] = second
        _clf_cache[1] = (
            f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year:04d}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
        )
    return str(_clf_cache[1])


def fast_select_route(
    expression: SelectionExpression, message: str | bytes, route_keys: Collection[str], **kw: Any
) -> str | None:
    if kw or expression.source != "$request.body.action":
        return select_route(expression, message, route_keys, **kw)
    try:
        body = orjson.loads(message)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        value = body.get("action")
        if not isinstance(value, str):
            return select_route(expression, message, route_keys)  # stringify rules: the full path
        if value in route_keys and (not value.startswith("$") or value == "$default"):
            return value
    return "$default" if "$default" in route_keys else None


# lean-send / inline -------------------------------------------------------------------------------


async def lean_send_text(self: LocalConnection, data: str) -> SendStatus:
    ws = self.ws
    if ws.closed or self.close_code is not None:
        return SendStatus.GONE
    transport = self.transport
    if transport is not None and transport.get_write_buffer_size() > self.api.websocket.send_buffer_bytes:  # type: ignore[attr-defined]
        return SendStatus.FULL
    try:
        await ws.send_str(data)
    except (ConnectionError, RuntimeError):
        return SendStatus.GONE
    return SendStatus.OK


def inline_read() -> Any:
    """``_read`` with ``max_inflight`` forced to 0: every message is processed before the next read."""
    original = websocket_module.WebSocketGateway._read

    async def _read(self: Any, conn: Any, runtime: Any) -> Any:
        settings = runtime.api.websocket
        patched = dataclasses.replace(settings, max_inflight=0)
        runtime.api = dataclasses.replace(runtime.api, websocket=patched)
        return await original(self, conn, runtime)

    return _read


def apply(patches: set[str]) -> None:
    if {"deadline-sweep", "no-event-copy"} & patches:
        python_inprocess.InProcessInvoker.invoke_event = patched_invoke_event(  # type: ignore[method-assign]
            copy_event="no-event-copy" not in patches, sweep="deadline-sweep" in patches
        )
    if "fast-ids" in patches:
        pool = _IdPool()
        ids_module.new_apigw_id = pool.new_apigw_id
        websocket_module.new_apigw_id = pool.new_apigw_id  # type: ignore[attr-defined]
    if "clf-cache" in patches:
        events_module.clf_time = cached_clf_time  # type: ignore[attr-defined]
    if "fast-select" in patches:
        websocket_module.select_route = fast_select_route  # type: ignore[attr-defined]
    if "no-frame-guard" in patches:
        websocket_module.WebSocketGateway._guard_frames = staticmethod(lambda request, settings: None)  # type: ignore[method-assign]
    if "lean-send" in patches:
        LocalConnection.send_text = lean_send_text  # type: ignore[method-assign]
    if "inline" in patches:
        websocket_module.WebSocketGateway._read = inline_read()  # type: ignore[method-assign]
    if "no-heartbeat" in patches:
        original = portway_ws.ws_bench_config

        def config() -> Any:
            cfg = original()
            apis = tuple(
                dataclasses.replace(a, websocket=dataclasses.replace(a.websocket, ping_interval_s=None))
                for a in cfg.apis
            )
            return dataclasses.replace(cfg, apis=apis)

        portway_ws.ws_bench_config = config


class GcStats:
    """Collections and time per generation (``gc.callbacks``), printed at exit."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.count[info["generation"]] += 1
            self.seconds[info["generation"]] += time.perf_counter() - self._start

    def report(self) -> None:
        parts = [f"gen{g}: {self.count[g]} in {self.seconds[g] * 1e3:.1f} ms" for g in range(3)]
        print(f"gc: {'; '.join(parts)}; tracked objects now {len(gc.get_objects())}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--patch", action="append", default=[], choices=(*PATCHES, "all", "none"))
    parser.add_argument("--gc-stats", action="store_true", help="print GC collections and time at exit")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the app is built")
    args, rest = parser.parse_known_args()
    if args.gc_stats:
        stats = GcStats()
        gc.callbacks.append(stats)
        atexit.register(stats.report)
    if args.gc_freeze:
        original_create_app = portway_ws.create_app

        def create_app(*a: Any, **kw: Any) -> Any:
            app = original_create_app(*a, **kw)
            gc.collect()
            gc.freeze()
            return app

        portway_ws.create_app = create_app
    patches = set(args.patch) - {"none"}
    if "all" in patches:
        patches = (patches | set(PATCHES)) - {"all", "inline"}
    apply(patches)
    print(f"patches: {', '.join(sorted(patches)) or 'none'}", flush=True)
    return portway_ws.main(rest)


if __name__ == "__main__":
    sys.exit(main())
