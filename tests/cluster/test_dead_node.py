"""A node killed with SIGKILL leaves no ghosts.

Its liveness key stops being refreshed; once it expires (``node_ttl``) a surviving node's reaper
(every ``reaper_interval``) runs ``$disconnect`` (1006) for each of its connections and deletes
their records. Documented bound (connections/reaper.py, ClusterSettings): ``node_ttl +
reaper_interval`` after the last heartbeat; this test allows one more second for process and
scheduling noise and prints the measured time.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import aiohttp
import pytest

from tests.cluster.conftest import NS, Cluster, eventually, whoami

MARGIN_S = 1.0


async def test_killed_node_connections_get_disconnect_once_and_410(cluster: Cluster) -> None:
    n0, n1, victim = cluster.nodes
    timings = cluster.timings
    async with AsyncExitStack() as stack, aiohttp.ClientSession() as http:
        survivors_ws = [await stack.enter_async_context(n.connect()) for n in (n0, n1)]
        doomed_ws = [await stack.enter_async_context(victim.connect()) for _ in range(3)]
        survivors = [(await whoami(ws))[0] for ws in survivors_ws]
        doomed = [(await whoami(ws))[0] for ws in doomed_ws]
        victim_id = await cluster.owner(doomed[0])
        assert victim_id is not None
        # A channel with members on the dying node and on a survivor.
        for connection_id in (doomed[0], survivors[0]):
            async with http.post(f"{n1.api}/@connections/{connection_id}/channels/room") as r:
                assert r.status == 200

        killed_at = cluster.kill(victim)
        assert await asyncio.wait_for(victim.proc.wait(), 5) == -9

        # Right after the kill (liveness key not expired yet) a call never hangs: it answers
        # 410, or 500 while the owner still looks alive but does not answer (bounded by rpc_timeout).
        started = time.monotonic()
        async with http.post(f"{n0.api}/@connections/{doomed[1]}", data=b"x") as r:
            assert r.status in (410, 500)
        assert time.monotonic() - started < timings.rpc_timeout_s + 1.0

        async def all_disconnected() -> bool:
            return all(cluster.disconnects(i) for i in doomed)

        bound = timings.node_ttl_s + timings.reaper_interval_s + MARGIN_S
        await eventually(
            all_disconnected, within=bound + 5, what="$disconnect of the dead node's connections"
        )
        detected = max(cluster.disconnects(i)[0]["t"] for i in doomed) - killed_at
        print(f"\n$disconnect for all connections of the killed node {detected:.3f} s after SIGKILL")

        # The dead node is fully reaped: no reaper can run its $disconnects again after this.
        async def reaped() -> bool:
            return not (
                await cluster.redis.sismember(NS + "nodes", victim_id)
                or await cluster.redis.exists(
                    NS + f"node:{victim_id}:conns", NS + f"node:{victim_id}:reaping"
                )
            )

        await eventually(reaped, within=5, what="the dead node to be reaped")

        survivor_pids = {n0.pid, n1.pid}
        for connection_id in doomed:
            events = cluster.disconnects(connection_id)
            assert len(events) == 1, events  # exactly once (the reaper's lock)
            event = events[0]
            assert event["pid"] in survivor_pids  # run by a surviving node
            assert event["code"] == 1006 and event["reason"] == "Gateway node lost"
        assert detected <= bound, f"detected after {detected:.3f} s, bound {bound} s"
        assert not any(cluster.disconnects(i) for i in survivors)  # live connections untouched

        # No ghosts: no record, no stage or channel membership.
        for connection_id in doomed:
            assert not await cluster.redis.exists(
                NS + f"conn:{connection_id}", NS + f"conn:{connection_id}:chans"
            )
        stage = {m.decode() for m in await cluster.redis.smembers(NS + "stage:chatapi:dev:conns")}
        assert stage == set(survivors)
        room = {m.decode() for m in await cluster.redis.smembers(NS + "chan:chatapi:dev:room")}
        assert room == {survivors[0]}

        # @connections on the survivors: 410 GoneException for every dead connection.
        for node in (n0, n1):
            client = node.mgmt()
            for connection_id in doomed:
                with pytest.raises(client.exceptions.GoneException):
                    await asyncio.to_thread(client.post_to_connection, ConnectionId=connection_id, Data=b"x")
                with pytest.raises(client.exceptions.GoneException):
                    await asyncio.to_thread(client.get_connection, ConnectionId=connection_id)
                with pytest.raises(client.exceptions.GoneException):
                    await asyncio.to_thread(client.delete_connection, ConnectionId=connection_id)
        async with http.get(f"{n0.api}/@connections") as r:
            assert (await r.json())["count"] == 2

        # The survivors still reach each other's sockets, and the channel still works.
        await asyncio.to_thread(n1.mgmt().post_to_connection, ConnectionId=survivors[0], Data=b"still here")
        async with asyncio.timeout(5):
            assert await survivors_ws[0].recv() == "still here"
        async with http.post(f"{n1.api}/@channels/room", data=b"room") as r:
            assert r.status == 200
        async with asyncio.timeout(5):
            assert await survivors_ws[0].recv() == "room"
    cluster.assert_all_running()
