"""The frame rules: a pure scanner over arbitrarily cut byte streams (frame size, masking), and the
live closes (1009 for a frame over 32 KB)."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from connections.core import FRAME_TOO_BIG, UNMASKED
from connections.frames import FrameScanner
from server.config.model import WebSocketSettings
from tests.connections.conftest import GatewayFactory, chat_api, ws_url


def frame(length: int, *, masked: bool = True, opcode: int = 0x1) -> bytes:
    if length < 126:
        header = bytes([0x80 | opcode, (0x80 if masked else 0) | length])
    elif length < 65536:
        header = bytes([0x80 | opcode, (0x80 if masked else 0) | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, (0x80 if masked else 0) | 127]) + length.to_bytes(8, "big")
    return header + (b"\x01\x02\x03\x04" if masked else b"") + b"x" * length


def run(scanner: FrameScanner, stream: bytes, cuts: list[int]) -> tuple[int, bool]:
    """Feed `stream` cut at `cuts` the way FrameGuard does; return (bytes forwarded, tripped)."""
    held, forwarded, start = b"", 0, 0
    for end in [*sorted(set(cuts)), len(stream)]:
        chunk = held + stream[start:end]
        start = end
        safe, close = scanner.scan(chunk)
        if close is not None:
            assert close == FRAME_TOO_BIG
            return forwarded + safe, True
        forwarded += safe
        held = chunk[safe:]
    return forwarded, False


@given(
    st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=8),
    st.lists(st.integers(min_value=0, max_value=3000), max_size=10),
    st.booleans(),
)
def test_scanner_finds_exactly_the_first_oversized_frame(
    lengths: list[int], cuts: list[int], unmasked_last: bool
) -> None:
    limit = 200
    frames = [frame(n) for n in lengths]
    stream = b"".join(frames)
    cuts = [c for c in cuts if c <= len(stream)]
    forwarded, tripped = run(FrameScanner(limit), stream, cuts)
    first_bad = next((i for i, n in enumerate(lengths) if n > limit), None)
    if first_bad is None:
        assert (forwarded, tripped) == (len(stream), False)
    else:
        assert tripped and forwarded == sum(len(f) for f in frames[:first_bad])
    if unmasked_last and first_bad is None:  # RFC 6455 §5.1: a client frame must be masked
        scanner = FrameScanner(limit)
        assert scanner.scan(stream + frame(3, masked=False)) == (len(stream), UNMASKED)


def test_scanner_handles_64_bit_lengths() -> None:
    assert FrameScanner(32 * 1024).scan(frame(70_000)[:14]) == (0, FRAME_TOO_BIG)
    assert FrameScanner(100_000).scan(frame(70_000)) == (len(frame(70_000)), None)


async def test_frame_over_32kb_closes_1009(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api(WebSocketSettings(max_frame_bytes=32 * 1024)))
    async with websockets.connect(ws_url(server), max_size=None) as ws:
        ok = "y" * (32 * 1024)
        await ws.send(ok)  # exactly one frame at the limit
        assert await ws.recv() == "default:" + ok
        await ws.send("z" * (32 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(5):
                await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_fragmented_message_within_message_limit_is_accepted(ws_gateway: GatewayFactory) -> None:
    server = await ws_gateway(chat_api(WebSocketSettings(max_frame_bytes=32 * 1024)))
    async with websockets.connect(ws_url(server), max_size=None) as ws:
        parts = ["a" * (32 * 1024)] * 3  # 96 KB message in three 32 KB frames: AWS accepts it
        await ws.send(parts)
        assert await ws.recv() == "default:" + "".join(parts)
