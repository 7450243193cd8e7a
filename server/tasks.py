"""Stopping background tasks reliably (shared by the store, the key registry and the bus).

Pure of I/O libraries besides asyncio itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["stop_tasks"]

log = logging.getLogger("portway.tasks")


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], *, within: float = 5.0) -> None:
    """Cancel ``tasks`` and wait (at most ``within`` seconds) until every one has ended.

    One ``cancel()`` is not enough on Python 3.11: redis-py sends every command through
    ``asyncio.wait_for``, which there drops a cancellation that arrives just as the wrapped write
    completes (CPython gh-86296, fixed in 3.12). A loop cancelled in the middle of a Redis command
    then runs on, and a shutdown awaiting it waits forever. So the cancellation is repeated until
    the task has ended (normally the first one does it).
    """
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning("%d task(s) did not stop: %s", len(pending), pending)
            break
        _, pending = await asyncio.wait(pending, timeout=min(0.25, remaining))
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())
