"""Compare without a terminal: `core.compare.Comparison` through the real AsyncOpenAI client
(`backend.Backend`) against the local server, which serves several deployments.

One prompt is saved once; each contender's reply is saved as a sibling under it, chained
from the path's last reply; every stream runs at the same time; cancelling saves each
reply so far; a deployment that does not exist fails its column only; continuing moves
the head and the conversation's model. The local model as a column is a stateless fake
backend here; the real model answers a column in test_local_backend.py (loaded once there
for several tests).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.core.compare import (
    ColumnClosed,
    ColumnEvent,
    CompareEvent,
    Comparison,
    Contender,
    Preparing,
    PromptSaved,
    local_settings,
)
from foundry_tui.core.models import (
    AuthMethod,
    BackendEvent,
    EndpointKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    MessageStatus,
    Profile,
    ResponseFinished,
    ResponseStarted,
    RetrievedResponse,
    TextDelta,
    Usage,
)
from foundry_tui.core.session import ChatSession, ReplyDelta, TurnEnded
from foundry_tui.store import Store
from tests.helpers import KEY_VARIABLE, TEST_KEY, eventually
from tests.responses_server import ResponsesServer, last_user_text, make_text

DEPLOYMENTS = ("gpt-4o", "gpt-4o-mini", "o4-mini")
SETTINGS = GenerationSettings(model="gpt-4o", instructions="Answer briefly.")
LONG = 400  # tokens a reply streams in the tests that need it to last


def reply_by_model(body: dict[str, Any]) -> str:
    return f"{body['model']} says: {last_user_text(body)}"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(
        api_key=TEST_KEY, deployments=DEPLOYMENTS, reply=reply_by_model
    ) as running:
        yield running


@pytest.fixture
async def backend(server: ResponsesServer) -> AsyncIterator[Backend]:
    profile = Profile(
        name="local",
        kind=EndpointKind.COMPATIBLE,
        endpoint=server.base_url,
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_VARIABLE,
        deployments=DEPLOYMENTS,
    )
    client = Backend(profile, max_retries=0, timeout=10)
    yield client
    await client.aclose()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "history.db") as opened:
        yield opened


@pytest.fixture
async def session(store: Store, backend: Backend) -> ChatSession:
    return await ChatSession.start_new(store, backend, profile="local", settings=SETTINGS)


def deployment(backend: Backend, model: str) -> Contender:
    return Contender(
        model, GenerationSettings(model=model, instructions="Answer briefly."), backend
    )


class FakeLocal:
    """A stateless backend, as the local model is: keeps nothing, is sent the transcript."""

    stateless = True

    def __init__(self, reply: str = "local says hi") -> None:
        self.reply = reply
        self.inputs: list[list[InputMessage]] = []
        self.previous_ids: list[str | None] = []
        self.progress: list[str] = []

    async def prepare(self, progress: Callable[[str], None]) -> None:
        progress("Loading local model…")
        self.progress.append("prepared")

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
        self.inputs.append(list(input))
        self.previous_ids.append(previous_response_id)
        yield ResponseStarted(response_id="", model=settings.model)
        for word in self.reply.split(" "):
            await asyncio.sleep(0)
            yield TextDelta(word + " ")
        yield ResponseFinished(
            status=MessageStatus.COMPLETED,
            response_id=None,
            model=settings.model,
            usage=Usage(input_tokens=5, output_tokens=3),
        )

    async def retrieve(self, response_id: str) -> RetrievedResponse | None:
        return None

    async def holds(self, response_id: str) -> bool:
        return False

    async def input_messages(self, response_id: str) -> list[InputMessage]:
        return []


def tree(store: Store, conversation_id: str) -> list[tuple[str, str | None, str, str]]:
    """Every message of the conversation, on any branch: (id, parent id, role, text)."""
    with sqlite3.connect(store.path) as db:
        rows = db.execute(
            "SELECT id, parent_id, role, text FROM messages WHERE conversation_id = ?"
            " ORDER BY rowid",
            (conversation_id,),
        ).fetchall()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


async def play(comparison: Comparison, prompt: str) -> list[CompareEvent]:
    return [event async for event in comparison.run(prompt)]


def column_events(events: list[CompareEvent], index: int) -> list[object]:
    return [e.event for e in events if isinstance(e, ColumnEvent) and e.index == index]


def ended(events: list[CompareEvent], index: int) -> TurnEnded:
    [end] = [e for e in column_events(events, index) if isinstance(e, TurnEnded)]
    return end


async def first_turn(session: ChatSession) -> str:
    """A normal turn first, so that the comparison has a reply to chain from."""
    async for _event in session.send("Hello"):
        pass
    path = await session.transcript()
    assert path[-1].response_id is not None
    return path[-1].response_id


async def test_three_deployments_answer_one_prompt_saved_once_as_siblings(
    session: ChatSession, backend: Backend, server: ResponsesServer, store: Store
) -> None:
    anchor = await first_turn(session)
    comparison = Comparison(session, [deployment(backend, m) for m in DEPLOYMENTS])
    events = await play(comparison, "Why is the sky blue?")

    [saved] = [e for e in events if isinstance(e, PromptSaved)]
    user = saved.user
    assert user.text == "Why is the sky blue?"
    messages = tree(store, session.conversation.id)
    prompts = [text for _, _, role, text in messages if role == "user"]
    assert prompts == ["Hello", "Why is the sky blue?"]  # saved once
    children = [id_ for id_, parent, _, _ in messages if parent == user.id]
    assert len(children) == 3
    for index, model in enumerate(DEPLOYMENTS):
        end = ended(events, index)
        assert end.error is None
        assert end.reply.status == MessageStatus.COMPLETED
        assert end.reply.text == f"{model} says: Why is the sky blue?"
        assert end.reply.parent_id == user.id
        assert comparison.reply(index) == end.reply
    assert sum(isinstance(e, ColumnClosed) for e in events) == 3
    # Each request chained from the path's last reply, and asked its own model.
    requests = server.created()[-3:]
    assert sorted(body["model"] for body in requests) == sorted(DEPLOYMENTS)
    assert {body.get("previous_response_id") for body in requests} == {anchor}


async def test_the_streams_run_at_the_same_time(
    session: ChatSession, backend: Backend, server: ResponsesServer
) -> None:
    server.tokens_per_second = 2000
    server.reply = lambda body: make_text(LONG, seed=len(body["model"]))
    for count in (2, 3):
        comparison = Comparison(session, [deployment(backend, m) for m in DEPLOYMENTS[:count]])
        order = [
            (e.index, type(e.event).__name__)
            for e in await play(comparison, f"{count} at once")
            if isinstance(e, ColumnEvent) and isinstance(e.event, ReplyDelta | TurnEnded)
        ]
        first_end = next(i for i, (_, kind) in enumerate(order) if kind == "TurnEnded")
        # Every column's text had begun before any column's reply was over.
        started = {index for index, kind in order[:first_end] if kind == "ReplyDelta"}
        assert started == set(range(count)), order[: first_end + 1]


async def test_cancelling_saves_every_reply_so_far_as_cancelled(
    session: ChatSession, backend: Backend, server: ResponsesServer, store: Store
) -> None:
    server.tokens_per_second = 50
    server.reply = lambda body: make_text(2000, seed=1)
    comparison = Comparison(session, [deployment(backend, m) for m in DEPLOYMENTS])
    texts: dict[int, str] = {0: "", 1: "", 2: ""}

    async def consume() -> None:
        async for event in comparison.run("Tell me a long story"):
            if isinstance(event, ColumnEvent) and isinstance(event.event, ReplyDelta):
                texts[event.index] += event.event.text

    task = asyncio.create_task(consume())
    await eventually(lambda: all(len(text) > 20 for text in texts.values()), what="text in all")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for index in range(3):
        reply = comparison.reply(index)
        assert reply is not None
        saved = store.get_message(reply.id)
        assert saved is not None
        assert saved.status == MessageStatus.CANCELLED
        assert saved.text.startswith(texts[index]) and saved.text  # nothing shown is lost
        assert reply.status == MessageStatus.CANCELLED


async def test_a_missing_deployment_fails_its_column_only(
    session: ChatSession, backend: Backend, server: ResponsesServer, store: Store
) -> None:
    server.tokens_per_second = 2000
    contenders = [
        deployment(backend, "gpt-4o"),
        deployment(backend, "no-such-deployment"),
        deployment(backend, "o4-mini"),
    ]
    comparison = Comparison(session, contenders)
    events = await play(comparison, "Hi all")
    failed = ended(events, 1)
    assert failed.error is not None and failed.error.status_code == 404
    saved = store.get_message(failed.reply.id)
    assert saved is not None and saved.status == MessageStatus.FAILED
    assert saved.error  # the reason, saved with it
    for index in (0, 2):
        assert ended(events, index).reply.status == MessageStatus.COMPLETED
        assert ended(events, index).reply.text.endswith("Hi all")
    with pytest.raises(LookupError):
        await comparison.choose(1)


async def test_continue_makes_the_reply_the_head_and_its_model_the_conversations(
    session: ChatSession, backend: Backend, server: ResponsesServer, store: Store
) -> None:
    await first_turn(session)
    comparison = Comparison(session, [deployment(backend, m) for m in DEPLOYMENTS])
    await play(comparison, "Pick me")
    chosen = await comparison.choose(1)
    assert chosen.reply.model == "gpt-4o-mini"
    assert "gpt-4o-mini" in chosen.notice
    assert store.get_conversation(session.conversation.id).head_message_id == chosen.reply.id  # type: ignore[union-attr]
    assert session.conversation.settings.model == "gpt-4o-mini"
    assert store.get_conversation(session.conversation.id).settings.model == "gpt-4o-mini"  # type: ignore[union-attr]
    path = await session.transcript()
    assert [m.text for m in path][-2:] == ["Pick me", "gpt-4o-mini says: Pick me"]
    # The next turn chains from the chosen reply, with the chosen model.
    async for _event in session.send("And then?"):
        pass
    body = server.created()[-1]
    assert body["previous_response_id"] == chosen.reply.response_id
    assert body["model"] == "gpt-4o-mini"
    # The other replies stay, siblings of the chosen one, in the columns' order.
    siblings = [
        row for row in tree(store, session.conversation.id) if row[1] == chosen.reply.parent_id
    ]
    assert len(siblings) == 3
    path = await session.transcript()
    branches = (await session.siblings(path))[chosen.reply.id]
    assert branches.ids == tuple(comparison.reply(i).id for i in range(3))  # type: ignore[union-attr]
    assert branches.index == 1


async def test_closing_without_a_choice_shows_the_first_answer(
    session: ChatSession, backend: Backend, store: Store
) -> None:
    contenders = [deployment(backend, "no-such-deployment"), deployment(backend, "gpt-4o-mini")]
    comparison = Comparison(session, contenders)
    await play(comparison, "Anyone?")
    head = await comparison.settle_unchosen()
    assert head is not None and head.model == "gpt-4o-mini"  # the first with an answer
    path = await session.transcript()
    assert path[-1].id == head.id
    assert session.conversation.settings.model == "gpt-4o"  # unchanged


async def test_the_local_model_as_a_column_replays_the_path_and_keeps_the_model(
    session: ChatSession, backend: Backend, server: ResponsesServer, store: Store
) -> None:
    anchor = await first_turn(session)
    local = FakeLocal()
    contenders = [
        deployment(backend, "gpt-4o-mini"),
        Contender("local model", local_settings(SETTINGS, "smollm2-135m"), local, local=True),
    ]
    comparison = Comparison(session, contenders)
    events = await play(comparison, "Local too?")
    assert any(isinstance(e, Preparing) for e in column_events(events, 1))
    assert local.progress == ["prepared"]
    # Stateless: no chain; the path so far and the prompt are sent as text.
    assert local.previous_ids == [None]
    assert [(m.role, m.text) for m in local.inputs[0]] == [
        (MessageRole.USER, "Hello"),
        (MessageRole.ASSISTANT, "gpt-4o says: Hello"),
        (MessageRole.USER, "Local too?"),
    ]
    assert server.created()[-1]["previous_response_id"] == anchor
    local_reply = ended(events, 1).reply
    assert local_reply.text.strip() == "local says hi"
    assert local_reply.parent_id == ended(events, 0).reply.parent_id
    chosen = await comparison.choose(1)
    assert "keeps its model (gpt-4o)" in chosen.notice
    assert session.conversation.settings.model == "gpt-4o"
    assert (await session.transcript())[-1].id == local_reply.id
    # The next turn to the cloud sends the local reply along after the chained anchor.
    async for _event in session.send("Next"):
        pass
    body = server.created()[-1]
    assert body["previous_response_id"] == anchor
    assert "local says hi" in str(body["input"])


async def test_a_column_whose_backend_cannot_start_is_saved_failed(
    session: ChatSession, backend: Backend, store: Store
) -> None:
    from foundry_tui.core.models import BackendError, ErrorKind

    class Missing(FakeLocal):
        async def prepare(self, progress: Callable[[str], None]) -> None:
            raise BackendError(ErrorKind.CONFIG, "The local model is not installed", "Install it.")

    contenders = [
        deployment(backend, "gpt-4o"),
        Contender("local model", local_settings(SETTINGS, "smollm2-135m"), Missing(), local=True),
    ]
    events = await play(Comparison(session, contenders), "Hi")
    failed = ended(events, 1)
    assert failed.error is not None
    saved = store.get_message(failed.reply.id)
    assert saved is not None and saved.status == MessageStatus.FAILED
    assert "not installed" in (saved.error or "")
    assert ended(events, 0).reply.status == MessageStatus.COMPLETED


def test_a_comparison_takes_two_or_three(session: ChatSession, backend: Backend) -> None:
    with pytest.raises(ValueError):
        Comparison(session, [deployment(backend, "gpt-4o")])
    with pytest.raises(ValueError):
        Comparison(session, [deployment(backend, "gpt-4o")] * 4)
