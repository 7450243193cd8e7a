"""Redis subscriptions that survive Redis restarts.

Each subscription owns one reader task and one pub/sub connection. When the connection breaks
(Redis restarted, network cut, or a silent peer detected by our own PING), the reader drops
it, waits with capped exponential backoff, opens a fresh connection and subscribes again. We
do not rely on redis-py's in-place re-subscribe: a fresh PubSub object is simpler to reason
about and does not depend on the client's retry settings.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.store.subscription import QueueSubscription
from server.tasks import stop_tasks

__all__ = ["RedisSubscription"]

log = logging.getLogger("portway.store")

_MIN_BACKOFF = 0.05
_MAX_BACKOFF = 2.0


class RedisSubscription(QueueSubscription):
    """A :class:`~server.store.base.Subscription` on Redis channels ``namespace + channel``.

    ``ping_interval``: after this much silence the reader PINGs; no reply within ``timeout``
    means the peer is gone even if TCP has not noticed (host down, partition).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        namespace: str,
        channels: tuple[str, ...],
        *,
        maxsize: int,
        timeout: float,
        ping_interval: float,
        on_close: Callable[[RedisSubscription], None] | None = None,
    ) -> None:
        super().__init__(channels, maxsize)
        self._client = client
        self._namespace = namespace
        self._wire = {(namespace + channel).encode(): channel for channel in channels}
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._on_close_hook = on_close
        self._active = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._backoff = _MIN_BACKOFF
        self._lost = False
        self.reconnects = 0
        """How many times the subscription was re-established after losing its connection."""

    @property
    def active(self) -> bool:
        """Subscribed right now (False before the first SUBSCRIBE is confirmed and while
        reconnecting); for health reporting."""
        return self._active.is_set() and not self.closed

    def _ensure_reader(self) -> None:
        # Started lazily: Store.subscribe() is synchronous and may run before the loop does.
        if self._task is None and not self.closed:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"portway-store-subscription:{','.join(self.channels)}"
            )

    async def ready(self) -> None:
        self._ensure_reader()
        await self._active.wait()

    async def __anext__(self) -> tuple[str, bytes]:
        self._ensure_reader()
        return await super().__anext__()

    async def _on_close(self) -> None:
        if self._on_close_hook is not None:
            self._on_close_hook(self)
        self._active.set()  # release ready() waiters; iteration ends on its own
        task, self._task = self._task, None
        if task is None:
            return
        await stop_tasks([task])  # not a bare cancel(): see stop_tasks

    async def _run(self) -> None:
        while not self.closed:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(*self._wire)
                await self._pump(pubsub)
            except Exception as exc:
                # Anything but cancellation: the reader must outlive every backend failure.
                if self._active.is_set():
                    self._lost = True
                    log.warning("store subscription %s lost Redis: %r; reconnecting", self.channels, exc)
                else:
                    log.debug("store subscription %s cannot subscribe yet: %r", self.channels, exc)
                self._active.clear()
            finally:
                await _discard(pubsub)
            # Jitter spreads the reconnect storm of many subscriptions after a Redis restart.
            await asyncio.sleep(self._backoff * (0.5 + random.random() / 2))
            self._backoff = min(self._backoff * 2, _MAX_BACKOFF)

    async def _pump(self, pubsub: PubSub) -> None:
        loop = asyncio.get_running_loop()
        pending = set(self._wire)
        last_heard = loop.time()
        ping_sent: float | None = None
        while True:
            wait = self._timeout if ping_sent is not None else self._ping_interval
            message = await pubsub.get_message(timeout=wait)
            now = loop.time()
            if message is None:
                if ping_sent is not None and now - ping_sent >= self._timeout:
                    raise RedisTimeoutError("no reply to PING on the pub/sub connection")
                if ping_sent is None and now - last_heard >= self._ping_interval:
                    await pubsub.ping()
                    ping_sent = now
                continue
            last_heard, ping_sent = now, None
            kind = message["type"]
            if kind == "message":
                channel = self._wire.get(message["channel"])
                if channel is not None:
                    self._push(channel, message["data"])
            elif kind == "subscribe":
                pending.discard(message["channel"])
                if not pending:
                    self._backoff = _MIN_BACKOFF
                    self.reconnects += self._lost
                    self._lost = False
                    self._active.set()
                    log.debug("store subscription %s active", self.channels)


async def _discard(pubsub: PubSub) -> None:
    try:
        # Through a typed name: redis-py < 8.2 leaves ``aclose`` unannotated, 8.2 annotates it.
        close: Callable[[], Awaitable[None]] = pubsub.aclose
        await close()
    except Exception:  # the connection is already broken; nothing else to release
        log.debug("closing a broken pub/sub connection failed", exc_info=True)
