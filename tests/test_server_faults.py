"""A broken server's odd fields at the end of a reply: the reply shown in full is saved in
full, with its final status, and the turn says what was left out. Real SDK, real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterator
from pathlib import Path

import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.core.models import (
    BackendEvent,
    GenerationSettings,
    InputMessage,
    MessageStatus,
    Profile,
    ResponseFinished,
    ResponseStarted,
    TextDelta,
    Usage,
)
from foundry_tui.core.session import ChatSession, TurnEnded
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from tests.helpers import KEY_VARIABLE, TEST_KEY, send, start_chat, write_config
from tests.responses_server import Fault, ResponsesServer

PROMPT = "odd"
REPLY = "You said: " + PROMPT


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY) as running:
        yield running


def quick_backend(profile: Profile) -> Backend:
    return Backend(profile, max_retries=0, timeout=5)


@pytest.mark.parametrize(
    ("fault", "note"),
    [(Fault.HUGE_USAGE, "token counts"), (Fault.OBJECT_ID, "response id")],
    ids=["usage 10**30", "response id an object"],
)
async def test_odd_fields_at_the_end_keep_the_whole_reply(
    tmp_path: Path, server: ResponsesServer, fault: Fault, note: str
) -> None:
    config = write_config(tmp_path, server.base_url)
    app = make_app(config, backend_factory=quick_backend)
    async with app.run_test(size=(150, 40)) as pilot:
        await start_chat(app, pilot)
        server.inject(fault)
        reply = await send(pilot, app, PROMPT)
        assert reply.message.status == MessageStatus.COMPLETED, reply.message
        assert reply.source == REPLY
        # The screen says what was left out, under the reply.
        assert note in reply.footer, reply.footer
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        _user, saved = store.transcript(summary.id)
    assert (saved.text, saved.status) == (REPLY, MessageStatus.COMPLETED)
    assert saved.error is not None and note in saved.error
    if fault is Fault.HUGE_USAGE:
        assert saved.usage.input_tokens is None
        assert saved.usage.output_tokens == len(REPLY.split())
    else:
        assert saved.response_id is None


class _OddBackend:
    """Yields what no sound backend would: fields of any type at the end of a reply."""

    stateless = False

    def __init__(self, started: ResponseStarted, finished: ResponseFinished) -> None:
        self.started = started
        self.finished = finished

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
        yield self.started
        yield TextDelta(REPLY)
        yield self.finished

    async def retrieve(self, response_id: str) -> None:
        return None

    async def holds(self, response_id: str) -> bool:
        return False

    async def input_messages(self, response_id: str) -> list[InputMessage]:
        return []


ODD: list[object] = [{"id": "resp_1"}, 10**30, b"\x00bytes", float("nan"), ["a"]]


@pytest.mark.parametrize("odd", ODD, ids=[type(value).__name__ for value in ODD])
async def test_session_saves_text_and_status_whatever_the_other_fields_hold(
    tmp_path: Path, odd: object
) -> None:
    """The session is the last line: even a backend that lets odd values through cannot
    leave the row empty and pending."""
    finished = ResponseFinished(
        status=MessageStatus.COMPLETED,
        response_id=odd,  # type: ignore[arg-type]
        model=odd,  # type: ignore[arg-type]
        usage=Usage(input_tokens=odd, output_tokens=3, total_tokens=odd),  # type: ignore[arg-type]
    )
    backend = _OddBackend(ResponseStarted(odd, odd), finished)  # type: ignore[arg-type]
    with Store.open(tmp_path / "history.db") as store:
        session = await ChatSession.start_new(
            store, backend, profile="p", settings=GenerationSettings(model="m")
        )
        # No id at all (the local model gives "" and None) is nothing to note.
        plain = ResponseFinished(MessageStatus.COMPLETED, None, "m", Usage(1, 2, 3))
        session.backend = _OddBackend(ResponseStarted("", None), plain)
        quiet = [event async for event in session.send(PROMPT)][-1]
        assert isinstance(quiet, TurnEnded) and quiet.reply.error is None
        session.backend = backend
        events = [event async for event in session.send(PROMPT)]
        ended = events[-1]
        assert isinstance(ended, TurnEnded)
        assert (ended.reply.text, ended.reply.status) == (REPLY, MessageStatus.COMPLETED)
        assert ended.reply.error and "not saved" in ended.reply.error
        saved = store.get_message(ended.reply.id)
    assert saved is not None
    assert (saved.text, saved.status) == (REPLY, MessageStatus.COMPLETED)
    assert saved.error == ended.reply.error
    assert saved.response_id is None and saved.response_model is None
    assert all(
        count is None or type(count) is int
        for count in (saved.usage.input_tokens, saved.usage.total_tokens)
    )


async def test_text_sqlite_cannot_hold_is_saved_as_far_as_it_can_be(tmp_path: Path) -> None:
    """A lone surrogate (a JSON escape no UTF-8 can hold) in the text."""
    text = "half a pair: \ud800 and the rest"
    finished = ResponseFinished(MessageStatus.COMPLETED, "resp_1", "m", Usage(1, 2, 3))

    class Backend(_OddBackend):
        async def stream_reply(self, **kwargs: object) -> AsyncIterator[BackendEvent]:
            yield self.started
            yield TextDelta(text)
            yield self.finished

    backend = Backend(ResponseStarted("resp_1", "m"), finished)
    with Store.open(tmp_path / "history.db") as store:
        session = await ChatSession.start_new(
            store, backend, profile="p", settings=GenerationSettings(model="m")
        )
        ended = [event async for event in session.send(PROMPT)][-1]
        assert isinstance(ended, TurnEnded)
        saved = store.get_message(ended.reply.id)
    assert saved is not None
    assert (saved.text, saved.status) == (text.replace("\ud800", "?"), MessageStatus.COMPLETED)
    assert saved.error and "could not be saved" in saved.error
