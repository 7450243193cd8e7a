"""Serve a project folder (its serverless.yml or portway.yaml) on port 0 for a test."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.config.load import load_config
from server.config.model import GatewayConfig

PROJECTS = Path(__file__).parent / "projects"


def copy_project(name: str, into: Path) -> Path:
    """A private copy: handlers write files in their task root, and caches go beside the config."""
    target = into / name
    shutil.copytree(PROJECTS / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@contextlib.asynccontextmanager
async def serving(config: GatewayConfig, **options: Any) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    client = TestClient(TestServer(create_app(config, **options), host="127.0.0.1", port=0))
    try:
        await client.start_server()
        yield client
    finally:
        await client.close()


def load(path: Path) -> GatewayConfig:
    return load_config(path, env={})
