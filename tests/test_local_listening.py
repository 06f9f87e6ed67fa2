"""The local server is handed out only once it answers HTTP: llama.cpp says it is ready a
moment before its listener accepts, and on a busy machine a connection accepted was still
reset on the first request, so the first turn was refused."""

from __future__ import annotations

import asyncio
import socket

from foundry_tui.local.server import _listening


async def test_a_connection_accepted_is_not_enough_an_answer_is() -> None:
    answering = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        if answering.is_set():  # any status will do: the probe carries no key
            writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()  # before that: accepted, then closed without a word

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, answering.set)
    try:
        await _listening(f"http://127.0.0.1:{port}", 10.0)
        assert answering.is_set()  # not on the accepted connections before it
    finally:
        server.close()
        await server.wait_closed()


async def test_gives_up_on_an_address_that_never_listens() -> None:
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))
    port = reserved.getsockname()[1]
    try:
        # Returns (the first request then explains the failure) instead of waiting forever.
        await asyncio.wait_for(_listening(f"http://127.0.0.1:{port}", 0.1), timeout=10)
    finally:
        reserved.close()
