"""Cleaning up after a node that died: no ghost connections.

A node that stops refreshing ``node:{id}:alive`` (TTL ``node_ttl``) is dead. Every ``interval`` each
surviving node looks for dead nodes; one of them wins a ``node:{id}:reaping`` lock and, for every
connection the dead node owned, runs ``$disconnect`` (code 1006) and deletes its records. A
connection's records are deleted only after its ``$disconnect`` ran, and the lock expires, so a
reaper that dies midway is finished by another: ``$disconnect`` is at-least-once.

Detection time is at most ``node_ttl + interval`` (defaults 6 s + 2 s); ``@connections`` already
answers 410 for such connections as soon as the owner's liveness key has expired.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from connections.bus import NODES, alive_key
from connections.events import ConnectionInfo
from connections.registry import ConnectionRegistry, forget_connection, node_conns_key
from connections.websocket import WebSocketGateway
from server.config.model import GatewayConfig
from server.store.base import StoreUnavailable

__all__ = ["NodeReaper"]

log = logging.getLogger("portway.reaper")

LOST_CODE = 1006
LOST_REASON = "Gateway node lost"


class NodeReaper:
    def __init__(
        self,
        config: GatewayConfig,
        registry: ConnectionRegistry,
        websockets: WebSocketGateway,
        *,
        interval: float = 2.0,
        lock_ttl: float = 30.0,
    ) -> None:
        self._stage_variables = {
            (api.id, stage.name): stage.variables for api in config.apis for stage in api.stages
        }
        self.registry = registry
        self.websockets = websockets
        self.interval = interval
        self.lock_ttl = lock_ttl
        self.reaped = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.reap_once()
            except StoreUnavailable as exc:
                log.warning("reaper: store unavailable: %s", exc)
            except Exception:  # the reaper must outlive any single failure
                log.exception("reaper failed")

    async def reap_once(self) -> int:
        """Clean up every dead node this node wins the lock for; returns connections cleaned."""
        store = self.registry.store
        cleaned = 0
        for node in await store.smembers(NODES):
            if node == self.registry.node_id or await store.get(alive_key(node)) is not None:
                continue
            lock = f"node:{node}:reaping"
            if not await store.set(
                lock, self.registry.node_id.encode(), ttl=self.lock_ttl, only_if_absent=True
            ):
                continue
            log.warning("node %s is gone: cleaning up its connections", node)
            for connection_id in sorted(await store.smembers(node_conns_key(node))):
                await self._cleanup(node, connection_id)
                cleaned += 1
            await store.srem(NODES, node)
            await store.delete(node_conns_key(node), lock)
        self.reaped += cleaned
        return cleaned

    async def _cleanup(self, node: str, connection_id: str) -> None:
        record = await self.registry.record(connection_id)
        if record is None:
            await self.registry.store.srem(node_conns_key(node), connection_id)
            return
        api_id, stage = record["api"], record["stage"]
        integration = self.websockets.disconnect_integration(api_id)
        if integration is not None:
            info = ConnectionInfo(
                connection_id=connection_id,
                api_id=api_id,
                stage=stage,
                domain_name=record.get("domain", ""),
                source_ip=record.get("sourceIp", ""),
                connected_at_ms=int(record.get("connectedAt", "0")),
                user_agent=record.get("userAgent") or None,
                stage_variables=self._stage_variables.get((api_id, stage), {}),
                authorizer=orjson.loads(record["authorizer"]) if record.get("authorizer") else None,
            )
            await self.websockets.run_disconnect(integration, info, LOST_CODE, LOST_REASON)
        await forget_connection(self.registry.store, connection_id, node, api_id, stage, ())
