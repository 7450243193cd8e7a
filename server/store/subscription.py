"""The bounded message buffer behind both stores' subscriptions."""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType
from typing import Self

__all__ = ["DEFAULT_BUFFER", "QueueSubscription"]

DEFAULT_BUFFER = 1024
"""Messages buffered per subscription before the oldest are dropped."""


class QueueSubscription:
    """Async iterator over a bounded FIFO of ``(channel, payload)``.

    Publishers must never wait for a slow consumer (one stuck WebSocket must not stall the
    node), so a full buffer drops its *oldest* message: the consumer sees the newest state.
    Subclasses implement :meth:`ready` and :meth:`_on_close`.
    """

    def __init__(self, channels: tuple[str, ...], maxsize: int = DEFAULT_BUFFER) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._channels = channels
        self._maxsize = maxsize
        self._buffer: deque[tuple[str, bytes]] = deque()
        self._wakeup = asyncio.Event()
        self._dropped = 0
        self._closed = False

    @property
    def channels(self) -> tuple[str, ...]:
        return self._channels

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def closed(self) -> bool:
        return self._closed

    def _push(self, channel: str, payload: bytes) -> bool:
        """Buffer one message (never blocks); False if the subscription is closed."""
        if self._closed:
            return False
        if len(self._buffer) >= self._maxsize:
            self._buffer.popleft()
            self._dropped += 1
        self._buffer.append((channel, payload))
        self._wakeup.set()
        return True

    async def ready(self) -> None:
        raise NotImplementedError

    async def _on_close(self) -> None:
        """Release what the subclass holds (called once)."""

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._wakeup.set()
        await self._on_close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> tuple[str, bytes]:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._buffer.popleft()

    async def __aenter__(self) -> Self:
        await self.ready()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
