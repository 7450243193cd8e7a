"""Portway's WebSocket benchmark launcher with optional in-memory patches: what would each fix save?

    python bench/servers/portway_ws_experiments.py --port 8091 --patch deadline-sweep --patch fast-ids
    .venv/bin/python bench/bench_ws.py --figures a \\
        --portway-launcher bench/servers/portway_ws_experiments.py --portway-arg=--patch=all

Serves exactly what ``portway_ws.py`` serves, after monkeypatching the named hot spots found by
profiling the echo path (``bench/micro_ws.py``, py-spy). Nothing here changes the repository's
gateway code; each patch is a sketch of a fix, measured in place, not a reviewed implementation:

* ``deadline-sweep``: ``InProcessInvoker.invoke_event`` (routes/integrations/python_inprocess.py)
  without a timer per call (``loop.call_later`` + ``cancel``: a uvloop timer handle created and
  cancelled per message): one shared sweeper cancels overdue async calls (a timeout fires up to
  50 ms late). Sync handlers keep the original path.
* ``no-event-copy``: the same function without ``orjson.loads(orjson.dumps(event))`` for the
  event. The MESSAGE event is built fresh for each call from JSON-native values, so the copy only
  protects a dict nobody reads afterwards.
* ``fast-ids``: ``WebSocketGateway._process`` (connections/websocket.py) still takes its request and
  message ids from ``new_apigw_id`` (one ``getrandom`` syscall each); this patch gives them
  ``new_message_id`` (server/ids.py, counter-based), as the ``Forbidden`` path already does.
  (In this sketch connection ids become counter-based too, which does not matter for the figures.)
* ``no-heartbeat``: ``ping_interval_s=None`` (no aiohttp heartbeat bookkeeping per received
  message and no timer per connection; a fix would send pings from the existing idle sweeper).
* ``no-frame-guard``: no ``FrameGuard`` (connections/frames.py) in front of aiohttp's parser.
* ``lean-send``: ``LocalConnection.send_text`` (connections/registry.py) without the ABC
  ``isinstance`` per send.
* ``all``: every patch above.

Patches that were measured here and then landed in the gateway itself (commit 1b70b4c: messages
in order without a task each, ``call_later`` instead of ``asyncio.timeout``, cached
``requestTime``, one-walk route selection, cheap common proxy result) are no longer offered.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import dataclasses
import functools
import gc
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import portway_ws

import connections.websocket as websocket_module
import server.ids as ids_module
from connections.registry import LocalConnection, SendStatus
from routes.integrations import python_inprocess
from routes.integrations.base import InvokeFailure
from routes.integrations.lambda_context import LambdaContext, MarshalError, dumps

PATCHES = ("deadline-sweep", "no-event-copy", "fast-ids", "no-heartbeat", "no-frame-guard", "lean-send")


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
    """``invoke_event`` for loaded async handlers: the event copy optional, the timer per call
    (``call_later`` + ``cancel``, as the gateway does) or the shared sweeper."""
    original = python_inprocess.InProcessInvoker.invoke_event

    async def invoke_event(
        self: python_inprocess.InProcessInvoker, event: dict[str, Any], *, request_id: str, timeout_s: float
    ) -> Any:
        if self._closed or not self._is_async or self._function is None:
            return await original(self, event, request_id=request_id, timeout_s=timeout_s)
        deadline_ms = int((time.time() + timeout_s) * 1000)
        payload = orjson.loads(orjson.dumps(event)) if copy_event else event
        context = LambdaContext(
            aws_request_id=request_id,
            function_name=self._function_name,
            memory_limit_in_mb=self._memory_mb,
            region=self._region,
            account_id=self._account_id,
            deadline_ms=deadline_ms,
            log_stream_name=self._log_stream,
        )
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        expired = False
        handle: asyncio.TimerHandle | None = None
        if sweep:
            DEADLINES.add(task, loop.time() + timeout_s)
        else:

            def expire() -> None:
                nonlocal expired
                expired = True
                task.cancel()

            handle = loop.call_later(timeout_s, expire)
        try:
            result = await self._call_async(functools.partial(self._function, payload, context))
        except asyncio.CancelledError:
            if expired or task in DEADLINES.expired:
                DEADLINES.expired.discard(task)
                task.uncancel()
                self.timeouts += 1
                raise TimeoutError from None
            raise
        finally:
            if handle is not None:
                handle.cancel()
            else:
                DEADLINES.calls.pop(task, None)
        try:
            return orjson.loads(dumps(result))
        except MarshalError as exc:
            raise InvokeFailure(str(exc)) from None

    return invoke_event


# lean-send -------------------------------------------------------------------------------


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


def apply(patches: set[str]) -> None:
    if {"deadline-sweep", "no-event-copy"} & patches:
        python_inprocess.InProcessInvoker.invoke_event = patched_invoke_event(  # type: ignore[method-assign]
            copy_event="no-event-copy" not in patches, sweep="deadline-sweep" in patches
        )
    if "fast-ids" in patches:
        websocket_module.new_apigw_id = ids_module.new_message_id  # type: ignore[attr-defined]
    if "no-frame-guard" in patches:
        websocket_module.WebSocketGateway._guard_frames = staticmethod(lambda request, settings: None)  # type: ignore[method-assign]
    if "lean-send" in patches:
        LocalConnection.send_text = lean_send_text  # type: ignore[method-assign]
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
        patches = (patches | set(PATCHES)) - {"all"}
    apply(patches)
    print(f"patches: {', '.join(sorted(patches)) or 'none'}", flush=True)
    return portway_ws.main(rest)


if __name__ == "__main__":
    sys.exit(main())
