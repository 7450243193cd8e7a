"""Operations on connections from anywhere: the ``@connections`` API's logic, local or cross-node.

Reference: docs/aws-contract.md §1.7. Every operation works on any node: the owner's sockets are
local to it; for a connection owned by another node the request is published once to that node
(:mod:`connections.bus`).

| operation | success | errors |
|---|---|---|
| post (PostToConnection) | 200 | 410 gone or unknown, 429 send buffer full, 413 over the message limit |
| get (GetConnection) | 200 ``{connectedAt, identity{sourceIp,userAgent}, lastActiveAt}`` | 410 |
| delete (DeleteConnection) | 204, closes the socket (1000) and fires ``$disconnect`` | 410 |
| join / leave a channel | 200 | 410 |
| publish to a channel or the whole stage | 200 ``{"delivered": n on this node}`` | - |

An id the store does not know is 410, except while records are being resynced after a Redis
restart or outage: then 500 (retryable), see :meth:`ConnectionManager._gone_status`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import UTC, datetime
from typing import Any

from connections.bus import NodeBus, RpcUnavailable
from connections.core import DELETED
from connections.registry import (
    ConnectionRegistry,
    LocalConnection,
    SendStatus,
    channel_key,
    forget_connection,
    stage_conns_key,
)
from server.store.base import StoreUnavailable

__all__ = ["ConnectionManager", "iso_ms"]

log = logging.getLogger("portway.connections")

_STATUS = {SendStatus.OK: 200, SendStatus.GONE: 410, SendStatus.FULL: 429}


def iso_ms(epoch_ms: int) -> str:
    """ISO 8601 with milliseconds and ``Z``, as botocore parses ``connectedAt``/``lastActiveAt``."""
    when = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ConnectionManager:
    def __init__(self, registry: ConnectionRegistry, bus: NodeBus | None = None) -> None:
        self.registry = registry
        self.bus = bus
        self._slow_sends: set[asyncio.Task[None]] = set()  # see _deliver_local

    # Public operations (any node) -------------------------------------------------------------

    async def post(self, connection_id: str, data: bytes) -> int:
        conn = self.registry.local(connection_id)
        if conn is not None:  # fast path: no encoding round trip for a socket on this node
            return _STATUS[await conn.send_text(data.decode("utf-8", errors="replace"))]
        return int((await self._route(connection_id, {"op": "post", "data": _b64(data)}))["status"])

    async def get(self, connection_id: str) -> tuple[int, dict[str, Any] | None]:
        reply = await self._route(connection_id, {"op": "get"})
        return int(reply["status"]), reply.get("info")

    async def delete(self, connection_id: str) -> int:
        return int((await self._route(connection_id, {"op": "delete"}))["status"])

    async def join(self, connection_id: str, channel: str) -> int:
        return int((await self._route(connection_id, {"op": "join", "channel": channel}))["status"])

    async def leave(self, connection_id: str, channel: str) -> int:
        return int((await self._route(connection_id, {"op": "leave", "channel": channel}))["status"])

    async def publish(self, api_id: str, stage: str, channel: str | None, data: bytes) -> int:
        """Deliver to every member (or the whole stage): locally now, on other nodes by one fanout."""
        message = {"op": "fanout", "api": api_id, "stage": stage, "channel": channel, "data": _b64(data)}
        if self.bus is not None:
            try:
                await self.bus.fanout(message)
            except StoreUnavailable as exc:
                log.warning("fanout to other nodes failed: %s", exc)
        return await self._deliver_local(api_id, stage, channel, data.decode("utf-8", errors="replace"))

    async def list_ids(self, api_id: str, stage: str, channel: str | None) -> list[str]:
        key = channel_key(api_id, stage, channel) if channel else stage_conns_key(api_id, stage)
        return sorted(await self.registry.store.smembers(key))

    # Routing to the owner -----------------------------------------------------------------------

    async def _route(self, connection_id: str, message: dict[str, Any]) -> dict[str, Any]:
        conn = self.registry.local(connection_id)
        if conn is not None:
            return await self._apply(conn, message)
        record = await self.registry.record(connection_id)
        if record is None:
            return {"status": await self._gone_status(connection_id)}
        owner = record["node"]
        if owner == self.registry.node_id or self.bus is None:
            # A record this node no longer backs with a socket: stale, forget it.
            await forget_connection(
                self.registry.store, connection_id, owner, record["api"], record["stage"], ()
            )
            return {"status": 410}
        try:
            return await self.bus.request(owner, {**message, "id": connection_id})
        except LookupError:
            # The owner died (the reaper runs $disconnect and cleans up), unless the store lost
            # its liveness key in a restart.
            return {"status": await self._gone_status(connection_id)}
        except RpcUnavailable as exc:
            log.warning("connection %s: %s", connection_id, exc)
            return {"status": 500}

    async def _gone_status(self, connection_id: str) -> int:
        """410 for a connection the store does not know, or 500 (retryable, InternalServerError)
        while the store may still be missing records of live connections (after a Redis restart
        or outage): a backend deletes an id on 410, so a false one loses a live subscriber."""
        if self.bus is None:
            return 410
        try:
            settled = await self.bus.records_settled()
        except StoreUnavailable:
            settled = False
        if not settled:
            log.info("connection %s not found while records are being resynced: 500", connection_id)
            return 500
        return 410

    async def on_request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Bus handler: apply an operation addressed to this node."""
        conn = self.registry.local(str(message.get("id")))
        if conn is None:
            return {"status": 410}
        return await self._apply(conn, message)

    async def on_fanout(self, message: dict[str, Any]) -> None:
        data = base64.b64decode(message["data"]).decode("utf-8", errors="replace")
        await self._deliver_local(message["api"], message["stage"], message.get("channel"), data)

    # Local operations ---------------------------------------------------------------------------

    async def _apply(self, conn: LocalConnection, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        if conn.ws.closed or conn.close_code is not None:
            return {"status": 410}
        if op == "post":
            text = base64.b64decode(message["data"]).decode("utf-8", errors="replace")
            return {"status": _STATUS[await conn.send_text(text)]}
        if op == "get":
            info = {
                "connectedAt": iso_ms(conn.info.connected_at_ms),
                "identity": {"sourceIp": conn.info.source_ip, "userAgent": conn.info.user_agent or ""},
                "lastActiveAt": iso_ms(conn.last_active_ms),
            }
            return {"status": 200, "info": info}
        if op == "delete":
            await conn.close(*DELETED)
            return {"status": 204}
        if op == "join":
            await self.registry.join(conn, str(message["channel"]))
            return {"status": 200}
        if op == "leave":
            await self.registry.leave(conn, str(message["channel"]))
            return {"status": 200}
        return {"status": 400}

    async def _deliver_local(self, api_id: str, stage: str, channel: str | None, text: str) -> int:
        """Send to every local member without waiting on any one socket.

        A socket with an empty write buffer takes the frame at once (``send_text`` cannot wait
        then), so those are sent in turn. A socket with data still queued (a slow reader) may make
        ``send_text`` wait for its buffer to drain (bounded by ``SEND_DRAIN_TIMEOUT_S``): that send
        runs in its own task, so it delays nobody, and while it waits further broadcasts skip that
        socket (dropped for it, as a full buffer drops them): at most one waiting send per socket.
        A socket over ``sendBufferBytes`` is skipped at once (its buffer policy). The frame is
        written when the task first runs, before any later broadcast reaches that socket (it is
        skipped until then, or finds the task's frame queued first), so broadcasts stay in order.
        """
        delivered = 0
        for conn in self.registry.local_members(api_id, stage, channel):
            if conn.draining:
                continue
            queued = conn.buffered()
            if queued == 0:
                if await conn.send_text(text) is SendStatus.OK:
                    delivered += 1
                continue
            if queued > conn.settings.send_buffer_bytes or conn.ws.closed:
                continue  # its buffer policy: dropped for this socket
            conn.draining = True
            task = asyncio.create_task(self._send_slow(conn, text))
            self._slow_sends.add(task)
            task.add_done_callback(self._slow_sends.discard)
            delivered += 1  # written when the task starts (a drain wait then counts as sent)
        return delivered

    @staticmethod
    async def _send_slow(conn: LocalConnection, text: str) -> None:
        try:
            await conn.send_text(text)
        finally:
            conn.draining = False


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
