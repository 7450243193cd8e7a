"""The connection registry: live sockets on this node, and connection records in the store.

A connection exists (for ``@connections``) from the moment its ``$connect`` integration returned
until its socket closed. Each node keeps its own sockets in memory; the store holds one record per
connection so every node can find the owner:

* ``conn:{id}``: hash ``node, api, stage, connectedAt, sourceIp, userAgent, domain``;
* ``node:{node}:conns``: the ids a node owns (what a surviving node cleans up when it dies);
* ``stage:{api}:{stage}:conns``: every connection of a stage (listing, counting);
* ``chan:{api}:{stage}:{channel}``: channel members, ``conn:{id}:chans``: a connection's channels.

Store outages never break a live socket: a failed write is logged and counted, and the socket
keeps working on its own node (reachable locally, not from other nodes, until the store is back).
When it is back (the node's heartbeat tells, see :meth:`ConnectionRegistry.sync`), the node
rewrites the records of its live sockets, which a Redis restart may have lost, and deletes those
of sockets that closed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

import orjson
from aiohttp import web

from connections.core import Close, ConnectionCore
from connections.events import ConnectionInfo
from server.config.model import ApiConfig, UsagePlanConfig, WebSocketSettings
from server.store.base import FieldValue, Store, StoreUnavailable
from server.store.bucket import BucketState

__all__ = [
    "ConnectionRegistry",
    "LocalConnection",
    "SendStatus",
    "channel_key",
    "conn_key",
    "forget_connection",
    "node_conns_key",
    "stage_conns_key",
]

log = logging.getLogger("portway.connections")

SEND_DRAIN_TIMEOUT_S = 1.0


def conn_key(connection_id: str) -> str:
    return f"conn:{connection_id}"


def node_conns_key(node_id: str) -> str:
    return f"node:{node_id}:conns"


def channel_key(api_id: str, stage: str, channel: str) -> str:
    return f"chan:{api_id}:{stage}:{channel}"


def stage_conns_key(api_id: str, stage: str) -> str:
    return f"stage:{api_id}:{stage}:conns"


def conn_channels_key(connection_id: str) -> str:
    return f"conn:{connection_id}:chans"


class SendStatus(Enum):
    OK = "ok"
    GONE = "gone"  # closed or closing: @connections answers 410
    FULL = "full"  # outgoing buffer over the limit: 429 LimitExceededException


@dataclass(slots=True, eq=False)
class LocalConnection:
    """A socket held by this node. Small on purpose: there may be tens of thousands."""

    info: ConnectionInfo
    ws: web.WebSocketResponse
    api: ApiConfig
    transport: asyncio.BaseTransport | None
    last_active_ms: int  # epoch ms of the last client message, for GetConnection
    # The connection's rules and state (timers, in-flight count, the close decided for it: the
    # first one, gateway's or client's), without I/O: connections/core.py.
    core: ConnectionCore
    channels: set[str] | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # The usage plan of the API key ``$connect`` admitted it with (None: no key); its buckets and
    # quota apply to every message (connections/websocket.py).
    plan: UsagePlanConfig | None = None
    # False when no throttling level can apply to this connection's messages (no key, no stage
    # throttle, account bucket off): messages then skip the throttle entirely.
    throttled: bool = True
    # The connection's own message bucket (WebSocketSettings.connection_throttle); None: full.
    bucket: BucketState | None = None
    # A broadcast's send to this socket is waiting for its buffer to drain (connections/
    # management.py): further broadcasts skip it until then (at most one waiting send each).
    draining: bool = False
    # Messages received from / sent to the client (/@metrics; totals in ConnectionRegistry).
    received: int = 0
    sent: int = 0

    @property
    def id(self) -> str:
        return self.info.connection_id

    @property
    def settings(self) -> WebSocketSettings:
        return self.api.websocket

    @property
    def close_code(self) -> int | None:
        """The code of the close decided for this connection (None while open)."""
        closed = self.core.closed
        return None if closed is None else closed.code

    @property
    def close_reason(self) -> str:
        closed = self.core.closed
        return "" if closed is None else closed.reason

    def __repr__(self) -> str:
        state = "closed" if self.ws.closed else "open"
        return f"<LocalConnection {self.id} {self.info.stage} {state}>"

    def buffered(self) -> int:
        # No isinstance check: uvloop's transports are not asyncio.WriteTransport subclasses, but
        # they have get_write_buffer_size() (the check made the limit a no-op under uvloop).
        get_size = getattr(self.transport, "get_write_buffer_size", None)
        return int(get_size()) if get_size is not None else 0

    async def send_text(self, data: str) -> SendStatus:
        """Send one text frame unless the socket is gone or its outgoing buffer is full.

        The frame is written to the transport at once; only aiohttp's drain may then wait for a
        slow reader, and that wait is bounded: the data is already queued, so it counts as sent
        and the next send sees the full buffer (429) instead of a hang.
        """
        if self.ws.closed or self.close_code is not None:
            return SendStatus.GONE
        queued = self.buffered()
        if queued > self.settings.send_buffer_bytes:
            return SendStatus.FULL
        self.sent += 1  # written to the transport (a timed-out drain below still counts as sent)
        try:
            if queued == 0:
                # Hot path: an empty buffer cannot cross the transport's high-water mark (set
                # above sendBufferBytes + a message at connect), so aiohttp's drain returns at once.
                await self.ws.send_str(data)
            else:
                async with asyncio.timeout(SEND_DRAIN_TIMEOUT_S):
                    await self.ws.send_str(data)
        except TimeoutError:
            return SendStatus.OK
        except (ConnectionError, RuntimeError):
            return SendStatus.GONE
        return SendStatus.OK

    async def close(self, code: int, reason: str) -> None:
        closed = self.core.decide(Close(code, reason))
        if not self.ws.closed:
            await self.ws.close(code=closed.code, message=closed.reason.encode()[:123])


class ConnectionRegistry:
    """Local sockets by id, plus their store records."""

    def __init__(self, store: Store, node_id: str) -> None:
        self.store = store
        self.node_id = node_id
        self._local: dict[str, LocalConnection] = {}
        self._by_channel: dict[tuple[str, str, str], set[str]] = {}
        self.store_errors = 0
        self.dirty = False  # a store write failed: records may be missing or stale until sync()
        # /@metrics: connections opened and closed on this node, and the messages of closed ones
        # (open ones keep their own counts: received/sent on LocalConnection).
        self.connected = 0
        self.disconnected = 0
        self.closed_received = 0
        self.closed_sent = 0

    def __len__(self) -> int:
        return len(self._local)

    def __iter__(self) -> Iterator[LocalConnection]:
        return iter(list(self._local.values()))

    def messages(self) -> tuple[int, int]:
        """Messages received and sent on this node so far (scrape time: sums the open sockets)."""
        received, sent = self.closed_received, self.closed_sent
        for conn in list(self._local.values()):
            received += conn.received
            sent += conn.sent
        return received, sent

    def local(self, connection_id: str) -> LocalConnection | None:
        return self._local.get(connection_id)

    async def register(self, conn: LocalConnection) -> None:
        self._local[conn.id] = conn
        self.connected += 1
        try:
            await self._write(conn)
        except StoreUnavailable as exc:
            self.store_errors += 1
            self.dirty = True
            log.warning("store unavailable, %s is reachable on this node only: %s", conn.id, exc)

    async def _write(self, conn: LocalConnection) -> None:
        info = conn.info
        record: dict[str, FieldValue] = {
            "node": self.node_id,
            "api": info.api_id,
            "stage": info.stage,
            "connectedAt": info.connected_at_ms,
            "sourceIp": info.source_ip,
            "userAgent": info.user_agent or "",
            "domain": info.domain_name,
        }
        if info.authorizer is not None:
            # So that events built on another node (a dead node's $disconnect) carry it too.
            record["authorizer"] = orjson.dumps(dict(info.authorizer))
        await self.store.hset(conn_key(conn.id), record)
        await self.store.sadd(node_conns_key(self.node_id), conn.id)
        await self.store.sadd(stage_conns_key(info.api_id, info.stage), conn.id)
        for channel in conn.channels or ():
            await self.store.sadd(channel_key(info.api_id, info.stage, channel), conn.id)
            await self.store.sadd(conn_channels_key(conn.id), channel)

    async def sync(self, rejoined: bool) -> None:
        """After a heartbeat: make the store agree with this node's sockets again.

        Runs when the store lost this node (``rejoined``: Redis restarted empty, or a reaper took
        this node for dead) or a write failed (:attr:`dirty`): rewrites the records of every live
        socket and deletes the records of sockets that closed while the store was unreachable.
        """
        if not (rejoined or self.dirty):
            return
        self.dirty = False
        written = forgotten = 0
        try:
            for conn in list(self._local.values()):
                await self._write(conn)
                written += 1
                if conn.id not in self._local:  # closed meanwhile: do not leave its record behind
                    await self._forget(conn.id)
            for connection_id in await self.store.smembers(node_conns_key(self.node_id)):
                if connection_id not in self._local:
                    await self._forget(connection_id)
                    forgotten += 1
        except StoreUnavailable as exc:
            self.dirty = True
            log.warning("store unavailable, records not resynced yet: %s", exc)
            return
        if written or forgotten:
            log.info("records resynced: %d live connections, %d closed ones deleted", written, forgotten)

    async def _forget(self, connection_id: str) -> None:
        record = await self.record(connection_id)
        if record is None or record.get("node") != self.node_id:
            await self.store.srem(node_conns_key(self.node_id), connection_id)
            return
        if not await forget_connection(
            self.store, connection_id, self.node_id, record["api"], record["stage"], ()
        ):
            self.dirty = True

    async def unregister(self, conn: LocalConnection) -> None:
        if self._local.pop(conn.id, None) is None:
            return
        self.disconnected += 1
        self.closed_received += conn.received
        self.closed_sent += conn.sent
        for channel in conn.channels or ():
            members = self._by_channel.get((conn.info.api_id, conn.info.stage, channel))
            if members is not None:
                members.discard(conn.id)
                if not members:
                    del self._by_channel[(conn.info.api_id, conn.info.stage, channel)]
        if not await forget_connection(
            self.store, conn.id, self.node_id, conn.info.api_id, conn.info.stage, conn.channels or ()
        ):
            self.dirty = True  # its records stay until sync() deletes them

    async def record(self, connection_id: str) -> dict[str, str] | None:
        """The store record of a connection on any node, or None (unknown or gone)."""
        fields = await self.store.hgetall(conn_key(connection_id))
        if not fields:
            return None
        return {k: v.decode() for k, v in fields.items()}

    # Channels ---------------------------------------------------------------------------------

    async def join(self, conn: LocalConnection, channel: str) -> None:
        if conn.channels is None:
            conn.channels = set()
        conn.channels.add(channel)
        key = (conn.info.api_id, conn.info.stage, channel)
        self._by_channel.setdefault(key, set()).add(conn.id)
        await self.store.sadd(channel_key(*key), conn.id)
        await self.store.sadd(conn_channels_key(conn.id), channel)

    async def leave(self, conn: LocalConnection, channel: str) -> None:
        if conn.channels:
            conn.channels.discard(channel)
        key = (conn.info.api_id, conn.info.stage, channel)
        members = self._by_channel.get(key)
        if members is not None:
            members.discard(conn.id)
            if not members:
                del self._by_channel[key]
        await self.store.srem(channel_key(*key), conn.id)
        await self.store.srem(conn_channels_key(conn.id), channel)

    def local_members(self, api_id: str, stage: str, channel: str | None) -> list[LocalConnection]:
        """Local sockets of a channel, or of the whole stage when ``channel`` is None."""
        if channel is None:
            return [c for c in self._local.values() if c.info.api_id == api_id and c.info.stage == stage]
        ids = self._by_channel.get((api_id, stage, channel), ())
        return [c for i in ids if (c := self._local.get(i)) is not None]


async def forget_connection(
    store: Store,
    connection_id: str,
    node_id: str,
    api_id: str,
    stage: str,
    channels: set[str] | tuple[str, ...],
) -> bool:
    """Delete a connection's records (its own node on close, or a survivor after a node died).

    Returns False if the store was unreachable (the records stay).
    """
    try:
        if not channels:
            channels = await store.smembers(conn_channels_key(connection_id))
        for channel in channels:
            await store.srem(channel_key(api_id, stage, channel), connection_id)
        await store.delete(conn_key(connection_id), conn_channels_key(connection_id))
        await store.srem(node_conns_key(node_id), connection_id)
        await store.srem(stage_conns_key(api_id, stage), connection_id)
    except StoreUnavailable as exc:
        log.warning("store unavailable, records of %s stay for now: %s", connection_id, exc)
        return False
    return True
