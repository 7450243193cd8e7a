"""Durable keys of the embedded store (``state_path``): snapshot + journal, crashes, corruption."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import stat
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server import cli
from server.store import MemoryStore, RedisStore, open_store
from server.store.base import StoreError, StoreUnavailable
from server.store.memory import DURABLE_PREFIXES
from server.throttle.admit import BucketSpec, QuotaSpec, UsageSpec
from tests.server.test_cli import EXAMPLE, ROOT, serve
from tests.store.conftest import FakeClock

QUOTA = QuotaSpec("{tb}:q:gold:k1:20261125", 5, 3600.0)
USAGE = UsageSpec("{tb}:u:gold:k1:20261125", 7200.0)
BUCKETS = (BucketSpec("{tb}:key:k1", 1000.0, 1000), BucketSpec("{tb}:acct", 1000.0, 1000))


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.json"


@pytest.fixture
async def opened() -> AsyncIterator[list[MemoryStore]]:
    """Stores opened with :func:`start`, closed at teardown."""
    stores: list[MemoryStore] = []
    yield stores
    for store in stores:
        await store.close()


async def start(state: Path, stores: list[MemoryStore], **options: Any) -> MemoryStore:
    store = MemoryStore(state_path=state, **options)
    await store.start()
    stores.append(store)
    return store


def journal(state: Path) -> Path:
    return Path(str(state) + ".journal")


# Sync helpers: the tests are coroutines, and these file operations are small and local.
def read(path: Path) -> bytes:
    return path.read_bytes()


def write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def size(path: Path) -> int:
    return path.stat().st_size


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def exists(path: Path) -> bool:
    return path.exists()


def snapshot_keys(state: Path) -> set[str]:
    return {record["k"] for record in json.loads(read(state))["keys"]}


async def test_strings_hashes_sets_and_counters_round_trip_with_ttls(
    state: Path, opened: list[MemoryStore]
) -> None:
    store = await start(state, opened)
    await store.set("pw:text", b"plain", ttl=600)
    await store.set("pw:binary", b"\xff\x00\n\x80")
    await store.hset("pw:apikey:k1", {"name": "k1", "digest": b"\x01\x02", "enabled": 1}, ttl=900)
    await store.hset("pw:apikey:k1", {"extra": "x"})
    await store.hdel("pw:apikey:k1", "extra")
    await store.sadd("pw:apikeys", "k1", "k2", "k3", "caf\u00e9")
    await store.srem("pw:apikeys", "k3")
    await store.incr("pw:keys-version")
    await store.incr("pw:keys-version", 41)
    await store.incr("{tb}:q:gold:k1:w", 3, ttl=300)
    await store.set("pw:gone", b"x")
    await store.delete("pw:gone")
    await store.sadd("pw:emptied", "m")
    await store.srem("pw:emptied", "m")
    await store.set("pw:short", b"v", ttl=1000)
    await store.expire("pw:short", 50)
    await store.close()
    assert size(journal(state)) == 0  # a clean close leaves everything in the snapshot

    again = await start(state, opened)
    assert await again.get("pw:text") == b"plain"
    assert await again.get("pw:binary") == b"\xff\x00\n\x80"
    assert await again.hgetall("pw:apikey:k1") == {"name": b"k1", "digest": b"\x01\x02", "enabled": b"1"}
    assert await again.smembers("pw:apikeys") == {"k1", "k2", "caf\u00e9"}
    assert await again.get("pw:keys-version") == b"42"
    assert await again.incr("{tb}:q:gold:k1:w") == 4
    assert await again.get("pw:gone") is None and await again.get("pw:emptied") is None
    assert await again.ttl("pw:binary") == math.inf and await again.ttl("pw:keys-version") == math.inf
    for key, ttl in (("pw:text", 600), ("pw:apikey:k1", 900), ("{tb}:q:gold:k1:w", 300), ("pw:short", 50)):
        left = await again.ttl(key)
        assert left is not None and ttl - 5 < left <= ttl, key


async def test_admit_counts_are_exact_after_close_and_reopen(state: Path, opened: list[MemoryStore]) -> None:
    store = await start(state, opened)
    decisions = [await store.admit(BUCKETS, QUOTA, now=1.0, usage=USAGE) for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    await store.close()

    again = await start(state, opened)
    assert await again.get(QUOTA.key) == b"5" and await again.get(USAGE.key) == b"5"
    refused = await again.admit(BUCKETS, QUOTA, now=2.0, usage=USAGE)
    assert not refused.allowed and refused.failed == len(BUCKETS)
    assert snapshot_keys(state) == {QUOTA.key, USAGE.key}  # buckets stay in memory
    left = await again.ttl(QUOTA.key)
    assert left is not None and 3590 < left <= 3600  # the window keeps its end


async def test_admit_writes_quota_and_usage_in_one_record_batch(
    state: Path, opened: list[MemoryStore]
) -> None:
    store = await start(state, opened)
    await store.admit(BUCKETS, QUOTA, now=1.0, usage=USAGE)
    await store.admit(BUCKETS, QuotaSpec(QUOTA.key, 0, 3600.0), now=1.0, usage=USAGE)  # refused: no write
    lines = read(journal(state)).splitlines()
    assert [json.loads(line)["k"] for line in lines] == [QUOTA.key, USAGE.key]
    assert [json.loads(line)["s"] for line in lines] == ["1", "1"]


CRASHING_CHILD = """
import asyncio, sys
from server.store.memory import MemoryStore
from server.throttle.admit import BucketSpec, QuotaSpec, UsageSpec

