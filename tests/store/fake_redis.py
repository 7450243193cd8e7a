"""A misbehaving Redis on 127.0.0.1: answers every data command with one fixed reply, or never.

Used to drive the Redis store into states a real server reaches only with effort (loading a
big dataset, read-only replica after failover, a stalled process). The connection handshake
(CLIENT SETNAME / SETINFO / HELLO) is acknowledged normally so the reply under test reaches
the command itself.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

__all__ = ["FakeRedis"]

_HANDSHAKE = (b"CLIENT", b"HELLO", b"SELECT")


class FakeRedis:
    """``async with FakeRedis(b"-LOADING ...\\r\\n") as fake:`` then connect to ``fake.url``.

    ``reply=None`` reads commands but never answers them (a stalled server).
    """

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.commands: list[list[bytes]] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                command = await _read_command(reader)
                if command is None:
                    return
                self.commands.append(command)
                if command[0].upper() in _HANDSHAKE:
                    writer.write(b"+OK\r\n")
                elif self.reply is not None:
                    writer.write(self.reply)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()


async def _read_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    header = await reader.readline()
    if not header:
        return None
    if not header.startswith(b"*"):
        return header.split()  # inline command
    parts = []
    for _ in range(int(header[1:])):
        size = int((await reader.readline())[1:])
        parts.append((await reader.readexactly(size + 2))[:-2])
    return parts
