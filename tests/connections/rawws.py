"""A raw WebSocket client over a plain socket, for frames no well-behaved client library sends
(unmasked frames, ping floods) and for a client that never answers a close."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from types import TracebackType

__all__ = ["RawClient", "client_frame"]


def client_frame(opcode: int, payload: bytes, *, masked: bool = True, fin: bool = True) -> bytes:
    """One client frame (masked unless told otherwise, as RFC 6455 requires of clients)."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header = bytes([first, mask_bit | length])
    elif length < 65536:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", length)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", length)
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawClient:
    """``async with RawClient(port, "/dev") as ws``: the handshake done, frames in and out."""

    def __init__(self, port: int, path: str = "/dev") -> None:
        self.port, self.path = port, path
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawClient:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        async with asyncio.timeout(5):
            head = await self.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()

    def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    async def drain(self) -> None:
        assert self.writer is not None
        # The server may have failed the connection already: what the caller wants to see next.
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def recv_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame; raises IncompleteReadError on EOF."""
        assert self.reader is not None
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def recv_close(self, within: float = 5.0) -> tuple[int, str]:
        """Skip frames up to the server's close frame: its (code, reason)."""
        async with asyncio.timeout(within):
            while True:
                opcode, payload = await self.recv_frame()
                if opcode == 0x8:
                    return int.from_bytes(payload[:2], "big"), payload[2:].decode()

    async def at_eof(self, within: float = 5.0) -> bool:
        """True once the server closed TCP (anything still sent is read and dropped)."""
        assert self.reader is not None
        async with asyncio.timeout(within):
            while await self.reader.read(65536):
                pass
        return True
