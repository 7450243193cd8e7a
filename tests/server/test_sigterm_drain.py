"""SIGTERM to a real ``portway serve`` process (what ``docker stop`` and Kubernetes send, through
tini): every WebSocket client gets close code 1001 and its ``$disconnect`` runs before the
process exits 0. The handlers (tests/cluster/handlers/cluster_ws.py) append every ``$connect``
and ``$disconnect`` to a file, so the events of the child process are visible here."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.cluster.conftest import TIMINGS, config_yaml
from tests.cluster.handlers.cluster_ws import EVENTS_ENV
from tests.server.live import gateway_process

CLIENTS = 3


async def test_sigterm_closes_websockets_with_1001_and_runs_disconnect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(EVENTS_ENV, str(events))
    config = tmp_path / "portway.yaml"
    config.write_text(config_yaml(TIMINGS))
    async with gateway_process(config, "--quiet") as served:
        url = f"ws://127.0.0.1:{served.port}/dev"
        clients = [await websockets.connect(url, open_timeout=5, close_timeout=2) for _ in range(CLIENTS)]
        ids = []
        for ws in clients:
            await ws.send('{"action":"whoami"}')
            async with asyncio.timeout(5):
                ids.append(json.loads(await ws.recv())["connectionId"])
        served.proc.send_signal(signal.SIGTERM)
        codes = []
        for ws in clients:
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    await ws.recv()
            assert closed.value.rcvd is not None
            codes.append(closed.value.rcvd.code)
        async with asyncio.timeout(15):
            assert await served.proc.wait() == 0
        output = (await served.output).decode()
    assert codes == [1001] * CLIENTS
    assert "Traceback" not in output, output
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    disconnects = {line["id"]: line["code"] for line in lines if line["route"] == "$disconnect"}
    assert disconnects == {cid: 1001 for cid in ids}
