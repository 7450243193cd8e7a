"""The redis-server test plugin itself: clear failure without a binary, same-port restart."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.redis_fixture import HOST, RedisServer, RedisServerError, resp_command

pytestmark = pytest.mark.redis


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, binary=str(tmp_path / "no-such-redis-server"))
    with pytest.raises(RedisServerError, match="redis-server not found"):
        server.start()


def test_restart_keeps_the_port_and_loses_the_data(redis_server: RedisServer) -> None:
    port = redis_server.port
    assert resp_command(port, "SET", "k", "v") == b"OK"
    assert resp_command(port, "CONFIG", "GET", "save") == [b"save", b""]
    redis_server.restart()
    assert redis_server.port == port and redis_server.running
    assert resp_command(port, "GET", "k") is None


def test_a_taken_port_is_not_mistaken_for_ours(tmp_path: Path) -> None:
    # Something else (here: a plain listening socket) owns the port the server is pinned to.
    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        server = RedisServer(tmp_path, port=squatter.getsockname()[1])
        with pytest.raises(RedisServerError):
            server.start(timeout=1.0)
        assert not server.running


def test_first_start_picks_another_port_on_collision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.redis_fixture as plugin

    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real_free_port = plugin.free_port
        monkeypatch.setattr(plugin, "free_port", lambda: next(ports, None) or real_free_port())
        with RedisServer(tmp_path) as server:
            assert server.port != taken
            assert resp_command(server.port, "PING") == b"PONG"


async def test_clean_url_is_empty(clean_redis_url: str) -> None:
    port = int(clean_redis_url.rsplit(":", 1)[1].split("/")[0])
    assert resp_command(port, "DBSIZE") == 0