async def main():
    store = MemoryStore(state_path=sys.argv[1])
    await store.start()
    quota = QuotaSpec("{tb}:q:gold:k1:w", 1000, 3600.0)
    usage = UsageSpec("{tb}:u:gold:k1:d", 3600.0)
    for _ in range(250):
        await store.admit([BucketSpec("{tb}:key:k1", 1e6, 10**6)], quota, now=1.0, usage=usage)
    await store.hset("pw:apikey:k1", {"name": "one"})
    await store.sadd("pw:apikeys", "k1", "k2")
    await store.srem("pw:apikeys", "k2")
    await store.set("pw:plan:gold", b'{"quota": 1000}')
    await store.delete("pw:plan:gold")
    await store.set("conn:abc", b"not durable")
    print("answered", flush=True)
    sys.stdin.readline()  # killed while waiting: close() never runs

asyncio.run(main())
"""


async def test_every_answered_mutation_survives_sigkill(state: Path, opened: list[MemoryStore]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_CHILD,
        str(state),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            assert await proc.stdout.readline() == b"answered\n"
    finally:
        proc.kill()
        await proc.wait()
    assert size(journal(state)) > 0  # nothing compacted it: the journal is replayed

    store = await start(state, opened)
    assert await store.get("{tb}:q:gold:k1:w") == b"250"
    assert await store.get("{tb}:u:gold:k1:d") == b"250"
    assert await store.hgetall("pw:apikey:k1") == {"name": b"one"}
    assert await store.smembers("pw:apikeys") == {"k1"}
    assert await store.get("pw:plan:gold") is None
    assert await store.get("conn:abc") is None
    assert await store.get("{tb}:key:k1") is None
    assert size(journal(state)) == 0  # start() compacted it into the snapshot


async def test_a_second_store_on_the_same_files_is_refused(state: Path, opened: list[MemoryStore]) -> None:
    first = await start(state, opened)
    await first.incr("pw:n")
    with pytest.raises(StoreError, match="in use"):
        await start(state, opened)
    await first.close()  # releases the lock
    assert await (await start(state, opened)).get("pw:n") == b"1"


async def test_a_torn_last_journal_line_is_ignored_with_a_warning(
    state: Path, opened: list[MemoryStore], caplog: pytest.LogCaptureFixture
) -> None:
    store = await start(state, opened)
    await store.set("pw:a", b"1")
    await store.close()
    # What a process killed mid-write leaves: a whole record, then part of one.
    write(journal(state), b'{"k":"pw:b","x":null,"s":"2"}\n{"k":"pw:c","x":null,"s":"tor')
    with caplog.at_level(logging.WARNING, logger="portway.store"):
        again = await start(state, opened)
    assert "torn last record" in caplog.text
    assert await again.get("pw:a") == b"1" and await again.get("pw:b") == b"2"
    assert await again.get("pw:c") is None
    assert size(journal(state)) == 0 and snapshot_keys(state) == {"pw:a", "pw:b"}


async def test_a_corrupt_journal_line_before_the_last_is_an_error(
    state: Path, opened: list[MemoryStore]
) -> None:
    store = await start(state, opened)
    await store.close()
    write(journal(state), b'{"k":"pw:a","x":null,"s":"1"}\ngarbage\n{"k":"pw:b","x":null,"s":"2"}\n')
    with pytest.raises(StoreError, match=r"line 2 is corrupt") as info:
        await start(state, opened)
    assert str(journal(state)) in str(info.value)


async def test_keys_expired_while_stopped_are_dropped_on_load(state: Path, opened: list[MemoryStore]) -> None:
    store = await start(state, opened)
    await store.close()
    now = time.time()
    records = [
        {"k": "pw:old", "x": now - 5, "s": "gone"},
        {"k": "{tb}:q:gold:k1:yesterday", "x": now - 0.001, "s": "9"},
        {"k": "pw:fresh", "x": now + 100, "s": "kept"},
    ]
    write(journal(state), b"".join(json.dumps(r).encode() + b"\n" for r in records))
    again = await start(state, opened)
    assert await again.get("pw:old") is None and await again.get("{tb}:q:gold:k1:yesterday") is None
    assert await again.get("pw:fresh") == b"kept"
    assert snapshot_keys(state) == {"pw:fresh"}


async def test_ttls_run_on_the_injected_clock_after_load(state: Path, opened: list[MemoryStore]) -> None:
    clock = FakeClock(5.0)
    store = await start(state, opened, clock=clock)
    await store.set("pw:t", b"v", ttl=30)
    clock.advance(20)  # the wall clock did not move: 10 s are left when saved
    await store.close()
    again_clock = FakeClock(123_456.0)
    again = await start(state, opened, clock=again_clock)
    left = await again.ttl("pw:t")
    assert left is not None and 9 < left <= 10
    again_clock.advance(10)
    assert await again.get("pw:t") is None


async def test_non_durable_keys_are_not_persisted(state: Path, opened: list[MemoryStore]) -> None:
    store = await start(state, opened)
    await store.set("conn:1", b"x")
    await store.hset("ws:conn:1", {"node": "n1"})
    await store.sadd("ws:stage:dev", "c1")
    await store.incr("{tb}:other:counter")
    await store.take("{tb}:acct", rate=1.0, burst=5, now=1.0)
    await store.admit(BUCKETS, now=1.0)
    await store.take("pw:misused-bucket", rate=1.0, burst=5, now=1.0)  # a bucket is never saved
    assert all(json.loads(line)["k"] == "pw:misused-bucket" for line in read(journal(state)).splitlines())
    await store.close()
    assert snapshot_keys(state) == set()
    again = await start(state, opened)
    assert await again.get("conn:1") is None and await again.scard("ws:stage:dev") == 0
    assert await again.ttl("pw:misused-bucket") is None


async def test_durable_prefixes_can_be_chosen(state: Path, opened: list[MemoryStore]) -> None:
    assert DURABLE_PREFIXES == ("{tb}:q:", "{tb}:u:", "pw:")
    store = await start(state, opened, durable_prefixes=("keep:",))
    await store.set("keep:a", b"1")
    await store.set("pw:a", b"2")
    await store.close()
    again = await start(state, opened, durable_prefixes=("keep:",))
    assert await again.get("keep:a") == b"1" and await again.get("pw:a") is None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b'{"portway_state": 99, "keys": []}',
        b'{"portway_state": 1, "keys": [{"k": 1}]}',
        b"[]",
    ],
)
async def test_a_corrupt_snapshot_is_an_error_naming_the_file(state: Path, content: bytes) -> None:
    write(state, content)
    store = MemoryStore(state_path=state)
    with pytest.raises(StoreError, match="corrupt") as info:
        await store.start()
    assert str(state) in str(info.value) and not isinstance(info.value, StoreUnavailable)
    assert read(state) == content  # left alone for the operator
    await store.close()


async def test_an_unreadable_snapshot_is_an_error(state: Path, opened: list[MemoryStore]) -> None:
    os.mkdir(state)  # reading a directory fails like an unreadable file would
    with pytest.raises(StoreError, match="cannot read state file") as info:
        await start(state, opened)
    assert str(state) in str(info.value)


async def test_files_are_created_with_mode_0600(state: Path, opened: list[MemoryStore]) -> None:
    previous = os.umask(0)
    try:
        store = await start(state, opened)
        await store.hset("pw:apikey:k1", {"digest": "abc"})
        await store.close()
    finally:
        os.umask(previous)
    for path in (state, journal(state)):
        assert mode(path) == 0o600, path


async def test_the_journal_is_compacted_when_it_outgrows_its_limit(
    state: Path, opened: list[MemoryStore]
) -> None:
    store = await start(state, opened)
    assert store._state is not None
    store._state.journal_limit = store._state._compact_at = 4096
    for i in range(500):
        await store.incr(f"pw:n{i % 7}")
    assert size(journal(state)) <= 4096 + 200
    assert len(snapshot_keys(state)) == 7  # written by a compaction, not by close()
    proc_killed_copy = read(journal(state))
    await store.close()
    write(journal(state), proc_killed_copy)  # replaying an already-compacted tail is idempotent
    again = await start(state, opened)
    assert [await again.get(f"pw:n{i}") for i in range(7)] == [
        str(len(range(i, 500, 7))).encode() for i in range(7)
    ]


async def test_durable_writes_before_start_are_refused(state: Path) -> None:
    store = MemoryStore(state_path=state)
    await store.set("conn:1", b"x")  # memory only: fine
    with pytest.raises(StoreUnavailable, match="start"):
        await store.set("pw:a", b"x")
    await store.close()
    assert not exists(state)  # never loaded: close writes nothing


async def test_without_a_state_path_there_is_no_persistence(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.start()
    await store.admit(BUCKETS, QUOTA, now=1.0, usage=USAGE)
    await store.close()
    assert store._state is None and os.listdir(tmp_path) == []


async def test_open_store_passes_the_state_path_to_the_embedded_store_only(state: Path) -> None:
    embedded = open_store(None, state_path=state)
    assert isinstance(embedded, MemoryStore) and embedded._state is not None
    await embedded.start()
    await embedded.close()
    assert exists(state)
    redis = open_store("redis://127.0.0.1:1/0", state_path=state)
    assert isinstance(redis, RedisStore)
    await redis.close()


def test_cli_warns_that_the_state_file_is_ignored_with_redis(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    seen: list[object] = []

    async def fake_serve(args: object, config: object) -> None:
        seen.append(args)

    monkeypatch.setattr(cli, "_serve", fake_serve)
    state = tmp_path / "s.json"
    config = str(EXAMPLE / "portway.yaml")
    with caplog.at_level(logging.WARNING, logger="portway"):
        assert (
            cli.main(["serve", config, "--redis-url", "redis://127.0.0.1:1/0", "--state-file", str(state)])
            == 0
        )
    assert "--state-file" in caplog.text and "ignored" in caplog.text
    assert getattr(seen[-1], "state_file") is None  # noqa: B009
    monkeypatch.setenv("PORTWAY_STATE_FILE", str(state))
    caplog.clear()
    assert cli.main(["serve", config]) == 0
    assert getattr(seen[-1], "state_file") == state  # noqa: B009
    assert "ignored" not in caplog.text


async def gateway_killed_once_listening(state: Path) -> None:
    """Run ``portway serve --state-file`` and SIGKILL it as soon as it listens."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        str(EXAMPLE / "portway.yaml"),
        "--port",
        "0",
        "--state-file",
        str(state),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            while b"listening on" not in (line := await proc.stdout.readline()):
                assert line, "the gateway exited before listening"
    finally:
        proc.kill()
        await proc.wait()


