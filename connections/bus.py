"""Cross-node delivery: each node owns its sockets; other nodes reach them through the store's pub/sub.

* Every node subscribes to its own channel ``node:{id}`` (requests addressed to it, and replies to
  its own requests) and to ``fanout`` (channel/stage broadcasts).
* A request for a connection owned by another node is **published once, to the owner only**, and
  answered on the requester's channel, matched by a correlation id, within ``rpc_timeout``.
* Liveness: each node refreshes ``node:{id}:alive`` (TTL ``node_ttl``) every ``heartbeat`` and is in
  the ``nodes`` set. A request that gets no answer from a node whose liveness key has expired is
  answered 410 (the node is gone; the reaper cleans up its connections).
* Resync: after each successful heartbeat ``on_beat(rejoined)`` runs in the background;
  ``rejoined`` is true when the store had lost this node (Redis restarted empty, or a reaper
  removed it) or a heartbeat failed since the last call, so the records of its live sockets may
  be missing or stale (connections.registry rewrites them).
* Settling: until every live node has rewritten its records after such a loss, a connection
  missing from the store may be alive on another node; :meth:`NodeBus.records_settled` tells
  ``@connections`` to answer a retryable 500 rather than a 410 (backends delete ids on 410).

Messages are orjson objects. Pub/sub is at-most-once: a lost message shows up as an RPC timeout,
never as a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from server.store.base import Store, StoreUnavailable
from server.tasks import stop_tasks

__all__ = ["NodeBus", "RpcUnavailable", "alive_key"]

log = logging.getLogger("portway.bus")

FANOUT = "fanout"
NODES = "nodes"


def alive_key(node_id: str) -> str:
    return f"node:{node_id}:alive"


class RpcUnavailable(Exception):
    """The owner node did not answer in time (and is still alive), or the store is down."""


RequestHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
FanoutHandler = Callable[[dict[str, Any]], Awaitable[None]]
BeatHandler = Callable[[bool], Awaitable[None]]


class NodeBus:
    def __init__(
        self,
        store: Store,
        node_id: str,
        *,
        on_request: RequestHandler,
        on_fanout: FanoutHandler,
        on_beat: BeatHandler | None = None,
        heartbeat: float = 2.0,
        node_ttl: float = 6.0,
        rpc_timeout: float = 2.0,
    ) -> None:
        self.store = store
        self.node_id = node_id
        self._on_request = on_request
        self._on_fanout = on_fanout
        self._on_beat = on_beat
        self._after_beat: asyncio.Task[None] | None = None
        self.heartbeat = heartbeat
        self.node_ttl = node_ttl
        self.rpc_timeout = rpc_timeout
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._ready = asyncio.Event()
        self._beaten = False  # a first heartbeat succeeded
        self._settling_until = 0.0  # loop time; see records_settled

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._listen()))
        self._tasks.append(asyncio.create_task(self._beat()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._ready.wait()

    async def close(self) -> None:
        await stop_tasks([*self._tasks, *([self._after_beat] if self._after_beat is not None else [])])
        with contextlib.suppress(StoreUnavailable):
            # Leave `nodes` first: a node in it without a liveness key is reaped as dead.
            await self.store.srem(NODES, self.node_id)
            await self.store.delete(alive_key(self.node_id))

    async def _beat(self) -> None:
        rejoined = False
        while True:
            try:
                await self.store.set(alive_key(self.node_id), b"1", ttl=self.node_ttl)
                # 1 on the first beat, and whenever the store lost this node (restart, reaped).
                rejoined = bool(await self.store.sadd(NODES, self.node_id)) or rejoined
                if rejoined and self._beaten:
                    # Every live node rejoins within one heartbeat and then rewrites its records:
                    # node_ttl (three heartbeats by default) bounds that.
                    self._settling_until = asyncio.get_running_loop().time() + self.node_ttl
                self._beaten = True
            except StoreUnavailable as exc:
                rejoined = True  # writes made meanwhile may be lost
                log.warning("heartbeat failed: %s", exc)
            else:
                # In the background: a long resync must not delay the next heartbeat.
                if self._on_beat is not None and (self._after_beat is None or self._after_beat.done()):
                    self._after_beat = asyncio.create_task(self._run_on_beat(self._on_beat, rejoined))
                    rejoined = False
            await asyncio.sleep(self.heartbeat)

    async def _run_on_beat(self, on_beat: BeatHandler, rejoined: bool) -> None:
        try:
            await on_beat(rejoined)
        except Exception:  # never let it end the heartbeat
            log.exception("after-heartbeat resync failed")

    async def _listen(self) -> None:
        async with self.store.subscribe(f"node:{self.node_id}", FANOUT) as sub:
            self._ready.set()
            async for channel, raw in sub:
                try:
                    message = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if channel == FANOUT:
                    if message.get("origin") != self.node_id:
                        self._spawn(self._on_fanout(message))
                elif message.get("op") == "reply":
                    future = self._pending.pop(message.get("corr", ""), None)
                    if future is not None and not future.done():
                        future.set_result(message)
                else:
                    self._spawn(self._answer(message))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _answer(self, message: dict[str, Any]) -> None:
        try:
            reply = await self._on_request(message)
        except Exception:
            log.exception("bus request %s failed", message.get("op"))
            reply = {"status": 500}
        reply.update(op="reply", corr=message.get("corr"))
        with contextlib.suppress(StoreUnavailable):
            await self.store.publish(f"node:{message.get('reply_to')}", orjson.dumps(reply))

    async def request(self, node_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """Send ``message`` to ``node_id`` and wait for its reply.

        Raises:
            RpcUnavailable: no reply in time from a live node, or the store is unreachable.
            LookupError: the node is dead (its liveness key expired).
        """
        corr = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[corr] = future
        try:
            payload = orjson.dumps({**message, "corr": corr, "reply_to": self.node_id})
            receivers = await self.store.publish(f"node:{node_id}", payload)
            if receivers == 0 and not await self.is_alive(node_id):
                raise LookupError(node_id)
            async with asyncio.timeout(self.rpc_timeout):
                return await future
        except TimeoutError as exc:
            if not await self.is_alive(node_id):
                raise LookupError(node_id) from exc
            raise RpcUnavailable(f"node {node_id} did not answer") from exc
        except StoreUnavailable as exc:
            raise RpcUnavailable(str(exc)) from exc
        finally:
            self._pending.pop(corr, None)

    async def records_settled(self) -> bool:
        """False while the store may lack the records of live connections held elsewhere: it lost
        them (restarted empty: this node is no longer in ``nodes``, its next heartbeat will tell)
        or came back less than ``node_ttl`` ago (other nodes may not have rewritten theirs yet).

        Raises:
            StoreUnavailable: the store cannot be asked.
        """
        if not self._beaten:
            return True  # starting: nothing was lost that this node knows of
        if asyncio.get_running_loop().time() < self._settling_until:
            return False
        return self.node_id in await self.store.smembers(NODES)

    async def is_alive(self, node_id: str) -> bool:
        return await self.store.get(alive_key(node_id)) is not None

    async def fanout(self, message: dict[str, Any]) -> None:
        """Publish a broadcast once; every other node delivers it to its own sockets."""
        await self.store.publish(FANOUT, orjson.dumps({**message, "origin": self.node_id}))
