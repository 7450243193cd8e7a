"""@connections across nodes: a request arriving at any node reaches the socket on its owner.

Three real gateway processes on one redis-server; every call is made on a node that does NOT hold
the socket, with boto3 or aiobotocore ``apigatewaymanagementapi``. A tap on Redis counts the bus
messages: each cross-node call is one request published to the owner's channel and one reply
published to the caller's, never a message to a third node or a fanout.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from aiobotocore.session import get_session
from websockets.exceptions import ConnectionClosed

from tests.cluster.conftest import CREDS, NS, BusTap, Cluster, eventually, whoami


async def test_records_live_in_the_store(cluster: Cluster) -> None:
    """Each connection has one record (node, api, stage, identity, timestamps) every node reads."""
    node = cluster.nodes[0]
    async with node.connect() as ws:
        connection_id, pid = await whoami(ws)
        assert pid == node.pid
        raw = await cluster.redis.hgetall(NS + f"conn:{connection_id}")
        record = {k.decode(): v.decode() for k, v in raw.items()}
        assert record["api"] == "chatapi" and record["stage"] == "dev"
        assert record["sourceIp"] == "127.0.0.1" and record["userAgent"].startswith("Python/")
        assert int(record["connectedAt"]) > 0
        owner = record["node"]
        assert await cluster.redis.sismember(NS + "nodes", owner)
        assert await cluster.redis.sismember(NS + f"node:{owner}:conns", connection_id)
        assert await cluster.redis.sismember(NS + "stage:chatapi:dev:conns", connection_id)
    # Closed: the owner forgets the record.
    await eventually(
        lambda: _gone(cluster, connection_id), within=5, what="the record of a closed connection to go"
    )


async def _gone(cluster: Cluster, connection_id: str) -> bool:
    return not await cluster.redis.exists(NS + f"conn:{connection_id}")


async def test_post_get_delete_from_every_other_node(cluster: Cluster) -> None:
    nodes = cluster.nodes
    async with nodes[0].connect() as ws0, nodes[1].connect() as ws1, nodes[2].connect() as ws2:
        sockets = [ws0, ws1, ws2]
        ids: list[str] = []
        for node, ws in zip(nodes, sockets, strict=True):
            connection_id, pid = await whoami(ws)
            assert pid == node.pid  # each socket is held by the node it connected to
            ids.append(connection_id)
        node_ids = [await cluster.owner(i) for i in ids]
        assert None not in node_ids and len(set(node_ids)) == 3

        async with BusTap(cluster.redis) as tap:
            for owner in range(3):
                for caller in (c for c in range(3) if c != owner):
                    client = nodes[caller].mgmt()
                    data = f"from node {caller} to node {owner}".encode()
                    target, route = ids[owner], (ids[owner], node_ids[owner], node_ids[caller])
                    post = client.post_to_connection
                    result = await asyncio.to_thread(post, ConnectionId=target, Data=data)
                    assert result["ResponseMetadata"]["HTTPStatusCode"] == 200
                    async with asyncio.timeout(5):
                        assert await sockets[owner].recv() == data.decode()
                    _assert_one_round_trip(await tap.collect(), "post", *route)

                    info = await asyncio.to_thread(client.get_connection, ConnectionId=target)
                    assert isinstance(info["ConnectedAt"], datetime)
                    assert isinstance(info["LastActiveAt"], datetime)
                    assert info["Identity"]["SourceIp"] == "127.0.0.1"
                    assert info["Identity"]["UserAgent"].startswith("Python/")
                    _assert_one_round_trip(await tap.collect(), "get", *route)

            # DELETE from another node, with aiobotocore this time.
            async with get_session().create_client(
                "apigatewaymanagementapi", endpoint_url=nodes[2].api, **CREDS
            ) as aclient:
                deleted = await aclient.delete_connection(ConnectionId=ids[0])
                assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
                _assert_one_round_trip(await tap.collect(), "delete", ids[0], node_ids[0], node_ids[2])
                with pytest.raises(ConnectionClosed) as closed:
                    async with asyncio.timeout(5):
                        await ws0.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000

                # $disconnect ran once, on the node that held the socket.
                events = await eventually(
                    lambda: _disconnects(cluster, ids[0]), within=5, what="$disconnect of the deleted socket"
                )
                assert len(events) == 1 and events[0]["pid"] == nodes[0].pid
                assert events[0]["code"] == 1000

                # Gone everywhere: 410 from every node, without asking any other node.
                await eventually(lambda: _gone(cluster, ids[0]), within=5, what="the deleted record to go")
                for node in nodes:
                    client = node.mgmt()
                    with pytest.raises(client.exceptions.GoneException):
                        await asyncio.to_thread(client.post_to_connection, ConnectionId=ids[0], Data=b"x")
                    with pytest.raises(client.exceptions.GoneException):
                        await asyncio.to_thread(client.get_connection, ConnectionId=ids[0])
                    with pytest.raises(client.exceptions.GoneException):
                        await asyncio.to_thread(client.delete_connection, ConnectionId=ids[0])
                with pytest.raises(aclient.exceptions.GoneException):
                    await aclient.post_to_connection(ConnectionId=ids[0], Data=b"x")
                assert await tap.collect() == []

        # The other two sockets were untouched by all of this.
        for ws, connection_id in ((ws1, ids[1]), (ws2, ids[2])):
            assert (await whoami(ws))[0] == connection_id
        assert len(cluster.events("$disconnect")) == 1


async def _disconnects(cluster: Cluster, connection_id: str) -> list[dict[str, Any]]:
    return cluster.disconnects(connection_id)


def _assert_one_round_trip(
    messages: list[tuple[str, dict[str, Any]]], op: str, connection_id: str, owner: str, caller: str
) -> None:
    """Exactly one request, published to the owner only, and one reply, to the caller only."""
    assert [channel for channel, _ in messages] == [f"node:{owner}", f"node:{caller}"], messages
    request, reply = messages[0][1], messages[1][1]
    assert request["op"] == op and request["id"] == connection_id and request["reply_to"] == caller
    assert reply["op"] == "reply" and reply["corr"] == request["corr"]
    assert reply["status"] == {"post": 200, "get": 200, "delete": 204}[op]
