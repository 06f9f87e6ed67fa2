"""Branches in the chat screen: `r` and Ctrl+R regenerate a reply, `e` edits a prompt into a
new branch (Escape cancels), and the keys and clicks on ‹ › switch between siblings; the
transcript below follows the branch shown. Each branch's request chains on the server from
its own parent reply (checked on the test server's side)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from foundry_tui.core.models import MessageRole, MessageStatus
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.history import ConversationList
from foundry_tui.ui.widgets.message_block import MessageBlock
from foundry_tui.ui.widgets.transcript import Item, Transcript
from tests.helpers import (
    chat_ready,
    offset_of,
    press_keys,
    send,
    shown,
    start_chat,
    visible_text,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer
from tests.test_branches_places import two_branches
from tests.test_history import NoBackend, config_for


async def keys(pilot: Any, *pressed: str, until: Any, what: str = "") -> None:
    await press_keys(pilot, *pressed)
    await wait_until(pilot, until, what=what or f"after {pressed}")


def texts(app: Any) -> list[str]:
    return [block.message.text for block in shown(app)]


def header(block: MessageBlock) -> str:
    return block.header


def settled(app: Any) -> bool:
    blocks = shown(app)
    return bool(blocks) and all(b.message.status != MessageStatus.PENDING for b in blocks)


async def two_turns(pilot: Any, app: Any, server: ResponsesServer) -> Transcript:
    server.queue_reply("First answer.")
    server.queue_reply("Second answer.")
    screen = await start_chat(app, pilot)
    await send(pilot, app, "one")
    await send(pilot, app, "two")
    transcript: Transcript = screen.query_one(Transcript)
    return transcript


async def to_transcript(pilot: Any, transcript: Transcript) -> None:
    await keys(pilot, "ctrl+up", until=lambda: transcript.has_focus and transcript.cursor)


async def test_r_regenerates_a_reply_as_a_sibling_and_the_keys_switch_back(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(100, 40)) as pilot:
        transcript = await two_turns(pilot, app, server)
        first_reply = transcript.blocks[1].message
        await to_transcript(pilot, transcript)  # the newest reply
        server.queue_reply("Another second answer.")
        await keys(
            pilot,
            "r",
            until=lambda: texts(app)[-1] == "Another second answer." and settled(app),
            what="the regenerated reply",
        )
        assert texts(app) == ["one", "First answer.", "two", "Another second answer."]
        # Chained on the server from the same parent reply as the reply it sits beside.
        requests = server.created()
        assert requests[-1]["previous_response_id"] == first_reply.response_id
        assert requests[-2]["previous_response_id"] == first_reply.response_id
        await wait_until(pilot, lambda: "‹ 2/2 ›" in header(transcript.blocks[-1]), what="2/2")
        assert transcript.cursor == Item(transcript.blocks[-1])  # the new branch selected
        kept = transcript.blocks[:3]
        regenerated = transcript.blocks[-1]
        await keys(pilot, "left", until=lambda: texts(app)[-1] == "Second answer.")
        # Only what follows the branch point is drawn anew: the blocks before it stay.
        assert all(a is b for a, b in zip(transcript.blocks[:3], kept, strict=True))
        assert "‹ 1/2 ›" in header(transcript.blocks[-1])
        assert "‹ 1/2 ›" in visible_text(transcript)
        await keys(pilot, "]", until=lambda: texts(app)[-1] == "Another second answer.")
        assert "‹ 2/2 ›" in visible_text(transcript)
        # Switched back to, a reply is shown from the block already rendered.
        assert transcript.blocks[-1] is regenerated


async def test_ctrl_r_regenerates_a_completed_last_reply(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(100, 40)) as pilot:
        transcript = await two_turns(pilot, app, server)
        footer = app.screen.query_one("KeyFooter")
        await wait_until(pilot, lambda: "Regenerate" in footer.text, what="Ctrl+R in the bar")
        assert "Retry" not in footer.text
        server.queue_reply("Regenerated.")
        await keys(
            pilot,
            "ctrl+r",
            until=lambda: texts(app)[-1] == "Regenerated." and settled(app),
            what="the regenerated reply",
        )
        assert texts(app) == ["one", "First answer.", "two", "Regenerated."]
        await wait_until(pilot, lambda: "‹ 2/2 ›" in header(transcript.blocks[-1]), what="2/2")
        assert (
            server.created()[-1]["previous_response_id"] == transcript.blocks[1].message.response_id
        )


async def test_e_edits_a_prompt_into_a_new_branch_and_the_original_stays(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(100, 40)) as pilot:
        transcript = await two_turns(pilot, app, server)
        screen = app.screen
        prompt_box = screen.query_one("#prompt")
        first_reply = transcript.blocks[1].message
        await to_transcript(pilot, transcript)
        await keys(pilot, "up", until=lambda: transcript.cursor == Item(transcript.blocks[2]))
        await keys(pilot, "e", until=lambda: prompt_box.has_focus and prompt_box.text == "two")
        note = screen.query_one("#editing-note")
        assert "Editing prompt 2" in str(note.render())
        server.queue_reply("Edited answer.")
        await keys(
            pilot,
            "end",
            *" again",
            "enter",
            until=lambda: texts(app)[-1] == "Edited answer." and settled(app),
            what="the edited turn",
        )
        assert texts(app) == ["one", "First answer.", "two again", "Edited answer."]
        assert not screen.query("#editing-note")
        # Sent from the point it was edited at: chained on the first reply, not the second.
        assert server.created()[-1]["previous_response_id"] == first_reply.response_id
        edited = transcript.blocks[2]
        await wait_until(pilot, lambda: "‹ 2/2 ›" in header(edited), what="2/2 on the prompt")
        # The original is still there: one key away, with its own reply.
        await to_transcript(pilot, transcript)
        await keys(pilot, "up", until=lambda: transcript.cursor == Item(transcript.blocks[2]))
        await keys(pilot, "[", until=lambda: texts(app)[2:] == ["two", "Second answer."])
        assert "‹ 1/2 ›" in header(transcript.blocks[2])


async def test_escape_cancels_an_edit_and_gives_the_prompt_back(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(100, 40)) as pilot:
        transcript = await two_turns(pilot, app, server)
        screen = app.screen
        prompt_box = screen.query_one("#prompt")
        await keys(pilot, *"a draft", until=lambda: prompt_box.text == "a draft")
        await to_transcript(pilot, transcript)
        await keys(
            pilot, "up", "up", "up", until=lambda: transcript.cursor == Item(transcript.blocks[0])
        )
        await keys(pilot, "e", until=lambda: prompt_box.has_focus and prompt_box.text == "one")
        assert "Editing prompt 1" in str(screen.query_one("#editing-note").render())
        requests = len(server.created())
        await keys(pilot, "escape", until=lambda: prompt_box.text == "a draft")
        assert not screen.query("#editing-note")
        assert len(server.created()) == requests
        assert texts(app) == ["one", "First answer.", "two", "Second answer."]


async def test_a_click_on_the_arrows_switches_branches(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(100, 40)) as pilot:
        transcript = await two_turns(pilot, app, server)
        server.queue_reply("Third take.")
        await keys(pilot, "ctrl+r", until=lambda: texts(app)[-1] == "Third take." and settled(app))
        await wait_until(pilot, lambda: "‹ 2/2 ›" in visible_text(transcript), what="2/2")
        assert await pilot.click(Transcript, offset=offset_of(transcript, "‹"))
        await wait_until(pilot, lambda: texts(app)[-1] == "Second answer.", what="the first")
        await wait_until(pilot, lambda: "‹ 1/2 ›" in visible_text(transcript), what="1/2")
        assert await pilot.click(Transcript, offset=offset_of(transcript, "›"))
        await wait_until(pilot, lambda: texts(app)[-1] == "Third take.", what="the second")
        assert [b.message.role for b in transcript.blocks] == [
            MessageRole.USER,
            MessageRole.ASSISTANT,
            MessageRole.USER,
            MessageRole.ASSISTANT,
        ]


async def test_a_selected_message_s_other_branch_is_rendered_before_the_switch(
    tmp_path: Path,
) -> None:
    """Selecting a message with siblings reads and renders its other branch ahead (here,
    never shown before: the conversation was just opened); the switch then shows that very
    block, its Markdown already rendered."""
    config = config_for(tmp_path)
    with Store.open(config.db_path) as store:
        two_branches(store)  # "Lions, please" shown; "Zebras, please" beside it
    app = make_app(config, backend_factory=lambda profile: NoBackend())  # type: ignore[arg-type,return-value]
    async with app.run_test(size=(100, 36)) as pilot:
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        listed = app.screen.query_one(ConversationList)
        await wait_until(pilot, lambda: listed.option_count == 1, what="the history")
        listed.focus()
        listed.highlighted = 0
        await pilot.press("enter")
        transcript = app.screen.query_one(Transcript)
        await wait_until(pilot, lambda: "‹ 2/2 ›" in visible_text(transcript), what="2/2")
        assert transcript.put_aside() == []
        await pilot.press("ctrl+up", "up")  # the reply, then its prompt: "‹ 2/2 ›"
        width = transcript.scrollable_content_region.width

        def ahead() -> list[MessageBlock]:
            return [b for b in transcript.put_aside() if b.message.text == "Zebras, please"]

        await wait_until(pilot, lambda: bool(ahead()), what="the other branch rendered ahead")
        [waiting] = ahead()
        assert waiting.rendered_at(width)
        await keys(pilot, "left", until=lambda: texts(app)[-1] == "Zebras have stripes.")
        assert transcript.blocks[-2] is waiting
