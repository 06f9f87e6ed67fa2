"""The turn policy without a terminal: one whole conversation through `core.turns.Turns`,
the real AsyncOpenAI client (`backend.Backend`) and the local server with faults.

Each step checks what the request carried, what the store keeps, what the user may do
next (`remedy`) and what the status line would say about the next send (`next_mode`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.core.models import (
    AuthMethod,
    EndpointKind,
    ErrorKind,
    GenerationSettings,
    MessageRole,
    MessageStatus,
    Profile,
)
from foundry_tui.core.session import (
    ChatSession,
    ModeChanged,
    ReplyDelta,
    SendMode,
    SettingsChanged,
    TurnEnded,
    TurnEvent,
    TurnStarted,
)
from foundry_tui.core.turns import CONTINUE_PROMPT, SAMPLING_DROPPED, Remedy, Turns
from foundry_tui.store import Store
from tests.helpers import KEY_VARIABLE, TEST_KEY
from tests.responses_server import Fault, ResponsesServer

SETTINGS = GenerationSettings(model="gpt-4o", instructions="Answer briefly.")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, reasoning_models=["o4-mini"]) as running:
        yield running


@pytest.fixture
async def turns(tmp_path: Path, server: ResponsesServer) -> AsyncIterator[Turns]:
    profile = Profile(
        name="local",
        kind=EndpointKind.COMPATIBLE,
        endpoint=server.base_url,
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_VARIABLE,
    )
    backend = Backend(profile, max_retries=0, timeout=5)
    with Store.open(tmp_path / "history.db") as store:
        session = await ChatSession.start_new(store, backend, profile="local", settings=SETTINGS)
        yield Turns(session)
    await backend.aclose()


async def play(events: AsyncIterator[TurnEvent]) -> list[TurnEvent]:
    return [event async for event in events]


def ended(events: list[TurnEvent]) -> TurnEnded:
    [end] = [event for event in events if isinstance(event, TurnEnded)]
    return end


def request(server: ResponsesServer) -> tuple[str | None, list[tuple[str, str]]]:
    """The last create request: its previous_response_id and its input messages."""
    body = server.created()[-1]
    items = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return body.get("previous_response_id"), [(i["role"], i["content"]) for i in items]


async def saved(turns: Turns) -> list[tuple[str, str, MessageStatus]]:
    """The conversation as the store keeps it (its current path)."""
    return [(m.role.value, m.text, m.status) for m in await turns.session.transcript()]


async def mode_from_store(turns: Turns) -> SendMode:
    """What a fresh look at the store says about the next send: the same as `next_mode`."""
    return turns.session.next_send_mode(await turns.session.transcript())


async def test_a_whole_conversation_with_faults(turns: Turns, server: ResponsesServer) -> None:
    assert turns.next_mode == SendMode.NEW and turns.remedy is None

    # A first turn, then one chained on it.
    first = ended(await play(turns.send("alpha")))
    assert first.reply.status == MessageStatus.COMPLETED and first.error is None
    assert request(server) == (None, [("user", "alpha")])
    assert turns.next_mode == SendMode.CHAIN == await mode_from_store(turns)
    second = ended(await play(turns.send("beta")))
    assert request(server) == (first.reply.response_id, [("user", "beta")])
    assert turns.last_reply == second.reply

    # A failed turn: saved as failed with the error; the next send still chains on "beta".
    server.inject(Fault.SERVER_ERROR)
    failed = ended(await play(turns.send("gamma")))
    assert failed.error is not None and failed.error.kind == ErrorKind.SERVER
    assert failed.reply.status == MessageStatus.FAILED and "500" in (failed.reply.error or "")
    assert turns.last_error is failed.error
    assert (turns.remedy, turns.can_retry, turns.can_continue) == (Remedy.RETRY, True, False)
    assert (await saved(turns))[-1] == ("assistant", "", MessageStatus.FAILED)
    assert turns.next_mode == SendMode.CHAIN == await mode_from_store(turns)

    # Retry: the same prompt, chained on "beta"; the new reply takes the failed one's place.
    events = await play(turns.retry())
    started = next(event for event in events if isinstance(event, TurnStarted))
    assert started.replaces == failed.reply and started.user.text == "gamma"
    assert request(server) == (second.reply.response_id, [("user", "gamma")])
    retried = ended(events)
    assert retried.reply.status == MessageStatus.COMPLETED and turns.remedy is None
    assert [text for _, text, _ in await saved(turns)] == [
        "alpha",
        "You said: alpha",
        "beta",
        "You said: beta",
        "gamma",
        "You said: gamma",
    ]
    with pytest.raises(LookupError):
        turns.retry()  # nothing left to retry

    # Cut off at the token limit, then continued from the cut reply.
    server.inject(Fault.INCOMPLETE, after_deltas=2)
    cut = ended(await play(turns.send("delta")))
    assert cut.reply.status == MessageStatus.INCOMPLETE and cut.error is None
    assert "max output tokens" in (cut.reply.error or "")
    assert (turns.remedy, turns.can_continue, turns.can_retry) == (Remedy.CONTINUE, True, True)
    assert turns.next_mode == SendMode.CHAIN  # an incomplete reply is kept by the server
    went_on = ended(await play(turns.continue_reply()))
    assert request(server) == (cut.reply.response_id, [("user", CONTINUE_PROMPT)])
    assert went_on.reply.status == MessageStatus.COMPLETED and not turns.can_continue

    # Cancelled after the first words: the reply so far is saved, marked cancelled.
    server.inject(Fault.STALL, after_deltas=2)
    got: list[str] = []
    first_words = asyncio.Event()

    async def consume() -> None:
        async for event in turns.send("epsilon"):
            if isinstance(event, ReplyDelta):
                got.append(event.text)
                first_words.set()

    task = asyncio.create_task(consume())
    await first_words.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert turns.last_reply is not None
    assert turns.last_reply.status == MessageStatus.CANCELLED
    assert turns.last_reply.text == "".join(got) != ""
    assert (await saved(turns))[-1] == ("assistant", "".join(got), MessageStatus.CANCELLED)
    assert turns.remedy == Remedy.RETRY
    assert turns.next_mode == SendMode.CHAIN == await mode_from_store(turns)

    # The server forgets the conversation; asked, it says so: the next send replays.
    server.expire_all()
    assert await turns.check_server() == SendMode.REPLAY == await mode_from_store(turns)
    ended(await play(turns.send("zeta")))
    previous, replayed = request(server)
    assert previous is None
    assert replayed[-1] == ("user", "zeta") and replayed[0] == ("user", "alpha")
    assert ("assistant", "".join(got)) in replayed  # the cancelled words the user saw
    assert ("user", "epsilon") in replayed
    assert turns.next_mode == SendMode.CHAIN == await mode_from_store(turns)  # a new chain

    # It forgets again, unasked: the send's 400 falls back to a replay within the turn.
    server.expire_all()
    events = await play(turns.send("eta"))
    assert [e.mode for e in events if isinstance(e, ModeChanged)] == [SendMode.REPLAY]
    assert ended(events).reply.text == "You said: eta"
    chained, fallback = server.created()[-2:]
    assert chained["previous_response_id"] and not fallback.get("previous_response_id")
    assert turns.next_mode == SendMode.CHAIN == await mode_from_store(turns)


async def test_a_reasoning_model_is_resent_without_sampling(
    turns: Turns, server: ResponsesServer
) -> None:
    sampled = GenerationSettings(model="o4-mini", temperature=0.4, top_p=0.5)
    refused = ended(await play(turns.send("think", sampled)))
    assert refused.error is not None and refused.error.kind == ErrorKind.UNSUPPORTED_PARAMETER
    assert turns.remedy == Remedy.RESEND_WITHOUT_SAMPLING
    assert server.created()[-1]["temperature"] == 0.4

    events = await play(turns.retry(sampled))
    assert events[0] == SettingsChanged(GenerationSettings(model="o4-mini"), SAMPLING_DROPPED)
    body = server.created()[-1]
    assert "temperature" not in body and "top_p" not in body
    assert ended(events).reply.status == MessageStatus.COMPLETED
    assert turns.session.conversation.settings == GenerationSettings(model="o4-mini")
    assert turns.remedy is None


async def test_a_closed_turn_and_a_reopened_one(turns: Turns, server: ResponsesServer) -> None:
    """A face that stops iterating (Ctrl+C in a shell) closes the turn: the words so far
    are kept, cancelled. Reopened, the conversation offers the same as before."""
    server.inject(Fault.STALL, after_deltas=3)
    events = turns.send("alpha")
    async for event in events:
        if isinstance(event, ReplyDelta):
            break
    await events.aclose()
    assert turns.last_reply is not None
    assert turns.last_reply.status == MessageStatus.CANCELLED and turns.last_reply.text
    assert turns.next_mode == SendMode.REPLAY  # no chain yet: the words so far are resent

    reopened = Turns(turns.session, await turns.session.transcript())
    assert reopened.last_reply == turns.last_reply and reopened.remedy == Remedy.RETRY
    retried = ended(await play(reopened.retry()))
    assert retried.reply.status == MessageStatus.COMPLETED
    assert [m.role for m in await turns.session.transcript()] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
    ]
