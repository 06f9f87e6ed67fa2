"""The local server is handed out only once its listener accepts connections: llama.cpp
says it is ready a moment before, and on a busy machine the first turn was refused."""

from __future__ import annotations

import asyncio
import socket

from foundry_tui.local.server import _listening


async def test_waits_until_the_address_accepts_a_connection() -> None:
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))  # the port is taken, but nothing listens yet
    port = reserved.getsockname()[1]
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, reserved.listen)
    try:
        await _listening(f"http://127.0.0.1:{port}", 10.0)
        # Listening by the time it returned: a connection now goes through.
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await writer.wait_closed()
    finally:
        reserved.close()


async def test_gives_up_on_an_address_that_never_listens() -> None:
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))
    port = reserved.getsockname()[1]
    try:
        # Returns (the first request then explains the failure) instead of waiting forever.
        await asyncio.wait_for(_listening(f"http://127.0.0.1:{port}", 0.1), timeout=10)
    finally:
        reserved.close()
