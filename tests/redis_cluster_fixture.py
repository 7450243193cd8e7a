"""pytest plugin: a real local Redis Cluster of three masters (loaded from tests/conftest.py).

Fixtures:

* ``redis_cluster_url`` (session): ``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3``,
  three ``redis-server --cluster-enabled yes`` on free loopback ports joined by
  ``redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes``;
* ``clean_redis_cluster_url`` (function): the same URL after FLUSHALL on every master.

Like tests/redis_fixture.py, a missing binary fails the test with a clear message.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_fixture import HOST, RedisReplyError, RedisServer, RedisServerError, resp_command

__all__ = ["RedisClusterServers", "clean_redis_cluster_url", "redis_cluster_url"]

_MASTERS = 3


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _cluster_port(taken: list[int]) -> int:
    """A free port P with P + 10000 free too (the cluster bus port) and P <= 55535, as
    redis-server requires in cluster mode (the OS's free ports are often above that)."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.randint(20000, 55535)
        if port not in taken and port + 10000 not in taken and _free(port) and _free(port + 10000):
            return port
    raise RedisServerError("no free port pair (P, P + 10000) for a cluster node")


class RedisClusterServers:
    """Three cluster-enabled servers, joined into one cluster covering all 16,384 slots."""

    def __init__(self, directory: Path) -> None:
        ports: list[int] = []
        for _ in range(_MASTERS):
            ports.append(_cluster_port(taken=ports))
        self.servers = [
            RedisServer(
                directory / f"node{i}",
                port=port,
                extra_args=("--cluster-enabled", "yes", "--cluster-node-timeout", "2000"),
            )
            for i, port in enumerate(ports)
        ]

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{port}" for port in self.ports)

    def start(self, timeout: float = 30.0) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RedisServerError("redis-cli not found on PATH (apt-get install redis-tools)")
        for server in self.servers:
            server.directory.mkdir(parents=True, exist_ok=True)
            server.start()
        nodes = [f"{HOST}:{port}" for port in self.ports]
        created = subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if created.returncode != 0:
            raise RedisServerError(f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}")
        # Every node must see the whole cluster before clients connect (poll, bounded).
        deadline = time.monotonic() + timeout
        while not all(self._ready(port) for port in self.ports):
            if time.monotonic() >= deadline:
                raise RedisServerError("the cluster did not reach cluster_state:ok in time")
            time.sleep(0.05)

    @staticmethod
    def _ready(port: int) -> bool:
        try:
            info = resp_command(port, "CLUSTER", "INFO")
        except (OSError, RedisReplyError):
            return False
        return isinstance(info, bytes) and b"cluster_state:ok" in info and b"cluster_known_nodes:3" in info

    def flushall(self) -> None:
        for port in self.ports:
            resp_command(port, "FLUSHALL")

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
    except RedisServerError as exc:
        cluster.stop()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: RedisClusterServers) -> str:
    return redis_cluster.url


@pytest.fixture
def clean_redis_cluster_url(redis_cluster: RedisClusterServers) -> str:
    """``redis_cluster_url`` after FLUSHALL on every master: each test starts empty."""
    redis_cluster.flushall()
    return redis_cluster.url
