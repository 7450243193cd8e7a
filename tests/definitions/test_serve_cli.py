"""``portway serve petstore.yaml --bindings FILE``: the CLI serves an OpenAPI document as a process."""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from tests.definitions.test_openapi_petstore import PETSTORE, petstore_backend
from tests.server.live import gateway_process

Server = Callable[..., Awaitable[TestServer]]


async def test_portway_serve_openapi_with_bindings(tmp_path: Path, aiohttp_server: Server) -> None:
    backend = await aiohttp_server(petstore_backend())
    bindings = tmp_path / "bindings.yaml"
    bindings.write_text(
        textwrap.dedent(
            f"""\
            functions:
              AdoptPet: {{handler: adopt.handler, codeUri: {PETSTORE.parent / "src"}}}
            endpoints:
              http://petstore.execute-api.us-east-1.amazonaws.com: http://127.0.0.1:{backend.port}
            """
        )
    )
    async with (
        gateway_process(PETSTORE, "--bindings", str(bindings), "--quiet") as served,
        aiohttp.ClientSession() as http,
    ):
        base = f"http://127.0.0.1:{served.port}/test"
        async with http.get(f"{base}/pets/1") as one:
            assert (one.status, (await one.json())["type"]) == (200, "dog")
        async with http.get(f"{base}/") as root:
            assert "Welcome to your Pet Store API" in await root.text()
