"""One aiobotocore client per (service, region, endpoint) per process, opened before serving.

Clients hold a connection pool and resolved credentials (the standard chain: environment, shared
files, container/instance metadata); building one per request would redo both. The app opens every
client its routes need in a ``cleanup_ctx`` and closes them on shutdown.
"""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

__all__ = ["ENDPOINT_ENV", "AwsClients", "ClientKey", "default_endpoint"]

ENDPOINT_ENV = "PORTWAY_AWS_ENDPOINT_URL"  # one endpoint for every AWS call (LocalStack, moto, ...)

ClientKey = tuple[str, str, str | None]  # (service, region, endpoint_url)

# No SDK retries: API Gateway calls its integration once, and the integration timeout (not
# botocore's read timeout) bounds the call, so botocore's own timeouts sit above the 29 s maximum.
_CLIENT_CONFIG = AioConfig(
    retries={"total_max_attempts": 1, "mode": "standard"},
    connect_timeout=10,
    read_timeout=60,
)


def default_endpoint() -> str | None:
    return os.environ.get(ENDPOINT_ENV) or None


class AwsClients:
    """Open with :meth:`open` (every client at once, before serving), then :meth:`get` by key."""

    def __init__(self) -> None:
        self._stack = AsyncExitStack()
        self._clients: dict[ClientKey, Any] = {}

    async def open(self, keys: set[ClientKey]) -> None:
        session = get_session()
        for key in sorted(keys, key=repr):
            if key in self._clients:
                continue
            service, region, endpoint = key
            creator = session.create_client(
                service, region_name=region, endpoint_url=endpoint, config=_CLIENT_CONFIG
            )
            self._clients[key] = await self._stack.enter_async_context(creator)

    def get(self, key: ClientKey) -> Any:
        return self._clients[key]

    def __len__(self) -> int:
        return len(self._clients)

    async def close(self) -> None:
        self._clients.clear()
        await self._stack.aclose()
