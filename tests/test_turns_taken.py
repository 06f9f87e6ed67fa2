"""A huge reply is read in turns with the UI loop (backend.turns_taken, backend.big_json).

Through the real AsyncOpenAI against the local server: a reply of several MB in one delta
arrives faster than it can be read, so no read waits for the network and, without turns,
the loop would run nothing else until the whole event was decoded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest

from foundry_tui.backend import turns_taken
from foundry_tui.backend.client import Backend
from foundry_tui.core.models import GenerationSettings, InputMessage, MessageRole, TextDelta
from tests.responses_server import ResponsesServer
from tests.test_backend import KEY, KEY_ENV, make_profile

SETTINGS = GenerationSettings(model="gpt-4o", instructions="Answer briefly.")
HUGE = ("x" * 999 + " ") * 8_000  # 8 MB


@pytest.fixture
def server() -> Iterator[ResponsesServer]:
    with ResponsesServer(tokens_per_second=None, api_key=KEY, tokens_per_delta=10**9) as running:
        yield running


@pytest.fixture
async def backend(server: ResponsesServer) -> AsyncIterator[Backend]:
    made = Backend(make_profile(server.base_url), env={KEY_ENV: KEY}, max_retries=0)
    yield made
    await made.aclose()


async def read_reply(backend: Backend) -> str:
    """The reply's text."""
    text = []
    async for event in backend.stream_reply(
        settings=SETTINGS, input=[InputMessage(MessageRole.USER, "big")], previous_response_id=None
    ):
        if isinstance(event, TextDelta):
            text.append(event.text)
    return "".join(text)


@pytest.fixture
def bodies(monkeypatch: pytest.MonkeyPatch) -> list[turns_taken.TurnTakingStream]:
    """Every response body the client wrapped."""
    made: list[turns_taken.TurnTakingStream] = []
    original = turns_taken.TurnTakingStream.__init__

    def recorded(self: turns_taken.TurnTakingStream, body: httpx2.AsyncByteStream) -> None:
        original(self, body)
        made.append(self)

    monkeypatch.setattr(turns_taken.TurnTakingStream, "__init__", recorded)
    return made


async def test_a_huge_delta_comes_whole_through_the_body_that_takes_turns(
    server: ResponsesServer, backend: Backend, bodies: list[turns_taken.TurnTakingStream]
) -> None:
    server.queue_reply(HUGE)
    text = await read_reply(backend)
    assert text == HUGE  # every chunk passed on, in order
    assert len(bodies) == 1


class Unwaiting(httpx2.AsyncByteStream):
    """A body whose bytes are all there already: no read waits for the network."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index in range(self.chunks):
            yield b"%d," % index

    async def aclose(self) -> None:
        self.closed = True


async def beats_while_reading(body: httpx2.AsyncByteStream) -> tuple[bytes, int]:
    beats = 0
    done = False

    async def beat() -> None:
        nonlocal beats
        while not done:
            await asyncio.sleep(0)
            beats += 1

    beating = asyncio.create_task(beat())
    await asyncio.sleep(0)
    beats = 0
    read = b"".join([chunk async for chunk in body])
    counted = beats  # not the beat that ends the task
    done = True
    await beating
    return read, counted


async def test_reads_that_never_wait_let_the_loop_run_between_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(turns_taken, "TURN_EVERY", 0.0)  # a turn after every chunk
    expected = b"".join(b"%d," % index for index in range(50))
    read, beats = await beats_while_reading(Unwaiting(50))
    assert read == expected and beats == 0  # as the socket reads a fast sender's bytes
    body = Unwaiting(50)
    wrapped = turns_taken.TurnTakingStream(body)
    read, beats = await beats_while_reading(wrapped)
    assert read == expected
    assert wrapped.turns == 50 and beats >= 49
    await wrapped.aclose()
    assert body.closed


class Clock:
    """Stands in for ``time.monotonic`` in turns_taken: moved by the test alone."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


class Body(httpx2.AsyncByteStream):
    """``chunks`` chunks; each read waits ``wait`` seconds of the clock for the network."""

    def __init__(self, clock: Clock, chunks: int, wait: float) -> None:
        self.clock, self.chunks, self.wait = clock, chunks, wait

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index in range(self.chunks):
            if self.wait:
                self.clock.now += self.wait
                await asyncio.sleep(0)
            yield b"%d," % index


async def turns_taken_reading(clock: Clock, body: Body, work_per_chunk: float) -> int:
    wrapped = turns_taken.TurnTakingStream(body)
    async for _chunk in wrapped:
        clock.now += work_per_chunk  # the reader decoding the chunk
    return wrapped.turns


async def test_the_loop_gets_a_turn_only_after_holding_it_long_enough(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(turns_taken, "time", clock)
    # Small events: every read waits for the network (the loop runs then): never paused.
    assert await turns_taken_reading(clock, Body(clock, 50, wait=0.010), 0.001) == 0
    # Bytes that keep coming: 1 ms of decoding each, a turn every TURN_EVERY (5 ms).
    assert await turns_taken_reading(clock, Body(clock, 50, wait=0.0), 0.001) == 10
    # A read that waited less than WAITED did not let the loop run: it counts as busy.
    assert await turns_taken_reading(clock, Body(clock, 50, wait=0.0001), 0.001) >= 9
