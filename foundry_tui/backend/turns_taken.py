"""A response body read in turns with the UI loop.

While bytes keep arriving, reading a socket never suspends: each read finds data waiting
and returns at once. A reply of tens of MB in one event is then read, 64 kB after 64 kB
through the SDK's event decoder, for a whole second without the UI loop getting a turn:
the keys typed meanwhile waited up to half a second. ``take_turns``, an httpx2 response
hook, wraps the body so that the loop gets a turn once the reading has held it for
TURN_EVERY. A stream of small events suspends between them anyway and is never paused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2

# How long the reading of a body may hold the loop before it lets it run once.
TURN_EVERY = 0.005
# A read that took this long waited for the network: the loop ran other work meanwhile.
WAITED = 0.0005


class TurnTakingStream(httpx2.AsyncByteStream):
    def __init__(self, body: httpx2.AsyncByteStream) -> None:
        self._body = body
        self.turns = 0  # how often the reading let the loop run (for tests)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._body.__aiter__()
        busy_since = time.monotonic()
        while True:
            asked = time.monotonic()
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            if time.monotonic() - asked > WAITED:
                busy_since = time.monotonic()
            yield chunk  # back here once the reader has dealt with the chunk
            if time.monotonic() - busy_since >= TURN_EVERY:
                self.turns += 1
                await asyncio.sleep(0)
                busy_since = time.monotonic()

    async def aclose(self) -> None:
        await self._body.aclose()


async def take_turns(response: Any) -> None:
    """The httpx2 response hook: the body, when read, gives the loop its turns."""
    if isinstance(response.stream, httpx2.AsyncByteStream):
        response.stream = TurnTakingStream(response.stream)
