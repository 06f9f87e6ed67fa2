"""Branches without a terminal: edited prompts and regenerated replies through
`core.turns.Turns`, the real AsyncOpenAI client and the local server.

Each branch must chain on the server from its own parent reply (the Responses API forks
from any stored response), replay only its own path once the server forgot it, and be
kept: the tree in the store, the branch last shown as the conversation's head.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from foundry_tui.backend.client import Backend
from foundry_tui.core.branches import Tree
from foundry_tui.core.export_files import render
from foundry_tui.core.models import (
    AuthMethod,
    EndpointKind,
    GenerationSettings,
    Message,
    MessageRole,
    MessageStatus,
    Profile,
    Siblings,
)
from foundry_tui.core.session import ChatSession, SendMode, TurnEnded, TurnEvent, TurnStarted
from foundry_tui.core.transfer import find, parse, save_imported
from foundry_tui.core.turns import Turns
from foundry_tui.store import Store
from tests.helpers import KEY_VARIABLE, TEST_KEY
from tests.responses_server import ResponsesServer

SETTINGS = GenerationSettings(model="gpt-4o", instructions="Answer briefly.")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "history.db") as opened:
        yield opened


@pytest.fixture
async def turns(store: Store, server: ResponsesServer) -> AsyncIterator[Turns]:
    profile = Profile(
        name="local",
        kind=EndpointKind.COMPATIBLE,
        endpoint=server.base_url,
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_VARIABLE,
    )
    backend = Backend(profile, max_retries=0, timeout=5)
    session = await ChatSession.start_new(store, backend, profile="local", settings=SETTINGS)
    yield Turns(session)
    await backend.aclose()


async def play(events: AsyncIterator[TurnEvent]) -> tuple[TurnStarted, Message]:
    seen = [event async for event in events]
    [started] = [event for event in seen if isinstance(event, TurnStarted)]
    [end] = [event for event in seen if isinstance(event, TurnEnded)]
    assert end.reply.status is MessageStatus.COMPLETED, end.reply.error
    return started, end.reply


def texts(path: list[Message]) -> list[str]:
    return [message.text for message in path]


def input_texts(body: dict[str, Any]) -> list[str]:
    found = []
    for item in body["input"]:
        content = item["content"]
        found.append(content if isinstance(content, str) else content[0]["text"])
    return found


async def test_a_regenerated_reply_forks_from_the_parent_reply_and_the_first_stays(
    turns: Turns, server: ResponsesServer, store: Store
) -> None:
    _, first = await play(turns.send("one"))
    _, old = await play(turns.send("two"))
    started, new = await play(turns.regenerate())

    body = server.created()[-1]
    assert body["previous_response_id"] == first.response_id  # not the reply it replaces
    assert input_texts(body) == ["two"]
    assert started.replaces == old and started.user.id == old.parent_id
    assert new.parent_id == old.parent_id and new.response_id != old.response_id
    assert texts(turns.path) == ["one", "You said: one", "two", "You said: two"]
    assert turns.path[-1].id == new.id
    assert await turns.siblings() == {new.id: Siblings((old.id, new.id), 1)}
    assert len(store.all_messages(turns.session.conversation.id)) == 5


async def test_regenerating_an_earlier_reply_drops_what_followed_from_the_path_only(
    turns: Turns, server: ResponsesServer, store: Store
) -> None:
    await play(turns.send("one"))
    _, middle = await play(turns.send("two"))
    await play(turns.send("three"))
    started, new = await play(turns.regenerate(middle))

    assert started.replaces == middle
    assert server.created()[-1]["previous_response_id"] == turns.path[1].response_id
    assert texts(turns.path)[:3] == ["one", "You said: one", "two"] and len(turns.path) == 4
    path = await turns.switch_to(middle.id)  # the old branch, with all that followed it
    assert texts(path) == [
        "one",
        "You said: one",
        "two",
        "You said: two",
        "three",
        "You said: three",
    ]
    assert (await turns.siblings())[middle.id] == Siblings((middle.id, new.id), 0)


async def test_an_edited_prompt_is_a_new_branch_and_each_branch_chains_from_its_own_end(
    turns: Turns, server: ResponsesServer, store: Store
) -> None:
    _, first = await play(turns.send("one"))
    await play(turns.send("two"))
    _, last_of_a = await play(turns.send("three"))
    original = turns.path[2]

    started, _ = await play(turns.edit(original, "two, better"))
    body = server.created()[-1]
    assert body["previous_response_id"] == first.response_id
    assert input_texts(body) == ["two, better"]
    assert started.replaces == original and started.user.parent_id == original.parent_id
    assert texts(turns.path) == ["one", "You said: one", "two, better", "You said: two, better"]
    edited = turns.path[2]
    assert (await turns.siblings())[edited.id] == Siblings((original.id, edited.id), 1)

    # Back on the first branch: its newest end is shown, and the next turn chains from it.
    path = await turns.switch_to(original.id)
    assert path[-1].id == last_of_a.id and turns.next_mode is SendMode.CHAIN
    await play(turns.send("four"))
    assert server.created()[-1]["previous_response_id"] == last_of_a.response_id
    assert input_texts(server.created()[-1]) == ["four"]

    # The branch last shown is the one a reopened conversation shows.
    reopened = await ChatSession.open(store, turns.session.backend, turns.session.conversation.id)
    assert texts(await reopened.transcript())[-2:] == ["four", "You said: four"]
    # And the other one is where it was.
    path = await turns.switch_to(edited.id)
    assert texts(path)[-2:] == ["two, better", "You said: two, better"]


async def test_editing_the_first_prompt_starts_a_new_root(
    turns: Turns, server: ResponsesServer
) -> None:
    await play(turns.send("one"))
    original = turns.path[0]
    started, _ = await play(turns.edit(original, "uno"))
    assert "previous_response_id" not in server.created()[-1]
    assert input_texts(server.created()[-1]) == ["uno"]
    assert started.user.parent_id is None
    assert texts(turns.path) == ["uno", "You said: uno"]
    siblings = await turns.siblings()
    assert siblings[turns.path[0].id] == Siblings((original.id, turns.path[0].id), 1)


async def test_only_a_prompt_can_be_edited_and_only_a_reply_regenerated(turns: Turns) -> None:
    await play(turns.send("one"))
    prompt, reply = turns.path
    with pytest.raises(LookupError, match="Only a prompt"):
        await play(turns.edit(reply, "x"))
    with pytest.raises(LookupError, match="no reply"):
        turns.regenerate(prompt)


async def test_after_expiry_a_branch_replays_its_own_path_only(
    turns: Turns, server: ResponsesServer
) -> None:
    await play(turns.send("one"))
    await play(turns.send("two on the left"))
    left = turns.path[2]
    await play(turns.edit(left, "two on the right"))
    await turns.switch_to(left.id)
    server.expire_all()
    assert await turns.check_server() is SendMode.REPLAY
    await play(turns.send("three"))
    body = server.created()[-1]
    assert "previous_response_id" not in body
    assert input_texts(body) == [
        "one",
        "You said: one",
        "two on the left",
        "You said: two on the left",
        "three",
    ]


async def test_a_search_opens_the_branch_holding_the_newest_match(
    turns: Turns, store: Store
) -> None:
    await play(turns.send("one"))
    await play(turns.send("about zebras"))
    zebras = turns.path[2]
    await play(turns.edit(zebras, "about lions"))
    session = turns.session

    path = await session.switch_to_match("zebr")
    assert path is not None and path[2].id == zebras.id
    assert await session.switch_to_match("zebras") is None  # already shown
    assert await session.switch_to_match("nowhere") is None
    assert store.newest_match(session.conversation.id, "lions") is not None


async def test_the_json_export_holds_every_branch_and_imports_as_the_same_tree(
    turns: Turns, store: Store
) -> None:
    await play(turns.send("one"))
    await play(turns.send("two"))
    await play(turns.regenerate())
    await play(turns.edit(turns.path[2], "two again"))
    conversation_id = turns.session.conversation.id

    exported = find(store, conversation_id)
    assert exported is not None
    document = json.loads(render(exported, "json"))
    assert len(document["messages"]) == 7
    assert texts(exported.path()) == texts(turns.path)

    imported = save_imported(store, parse(render(exported, "json").encode()))
    again = find(store, imported.id)
    assert again is not None
    shape = Tree((m.id, m.parent_id) for m in again.messages)
    assert texts(again.path()) == texts(turns.path)
    assert sorted(len(shape.path_to(leaf)) for leaf in shape.leaves()) == [4, 4, 4]


async def test_the_markdown_export_holds_the_branch_shown_or_every_branch(
    turns: Turns, store: Store
) -> None:
    await play(turns.send("one"))
    await play(turns.send("left *branch*"))
    await play(turns.edit(turns.path[2], "right branch"))
    exported = find(store, turns.session.conversation.id)
    assert exported is not None

    shown = render(exported, "md")
    assert "right branch" in shown and "left" not in shown and "Branch 2" not in shown
    every = render(exported, "md", all_branches=True)
    assert every.count("\n\nYou said: one\n") == 1  # the shared part once
    assert "**Branch 2 of 2**, branching off after this reply: *You said: one*" in every
    assert every.index("right branch") < every.index("left *branch*")


def test_the_newest_leaf_under_a_message_is_the_branch_written_to_last() -> None:
    #   a ─ b ─ c
    #     └ d ─ e     (d, e written after c)
    #   f             (a second root)
    tree = Tree([("a", None), ("b", "a"), ("c", "b"), ("d", "a"), ("e", "d"), ("f", None)])
    assert tree.newest_leaf_under("a") == "e"
    assert tree.newest_leaf_under("b") == "c"
    assert tree.newest_leaf_under("f") == "f"
    assert tree.path_to("e") == ["a", "d", "e"]
    assert tree.leaves() == ["c", "e", "f"]
    path = [
        Message(i, "conv", None, MessageRole.USER, "", MessageStatus.COMPLETED, "t")
        for i in ("a", "d", "e")
    ]
    assert tree.siblings_on(path) == {
        "a": Siblings(("a", "f"), 0),
        "d": Siblings(("b", "d"), 1),
    }


async def test_switching_back_to_a_reply_regenerated_in_this_session_shows_it(
    turns: Turns, store: Store
) -> None:
    """The session's idea of the head follows every turn: a switch to the reply that was
    the head when the conversation opened is not taken for 'already there'."""
    await play(turns.send("one"))
    reopened = Turns(
        await ChatSession.open(store, turns.session.backend, turns.session.conversation.id),
        store.transcript(turns.session.conversation.id),
    )
    first = reopened.path[-1]
    await play(reopened.regenerate())
    path = await reopened.switch_to(first.id)
    assert path[-1].id == first.id
    assert store.transcript(turns.session.conversation.id)[-1].id == first.id


async def test_a_branch_added_by_another_process_is_seen_by_the_next_switch(
    turns: Turns, store: Store, tmp_path: Path
) -> None:
    """The session keeps the tree it read, and reads it again once a message was added
    to the conversation, here through a second connection (an `ask --continue`)."""
    _, first = await play(turns.send("one"))
    assert await turns.siblings() == {}  # the tree read, and kept
    conversation_id = turns.session.conversation.id
    with Store.open(tmp_path / "history.db") as other:
        sibling = other.add_message(
            conversation_id=conversation_id,
            role=MessageRole.ASSISTANT,
            text="Another answer.",
            status=MessageStatus.COMPLETED,
            parent_id=first.parent_id,
        )
    assert await turns.siblings() == {first.id: Siblings((first.id, sibling.id), 0)}
    path = await turns.switch_to(sibling.id)
    assert texts(path) == ["one", "Another answer."]


async def test_a_tree_unchanged_since_it_was_read_is_not_read_again(
    turns: Turns, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await play(turns.send("one"))
    _, old = await play(turns.send("two"))
    _, new = await play(turns.regenerate())
    reads: list[str] = []
    read_tree = store.tree
    monkeypatch.setattr(store, "tree", lambda cid: reads.append(cid) or read_tree(cid))
    await turns.siblings()
    assert len(reads) == 1  # the regenerated reply was added since the last read
    for target in (old.id, new.id, old.id):
        await turns.switch_to(target)
        await turns.siblings()
    assert len(reads) == 1
    await play(turns.send("three"))
    assert (await turns.siblings())[old.id] == Siblings((old.id, new.id), 0)
    assert len(reads) == 2


async def test_a_switch_far_up_a_long_branch_reads_its_whole_new_tail(turns: Turns) -> None:
    """More new messages than are read one by one: the tail is read as the path's newest."""
    _, first = await play(turns.send("zero"))
    for n in range(25):
        await play(turns.send(f"a{n}"))
    _, other = await play(turns.regenerate(first))
    path = await turns.switch_to(first.id)
    assert len(path) == 52 and path[-1].text == "You said: a24"
    path = await turns.switch_to(other.id)
    assert [m.id for m in path] == [path[0].id, other.id]
