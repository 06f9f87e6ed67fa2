"""The numbers of a turn: cached input and reasoning tokens read from the server's usage
(the SDK client and the lean transport alike), the time to first token and the stream's
duration saved with the reply, and the conversation's sums. Real SDK, real HTTP, against
the local Responses server."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Collection, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.backend.lean import LeanBackend
from foundry_tui.core.coerce import USAGE_NOTE
from foundry_tui.core.models import (
    BackendEvent,
    GenerationSettings,
    InputMessage,
    Message,
    MessageRole,
    MessageStatus,
    Profile,
    ReasoningDelta,
    ResponseFinished,
    ResponseStarted,
    TextDelta,
    Usage,
)
from foundry_tui.core.session import ChatSession, TurnEnded, import_from_server
from foundry_tui.core.usage import speed_of, turn_figures
from foundry_tui.store import Store
from tests.helpers import KEY_VARIABLE, TEST_KEY, write_config
from tests.responses_server import Fault, ResponsesServer, count_tokens

SETTINGS = GenerationSettings(model="gpt-4o")
TRANSPORTS = {"sdk": Backend, "lean": LeanBackend}


@pytest.fixture
def profile(tmp_path: Path, server: ResponsesServer) -> Profile:
    found = write_config(tmp_path, server.base_url).active_profile()
    assert found is not None
    return found


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "numbers.db") as opened:
        yield opened


async def turn(session: ChatSession, prompt: str) -> TurnEnded:
    ended = [event async for event in session.send(prompt) if isinstance(event, TurnEnded)]
    assert len(ended) == 1
    return ended[0]


async def finished_of(backend: Any) -> ResponseFinished:
    events = [
        event
        async for event in backend.stream_reply(
            settings=SETTINGS,
            input=[InputMessage(MessageRole.USER, "count me")],
            previous_response_id=None,
        )
    ]
    last = events[-1]
    assert isinstance(last, ResponseFinished)
    return last


# -- counts read and saved ---------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS, ids=list(TRANSPORTS))
async def test_a_chained_turn_saves_its_cached_and_reasoning_tokens_and_the_sums(
    profile: Profile, store: Store, server: ResponsesServer, transport: str
) -> None:
    backend = TRANSPORTS[transport](profile, max_retries=0)
    session = await ChatSession.start_new(store, backend, profile="test", settings=SETTINGS)
    first = await turn(session, "alpha beta")
    second = await turn(session, "gamma")
    # The server counts the earlier turn a chained request builds on as cached.
    earlier = count_tokens("alpha beta") + count_tokens("You said: alpha beta")
    assert first.reply.usage.cached_input_tokens == 0
    assert first.reply.usage.reasoning_tokens == 0
    assert second.reply.usage.cached_input_tokens == earlier
    assert second.reply.usage.input_tokens == earlier + count_tokens("gamma")
    assert second.reply.usage.reasoning_tokens == 0
    # Saved, not only passed along.
    saved = store.get_message(second.reply.id)
    assert saved is not None and saved.usage == second.reply.usage
    # The conversation's sums over the transcript, all five, as the turn reports them.
    one, two = first.reply.usage, second.reply.usage
    assert second.conversation_usage == Usage(
        input_tokens=(one.input_tokens or 0) + (two.input_tokens or 0),
        output_tokens=(one.output_tokens or 0) + (two.output_tokens or 0),
        total_tokens=(one.total_tokens or 0) + (two.total_tokens or 0),
        cached_input_tokens=earlier,
        reasoning_tokens=0,
    )
    assert server.schema_errors == []


async def test_a_repeated_prompt_cache_key_counts_the_repeated_prefix_as_cached(
    server: ResponsesServer,
) -> None:
    """The test server's cache: deterministic, so the tests above and below can assert."""
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=TEST_KEY, max_retries=0)
    first_input = [{"role": "user", "content": "one two three"}]
    first = await client.responses.create(
        model="gpt-4o", input=first_input, prompt_cache_key="conv-1"
    )
    replay = [
        *first_input,
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "four"},
    ]
    again = await client.responses.create(model="gpt-4o", input=replay, prompt_cache_key="conv-1")
    other = await client.responses.create(model="gpt-4o", input=replay, prompt_cache_key="conv-2")
    await client.close()
    assert first.usage is not None and again.usage is not None and other.usage is not None
    assert first.usage.input_tokens_details.cached_tokens == 0
    repeated = count_tokens("one two three") + count_tokens(first.output_text)
    assert again.usage.input_tokens_details.cached_tokens == repeated
    assert again.usage.input_tokens == repeated + count_tokens("four")
    assert other.usage.input_tokens_details.cached_tokens == 0
    assert again.usage.output_tokens_details.reasoning_tokens == 0
    assert server.schema_errors == []