async def test_gateway_process_keeps_its_state_file_across_restarts_and_kills(state: Path) -> None:
    """Each start of the gateway bumps ``pw:keys-version`` once (the key registry's seeding; the
    example's declared key adds one more, when it is first created): three starts, the second
    SIGKILLed, leave 4 (the killed run's increment was journaled). The declared key is created
    once and kept: its record survives both restarts."""
    expiry = time.time() + 3600
    seeded = [
        {"k": "{tb}:q:gold:k1:w", "x": expiry, "s": "17"},
        {"k": "pw:marker", "x": None, "m": ["a", "b"]},
        {"k": "{tb}:key:k1", "x": None, "s": "not durable"},
    ]
    write(state, json.dumps({"portway_state": 1, "saved_at": time.time(), "keys": seeded}).encode())
    for run in range(3):
        if run == 1:
            await gateway_killed_once_listening(state)
            assert size(journal(state)) > 0  # no clean stop: only the journal has the bump
            continue
        async with serve(EXAMPLE / "portway.yaml", "--state-file", str(state)) as base:
            # Answered once the signal handlers are installed (so SIGTERM stops it cleanly).
            async with aiohttp.ClientSession() as http, http.get(f"{base}/dev/health") as resp:
                assert resp.status == 200
            assert mode(state) == 0o600  # rewritten at start
        assert size(journal(state)) == 0  # a clean stop leaves everything in the snapshot
    records = {r["k"]: r for r in json.loads(read(state))["keys"]}
    assert records["pw:keys-version"]["s"] == "4"
    assert sum(1 for key in records if key.startswith("pw:apikey:")) == 1
    assert records["{tb}:q:gold:k1:w"]["s"] == "17" and abs(records["{tb}:q:gold:k1:w"]["x"] - expiry) < 1
    assert sorted(records["pw:marker"]["m"]) == ["a", "b"]
    assert "{tb}:key:k1" not in records


async def test_gateway_process_refuses_a_corrupt_state_file(state: Path) -> None:
    write(state, b"{ truncated")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        str(EXAMPLE / "portway.yaml"),
        "--port",
        "0",
        "--state-file",
        str(state),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PORTWAY_REDIS_URL": ""},
    )
    async with asyncio.timeout(20):
        output, _ = await proc.communicate()
    assert proc.returncode == 1
    text = output.decode()
    assert f"portway: state file {state} is corrupt" in text and "Traceback" not in text
