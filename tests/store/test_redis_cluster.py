"""The Redis Cluster store: URL parsing and store choice; on a real 3-master cluster, admit's keys in
one slot and the client following the slot map (the contract suite runs on it too: conftest.py)."""

from __future__ import annotations

import pytest

from server.store import open_store
from server.store.redis_cluster import RedisClusterStore, parse_cluster_url
from server.store.redis_pipe import RedisPipe
from server.throttle.admit import BucketSpec
from tests.redis_cluster_fixture import RedisClusterServers
from tests.redis_fixture import resp_command


def test_cluster_urls() -> None:
    parsed = parse_cluster_url("redis+cluster://user:p%40ss@10.0.0.1:7000,10.0.0.2:7001/")
    assert parsed.nodes == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert (parsed.username, parsed.password, parsed.tls) == ("user", "p@ss", False)
    assert parse_cluster_url("rediss+cluster://[::1]:7000").nodes == [("::1", 7000)]
    assert parse_cluster_url("rediss+cluster://[::1]:7000").tls
    with pytest.raises(ValueError, match="database 0 only"):
        parse_cluster_url("redis+cluster://h:7000/3")
    with pytest.raises(ValueError, match="host:port"):
        parse_cluster_url("redis+cluster://h")


async def test_factory_picks_the_cluster_store() -> None:
    store = open_store("redis+cluster://127.0.0.1:1", namespace="gw1:")
    assert isinstance(store, RedisClusterStore) and store.name == "redis-cluster"
    await store.close()  # never connected: closing must still be clean


@pytest.mark.redis
async def test_admit_keys_share_one_slot_and_keys_spread(redis_cluster: RedisClusterServers) -> None:
    redis_cluster.flushall()
    store = RedisClusterStore(redis_cluster.url)
    await store.start()
    try:
        specs = (
            BucketSpec("{tb}:plan:p:k", rate=10.0, burst=5),
            BucketSpec("{tb}:method:a/dev/GET /x", rate=10.0, burst=5),
        )
        decision = await store.admit(specs, now=1000.0)
        assert decision.allowed
        for n in range(30):  # single-key records land on every master
            await store.set(f"conn:{n}", b"x")
    finally:
        await store.close()
    port = redis_cluster.ports[0]
    slots = {resp_command(port, "CLUSTER", "KEYSLOT", "portway:" + spec.key) for spec in specs}
    assert len(slots) == 1  # ADMIT_LUA's keys: one slot, one node, no CROSSSLOT
    per_node = [resp_command(each, "DBSIZE") for each in redis_cluster.ports]
    assert all(isinstance(count, int) and count > 0 for count in per_node), per_node


@pytest.mark.redis
async def test_admit_pipe_follows_a_moved_slot(redis_cluster: RedisClusterServers) -> None:
    """The pipelined admit client talks to the ``{tb}`` slot's master; pointed at a master that
    does not own it (as after a resharding or failover), the MOVED reply sends that call through
    the cluster client and the next call reopens the pipe to the right master."""
    redis_cluster.flushall()
    store = RedisClusterStore(redis_cluster.url)
    await store.start()
    specs = (BucketSpec("{tb}:stage:s", rate=0.001, burst=2),)
    try:
        assert (await store.admit(specs, now=1000.0)).allowed
        owner = store._tb_pipe
        assert owner is not None
        slot = resp_command(redis_cluster.ports[0], "CLUSTER", "KEYSLOT", "portway:{tb}")
        wrong = next(port for port in redis_cluster.ports if not _owns(port, slot))
        store._tb_pipe = RedisPipe(f"redis://127.0.0.1:{wrong}/0")
        await owner.close()
        decision = await store.admit(specs, now=1000.0)  # MOVED -> cluster client
        assert decision.allowed and decision.remaining == (0.0,)
        assert store._tb_pipe is None
        refused = await store.admit(specs, now=1000.0)  # the bucket is empty: one state, shared
        assert not refused.allowed
        assert store._tb_pipe is not None and store._tb_pipe is not owner
    finally:
        await store.close()


def _owns(port: int, slot: object) -> bool:
    assert isinstance(slot, int)
    myself = resp_command(port, "CLUSTER", "MYID")
    slots = resp_command(port, "CLUSTER", "SLOTS")
    assert isinstance(slots, list) and isinstance(myself, bytes)
    for entry in slots:
        assert isinstance(entry, list)
        low, high, master = entry[0], entry[1], entry[2]
        assert isinstance(low, int) and isinstance(high, int) and isinstance(master, list)
        if low <= slot <= high:
            return master[2] == myself
    return False