# What the server sends in place of the usage's details; the (cached, reasoning) counts
# kept (the sound server's are 0 and 0); whether the reply says counts were dropped.
ODD_DETAILS: dict[str, tuple[dict[str, Any], tuple[int | None, int | None], bool]] = {
    "cached a string": ({"input_tokens_details": {"cached_tokens": "12"}}, (None, 0), True),
    "reasoning 10**30": (
        {"output_tokens_details": {"reasoning_tokens": 10**30}},
        (0, None),
        True,
    ),
    "reasoning negative": ({"output_tokens_details": {"reasoning_tokens": -1}}, (0, None), True),
    "details a string": ({"input_tokens_details": "lots"}, (None, 0), True),
    "details missing": (
        {"input_tokens_details": None, "output_tokens_details": None},
        (None, None),
        False,
    ),
}


@pytest.mark.parametrize("transport", TRANSPORTS, ids=list(TRANSPORTS))
@pytest.mark.parametrize("case", ODD_DETAILS, ids=list(ODD_DETAILS))
async def test_details_a_server_got_wrong_are_dropped_with_the_usual_note(
    profile: Profile, server: ResponsesServer, transport: str, case: str
) -> None:
    odd, kept, noted = ODD_DETAILS[case]
    server.inject(Fault.ODD_USAGE, usage=odd)
    backend = TRANSPORTS[transport](profile, max_retries=0)
    finished = await finished_of(backend)
    usage = finished.usage
    # The sound counts are kept; the odd detail is not.
    given, made = count_tokens("count me"), count_tokens("You said: count me")
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (
        given,
        made,
        given + made,
    )
    assert (usage.cached_input_tokens, usage.reasoning_tokens) == kept
    assert (USAGE_NOTE in finished.notes) is noted


async def test_the_session_drops_details_no_backend_should_let_through(store: Store) -> None:
    odd = Usage(1, 2, 3, cached_input_tokens=10**30, reasoning_tokens=-4)
    backend = _ScriptedBackend(
        [
            (0.0, ResponseStarted("resp_1", "gpt-4o")),
            (0.1, TextDelta("hi")),
            (0.2, ResponseFinished(MessageStatus.COMPLETED, "resp_1", "gpt-4o", odd)),
        ],
        _Clock(),
    )
    session = await ChatSession.start_new(store, backend, profile="test", settings=SETTINGS)
    ended = await turn(session, "q")
    assert ended.reply.usage == Usage(1, 2, 3)
    assert ended.reply.error is not None and "token counts" in ended.reply.error


async def test_a_conversation_imported_from_the_server_keeps_its_details(
    profile: Profile, store: Store, server: ResponsesServer
) -> None:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=TEST_KEY, max_retries=0)
    first = await client.responses.create(model="gpt-4o", input="alpha")
    second = await client.responses.create(
        model="gpt-4o", input="beta", previous_response_id=first.id
    )
    await client.close()
    backend = Backend(profile, max_retries=0)
    retrieved = await backend.retrieve(second.id)
    assert retrieved is not None
    cached = count_tokens("alpha") + count_tokens(first.output_text)
    assert (retrieved.usage.cached_input_tokens, retrieved.usage.reasoning_tokens) == (cached, 0)
    conversation = await import_from_server(store, backend, second.id, profile="test")
    replies = [m for m in store.transcript(conversation.id) if m.role == MessageRole.ASSISTANT]
    assert [m.usage.cached_input_tokens for m in replies] == [0, cached]
    assert store.conversation_usage(conversation.id).cached_input_tokens == cached


# -- timings -------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _ScriptedBackend:
    """Yields its events, moving the session's clock to each one's time first."""

    stateless = False

    def __init__(self, script: list[tuple[float, BackendEvent]], clock: _Clock) -> None:
        self.script = script
        self.clock = clock

    async def stream_reply(
        self,
        *,
        settings: GenerationSettings,
        input: list[InputMessage],
        previous_response_id: str | None,
        store: bool = True,
        prompt_cache_key: str | None = None,
        omit: Collection[str] = (),
    ) -> AsyncIterator[BackendEvent]:
        for at, event in self.script:
            self.clock.now = at
            yield event

    async def retrieve(self, response_id: str) -> None:
        return None

    async def holds(self, response_id: str) -> bool:
        return False

    async def input_messages(self, response_id: str) -> list[InputMessage]:
        return []


