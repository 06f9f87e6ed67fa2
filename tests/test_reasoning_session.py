"""A reasoning model's turn through the session (no terminal), the real AsyncOpenAI and
the local server: what the session yields, what it saves, and what a replay sends back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.backend.lean import LeanBackend
from foundry_tui.core.models import (
    AuthMethod,
    EndpointKind,
    GenerationSettings,
    MessageStatus,
    Profile,
    StorageError,
)
from foundry_tui.core.session import (
    ChatSession,
    ModeChanged,
    ReplyDelta,
    SendMode,
    ThinkingDelta,
    ThinkingStarted,
    TurnEnded,
    TurnEvent,
)
from foundry_tui.store import Store
from tests.helpers import KEY_VARIABLE, TEST_KEY
from tests.responses_server import ResponsesServer

REASONING = GenerationSettings(model="o4-mini", reasoning_summary="auto")
SUMMARY = (
    "**Reading the question**\n\nThe user wrote: why\n\n"
    "**Planning the answer**\n\nI will repeat it back, briefly."
)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, reasoning_models=["o4-mini"]) as running:
        running.default_summary = "auto"
        yield running


def _profile(server: ResponsesServer) -> Profile:
    return Profile(
        name="local",
        kind=EndpointKind.COMPATIBLE,
        endpoint=server.base_url,
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_VARIABLE,
    )


class _Stateless(Backend):
    """A server that keeps nothing (as the local model's): every turn is replayed."""

    stateless = True


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    with Store.open(tmp_path / "history.db") as opened:
        yield opened


async def play(events: AsyncIterator[TurnEvent]) -> list[TurnEvent]:
    return [event async for event in events]


@pytest.mark.parametrize("transport", [Backend, LeanBackend])
async def test_the_session_yields_and_saves_the_thinking(
    store: Store, server: ResponsesServer, transport: Any
) -> None:
    backend = transport(_profile(server), max_retries=0)
    session = await ChatSession.start_new(store, backend, profile="local", settings=REASONING)
    events = await play(session.send("why"))
    await backend.aclose()
    kinds = [type(e) for e in events]
    assert kinds.index(ThinkingStarted) < kinds.index(ThinkingDelta) < kinds.index(ReplyDelta)
    assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == SUMMARY
    end = events[-1]
    assert isinstance(end, TurnEnded) and end.reply.reasoning == SUMMARY
    saved = (await session.transcript())[-1]
    assert saved.reasoning == SUMMARY and saved.text == "You said: why"
    (item,) = store.reasoning_items([saved.id])[saved.id]
    assert item["type"] == "reasoning" and item["encrypted_content"]


async def test_a_replay_after_expiry_sends_the_reasoning_back(
    store: Store, server: ResponsesServer
) -> None:
    backend = Backend(_profile(server), max_retries=0)
    session = await ChatSession.start_new(store, backend, profile="local", settings=REASONING)
    await play(session.send("why"))
    first = (await session.transcript())[-1]
    server.expire_all()
    events = await play(session.send("and then?"))
    await backend.aclose()
    assert any(isinstance(e, ModeChanged) and e.mode is SendMode.REPLAY for e in events)
    replayed = server.created()[-1]
    assert "previous_response_id" not in replayed
    assert [item.get("type") for item in replayed["input"]] == [
        "message",
        "reasoning",
        "message",
        "message",
    ]
    assert replayed["input"][1] == store.reasoning_items([first.id])[first.id][0]
    assert replayed["include"] == ["reasoning.encrypted_content"]
    assert server.schema_errors == []


async def test_a_stateless_server_gets_the_reasoning_every_turn(
    store: Store, server: ResponsesServer
) -> None:
    backend = _Stateless(_profile(server), max_retries=0)
    session = await ChatSession.start_new(store, backend, profile="local", settings=REASONING)
    await play(session.send("why"))
    events = await play(session.send("and then?"))
    await backend.aclose()
    assert isinstance(events[-1], TurnEnded) and events[-1].error is None
    sent = server.created()[-1]
    assert sent["store"] is False
    assert [item.get("type") for item in sent["input"]][:3] == ["message", "reasoning", "message"]


async def test_another_model_gets_no_reasoning_back(store: Store, server: ResponsesServer) -> None:
    backend = _Stateless(_profile(server), max_retries=0)
    session = await ChatSession.start_new(store, backend, profile="local", settings=REASONING)
    await play(session.send("why"))
    await session.update_settings(GenerationSettings(model="gpt-4o"))
    await play(session.send("and then?"))
    await backend.aclose()
    sent = server.created()[-1]
    assert [item.get("type") for item in sent["input"]] == ["message"] * 3
    assert "include" not in sent


async def test_a_reply_that_ran_out_while_reasoning_keeps_its_thinking(
    store: Store, server: ResponsesServer
) -> None:
    backend = Backend(_profile(server), max_retries=0)
    settings = GenerationSettings(model="o4-mini", max_output_tokens=6)
    session = await ChatSession.start_new(store, backend, profile="local", settings=settings)
    events = await play(session.send("why"))
    await backend.aclose()
    end = events[-1]
    assert isinstance(end, TurnEnded)
    assert end.reply.status is MessageStatus.INCOMPLETE and end.reply.text == ""
    assert end.reply.reasoning.startswith("**Reading the question**\n\nThe user")
    assert "max output tokens" in (end.reply.error or "")


async def test_reasoning_items_that_cannot_be_kept_do_not_fail_the_reply(
    store: Store, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_: object) -> None:
        raise StorageError("database or disk is full")

    monkeypatch.setattr(store, "save_reasoning_items", full)
    backend = Backend(_profile(server), max_retries=0)
    session = await ChatSession.start_new(store, backend, profile="local", settings=REASONING)
    events = await play(session.send("why"))
    await backend.aclose()
    end = events[-1]
    assert isinstance(end, TurnEnded) and end.error is None
    assert end.reply.status is MessageStatus.COMPLETED and end.reply.reasoning == SUMMARY
