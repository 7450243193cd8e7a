"""Runtime API functions behind a real ``portway serve`` of a serverless.yml: a nodejs20.x handler
(Portway's Node shim) on REST and WebSocket routes, a provided.al2023 ``bootstrap``, and AWS's
error shapes for a thrown error (502) and a timeout (504)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import websockets

from server.config.errors import ConfigError
from server.config.load import load_config
from tests.projects.conftest import serve_project

PROJECT = Path(__file__).parent / "runtimes" / "project" / "serverless.yml"


async def test_node_and_custom_runtimes_behind_rest_and_websocket() -> None:
    async with serve_project(PROJECT, {}) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/dev/hello/ada") as resp:
            assert resp.status == 200
            assert await resp.json() == {"name": "ada", "stage": "dev", "runtime": "AWS_Lambda_nodejs20.x"}
        async with http.get(f"{base}/v2/hello/bob") as resp:  # HTTP API, payload 2.0
            assert resp.status == 200
            assert await resp.json() == {
                "name": "bob",
                "stage": "$default",
                "runtime": "AWS_Lambda_nodejs20.x",
            }
        async with http.get(f"{base}/dev/custom") as resp:
            assert resp.status == 201
            assert await resp.json() == {"path": "/custom", "handler": "function.handler"}
        async with http.get(f"{base}/dev/fails") as resp:  # aws-contract.md: unhandled error -> 502
            assert resp.status == 502
            assert await resp.json() == {"message": "Internal server error"}
        async with http.get(f"{base}/dev/slow") as resp:  # timeout: 1 -> 504
            assert resp.status == 504
            assert await resp.json() == {"message": "Endpoint request timed out"}
        async with websockets.connect(base.replace("http://", "ws://") + "/dev") as ws:
            await ws.send("hi")
            async with asyncio.timeout(20):
                assert await ws.recv() == "echo:$default:hi"


def test_missing_bootstrap_is_a_load_time_error(tmp_path: Path) -> None:
    (tmp_path / "serverless.yml").write_text(
        "service: s\nprovider: {name: aws, runtime: provided.al2023}\n"
        "functions:\n  f:\n    handler: x.y\n    events: [{http: {path: a, method: get}}]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "serverless.yml", env={})
    assert [(issue.location, issue.message) for issue in info.value.issues] == [
        ("functions.f.runtime", f"runtime provided.al2023: no bootstrap in {tmp_path}")
    ]