async def test_the_first_token_is_the_first_reasoning_or_text_from_the_request_leaving(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    clock.now = 10.0  # when the request leaves
    monkeypatch.setattr("foundry_tui.core.session._clock", clock)
    done = ResponseFinished(MessageStatus.COMPLETED, "resp_1", "o4-mini", Usage(5, 40, 45))
    backend = _ScriptedBackend(
        [
            (10.1, ResponseStarted("resp_1", "o4-mini")),
            (10.3, ReasoningDelta("Thinking about it")),
            (10.8, TextDelta("The answer")),
            (11.0, done),
        ],
        clock,
    )
    session = await ChatSession.start_new(store, backend, profile="test", settings=SETTINGS)
    ended = await turn(session, "q")
    assert (ended.reply.first_token_ms, ended.reply.duration_ms) == (300, 1000)
    saved = store.get_message(ended.reply.id)
    assert saved is not None and (saved.first_token_ms, saved.duration_ms) == (300, 1000)
    # 40 output tokens over the 0.7 s the output took.
    speed = speed_of(saved)
    assert speed is not None and not speed.estimated
    assert speed.tokens_per_second == pytest.approx(40 / 0.7)


@pytest.mark.parametrize("transport", TRANSPORTS, ids=list(TRANSPORTS))
async def test_time_to_first_token_and_duration_are_saved_and_sane(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    delay = 0.25
    with ResponsesServer(
        api_key=TEST_KEY, first_delta_delay=delay, tokens_per_second=200
    ) as server:
        profile = write_config(tmp_path, server.base_url).active_profile()
        assert profile is not None
        backend = TRANSPORTS[transport](profile, max_retries=0)
        session = await ChatSession.start_new(store, backend, profile="test", settings=SETTINGS)
        server.queue_reply("one two three four five six seven eight")
        ended = await turn(session, "q")
    saved = store.get_message(ended.reply.id)
    assert saved is not None
    first, whole = saved.first_token_ms, saved.duration_ms
    assert first is not None and whole is not None
    assert delay * 1000 <= first <= whole
    speed = speed_of(saved)
    assert speed is not None and speed.tokens_per_second > 0 and not speed.estimated


async def test_a_cancelled_reply_keeps_its_timing_and_an_estimated_speed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr("foundry_tui.core.session._clock", clock)
    gate = asyncio.Event()

    class Hanging(_ScriptedBackend):
        async def stream_reply(self, **_: Any) -> AsyncIterator[BackendEvent]:
            clock.now = 0.2
            yield ResponseStarted("resp_1", "gpt-4o")
            clock.now = 0.5
            yield TextDelta("x" * 400)
            clock.now = 2.5
            await gate.wait()  # never set: the turn is cancelled here
            yield TextDelta("never")

    session = await ChatSession.start_new(
        store, Hanging([], clock), profile="test", settings=SETTINGS
    )

    async def run() -> None:
        async for event in session.send("q"):
            if isinstance(event, TurnEnded):
                raise AssertionError("the turn was to be cancelled")

    task = asyncio.create_task(run())
    for _ in range(10_000):  # until the backend hangs after its text
        if clock.now == 2.5:
            break
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    reply = session.cancelled_reply
    assert reply is not None and reply.status == MessageStatus.CANCELLED
    assert (reply.first_token_ms, reply.duration_ms) == (500, 2500)
    speed = speed_of(reply)
    # No count from the server: 400 characters at four a token, over 2 s.
    assert speed is not None and speed.estimated
    assert speed.tokens_per_second == pytest.approx(50)


# -- the conversation's sums and table -------------------------------------------------------


def test_conversation_usage_sums_all_five_counts_over_the_transcript_only(store: Store) -> None:
    conversation = store.create_conversation(profile="p", settings=SETTINGS)

    def turn_of(prompt: str, usage: Usage, parent: str | None = None) -> Message:
        user = store.add_message(
            conversation_id=conversation.id,
            role=MessageRole.USER,
            text=prompt,
            status=MessageStatus.COMPLETED,
            parent_id=parent,
        )
        reply = store.add_message(
            conversation_id=conversation.id,
            role=MessageRole.ASSISTANT,
            text="r",
            status=MessageStatus.COMPLETED,
            parent_id=user.id,
        )
        store.update_message(reply.id, usage=usage, first_token_ms=120, duration_ms=900)
        return reply

    one = turn_of("a", Usage(100, 20, 120, cached_input_tokens=0, reasoning_tokens=5))
    two = turn_of("b", Usage(300, 40, 340, cached_input_tokens=200, reasoning_tokens=None), one.id)
    # A branch off the first turn, then back: the other branch is not summed.
    turn_of("c", Usage(9_000, 9_000, 18_000, cached_input_tokens=9_000), one.id)
    store.set_head(conversation.id, two.id)
    assert store.conversation_usage(conversation.id) == Usage(
        input_tokens=400,
        output_tokens=60,
        total_tokens=460,
        cached_input_tokens=200,
        reasoning_tokens=5,
    )
    rows = turn_figures(store.transcript(conversation.id))
    assert [(row.number, row.usage.cached_input_tokens) for row in rows] == [(1, 0), (2, 200)]
    assert all((row.first_token_ms, row.duration_ms) == (120, 900) for row in rows)


async def test_ask_json_finished_carries_the_details_and_the_timings(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from tests.test_ask import run

    write_config(tmp_path, server.base_url)
    home = tmp_path / "home"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "FOUNDRY_TUI_CONFIG": str(tmp_path / "config.toml"),
        "FOUNDRY_TUI_DB": str(tmp_path / "history.db"),
        KEY_VARIABLE: TEST_KEY,
    }
    first = run(env, "--json", "alpha")
    second = run(env, "--json", "-c", "beta")
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    finished = json.loads(second.stdout.splitlines()[-1])
    assert finished["type"] == "finished"
    cached = count_tokens("alpha") + count_tokens("You said: alpha")
    assert finished["usage"]["cached_input_tokens"] == cached
    assert finished["usage"]["reasoning_tokens"] == 0
    assert 0 <= finished["first_token_ms"] <= finished["duration_ms"]
    assert finished["tokens_per_second_estimated"] in (False, None)
