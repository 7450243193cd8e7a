"""Channels and stage broadcast across nodes: one POST on any node reaches members on every node.

A publish is one ``fanout`` message on the bus (never one message per node or per member); each
node delivers it to its own members. Membership, listing and bulk disconnect work from any node.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.cluster.conftest import NS, BusTap, Cluster, eventually, whoami


async def _recv(ws: ClientConnection) -> str:
    async with asyncio.timeout(5):
        return str(await ws.recv())


async def _json(response: aiohttp.ClientResponse) -> Any:
    assert response.status == 200, await response.text()
    return await response.json()


async def test_channel_and_broadcast_reach_every_node(cluster: Cluster) -> None:
    n0, n1, n2 = cluster.nodes
    async with (
        aiohttp.ClientSession() as http,
        n0.connect() as a,  # member, node 0
        n0.connect() as b,  # member, node 0
        n1.connect() as c,  # member, node 1
        n2.connect() as d,  # member, node 2
        n2.connect() as outsider,  # not a member, node 2 (next to member d)
    ):
        members = [a, b, c, d]
        ids = {ws: (await whoami(ws))[0] for ws in [*members, outsider]}
        # Join through nodes that do not hold the sockets (a cross-node operation each).
        for ws, via in ((a, n1), (b, n2), (c, n2), (d, n0)):
            async with http.post(f"{via.api}/@connections/{ids[ws]}/channels/room") as r:
                assert r.status == 200, await r.text()
        member_ids = sorted(ids[ws] for ws in members)
        for node in cluster.nodes:  # every node lists the same members
            async with http.get(f"{node.api}/@connections", params={"channel": "room"}) as r:
                assert await _json(r) == {"connections": member_ids, "count": 4}

        async with BusTap(cluster.redis) as tap:
            async with http.post(f"{n1.api}/@channels/room", data=b"to the room") as r:
                # `delivered` counts this node's members; the other nodes deliver to theirs.
                assert await _json(r) == {"delivered": 1}
            assert [await _recv(ws) for ws in members] == ["to the room"] * 4
            messages = await tap.collect()
            assert [channel for channel, _ in messages] == ["fanout"], messages  # published once
            assert messages[0][1]["channel"] == "room"

            # The outsider got nothing: its next frame is the answer to its own question.
            assert (await whoami(outsider))[0] == ids[outsider]

            async with http.post(f"{n2.api}/@broadcast", data=b"to everyone") as r:
                assert await _json(r) == {"delivered": 2}  # d and the outsider, on node 2
            assert [await _recv(ws) for ws in [*members, outsider]] == ["to everyone"] * 5
            messages = await tap.collect()
            assert [channel for channel, _ in messages] == ["fanout"], messages
            assert messages[0][1]["channel"] is None

        # Leave through another node: c no longer gets the room's messages.
        async with http.delete(f"{n0.api}/@connections/{ids[c]}/channels/room") as r:
            assert r.status == 200
        async with http.post(f"{n0.api}/@channels/room", data=b"without c") as r:
            assert await _json(r) == {"delivered": 2}  # a and b are on node 0
        assert [await _recv(ws) for ws in (a, b, d)] == ["without c"] * 3
        assert (await whoami(c))[0] == ids[c]

        # The whole stage, listed from any node.
        async with http.get(f"{n1.api}/@connections") as r:
            assert await _json(r) == {"connections": sorted(ids.values()), "count": 5}

        # Bulk disconnect of the room from node 1: the members on nodes 0 and 2 are closed.
        async with http.delete(f"{n1.api}/@connections", params={"channel": "room"}) as r:
            assert await _json(r) == {"disconnected": 3}
        for ws in (a, b, d):
            try:
                await _recv(ws)
                raise AssertionError("the socket should have been closed")
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1000
        assert (await whoami(c))[0] == ids[c] and (await whoami(outsider))[0] == ids[outsider]

        gone = [ids[ws] for ws in (a, b, d)]

        async def all_disconnected() -> bool:
            return all(len(cluster.disconnects(i)) == 1 for i in gone)

        await eventually(all_disconnected, within=5, what="$disconnect of the three members")
        by_owner = {i: cluster.disconnects(i)[0]["pid"] for i in gone}
        assert by_owner == {ids[a]: n0.pid, ids[b]: n0.pid, ids[d]: n2.pid}  # each on its own node

        async def room_empty() -> bool:
            return await cluster.redis.scard(NS + "chan:chatapi:dev:room") == 0

        await eventually(room_empty, within=5, what="the room's membership set to empty")
