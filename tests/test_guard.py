"""The loopback guard in conftest must fail loudly, or every 'loopback only' claim is hollow."""

import asyncio
import socket

import pytest


def test_guard_refuses_other_hosts() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(AssertionError, match="off the loopback"):
            sock.connect(("192.0.2.1", 80))
    finally:
        sock.close()


async def test_guard_refuses_other_hosts_from_asyncio() -> None:
    with pytest.raises(AssertionError, match="off the loopback"):
        await asyncio.open_connection("192.0.2.1", 80)
