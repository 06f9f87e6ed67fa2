"""The transcript renders the messages around the view while idle (Pilot).

Opening a long conversation renders only what is in view, so it opens at once. Then,
while nothing streams, the messages within a view's height above and below are rendered
one at a time: a Page Up or a branch switch that brings them into view only draws them.
What is in view must not move while they are rendered (an estimated height becomes the
exact one above the view).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foundry_tui.core.models import GenerationSettings, MessageRole, MessageStatus
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets import transcript as transcript_module
from foundry_tui.ui.widgets.message_block import MessageBlock
from foundry_tui.ui.widgets.transcript import NEARBY_SCREENS, Transcript
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    shown,
    start_chat,
    visible_text,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY) as running:
        yield running


def long_conversation(db_path: Path, turns: int) -> str:
    with Store.open(db_path) as store:
        conversation = store.create_conversation(
            profile="local", settings=GenerationSettings(model="gpt-4o")
        )
        for turn in range(turns):
            store.add_message(
                conversation_id=conversation.id,
                role=MessageRole.USER,
                text=f"question {turn}",
                status=MessageStatus.COMPLETED,
            )
            # Markdown whose rendered height an estimate gets wrong: a list and a table.
            store.add_message(
                conversation_id=conversation.id,
                role=MessageRole.ASSISTANT,
                text=f"answer {turn}\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
                + "words " * 60,
                status=MessageStatus.COMPLETED,
                response_id=f"resp_{turn}",
            )
        return conversation.id


def near_view(transcript: Transcript, blocks: list[MessageBlock]) -> tuple[list[int], list[int]]:
    """The indexes of the blocks within reach of the view, and of those beyond it."""
    height = transcript.scrollable_content_region.height
    top = round(transcript.scroll_y)
    reach = NEARBY_SCREENS * height
    tops = transcript._tops
    near, far = [], []
    for index in range(len(blocks)):
        start, end = tops[index], tops[index + 1]
        (near if end > top - reach and start < top + height + reach else far).append(index)
    return near, far


async def test_the_messages_around_the_view_are_rendered_while_idle_and_the_view_stays(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, server.base_url, sidebar=False)
    conversation_id = long_conversation(config.db_path, 60)
    app = make_app(config, resume=conversation_id)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_chat(app, pilot)
        transcript = screen.query_one(Transcript)
        await wait_until(pilot, lambda: len(shown(app)) == 120, what="the transcript")
        await wait_until(pilot, lambda: "answer 59" in visible_text(transcript), what="newest")
        width = transcript.scrollable_content_region.width
        # The user scrolls to the middle to read: the view no longer follows the end, and
        # the messages around it are not rendered yet (the pause before rendering ahead
        # made long enough to look first).
        monkeypatch.setattr(transcript_module, "NEARBY_PAUSE", 0.5)
        await wait_until(pilot, lambda: transcript._nearby_timer is None, what="quiet")
        transcript.scroll_to(y=transcript.max_scroll_y // 2, animate=False)
        await pilot.pause()
        assert not transcript.following
        first_seen = visible_text(transcript)
        blocks = shown(app)
        near, _ = near_view(transcript, blocks)
        assert not all(blocks[index].rendered_at(width) for index in near)

        await wait_until(
            pilot, lambda: nearby_rendered(transcript, width), what="the messages near the view"
        )
        await pilot.pause(0.3)
        assert visible_text(transcript) == first_seen  # nothing in view moved
        blocks = shown(app)
        _, far = near_view(transcript, blocks)
        assert 0 in far and not blocks[0].rendered_at(width)  # only what is near

        # A page up shows only messages rendered already.
        renders = record_renders(monkeypatch, transcript)
        transcript.focus()
        await pilot.press("pageup")
        await pilot.pause()
        assert visible_text(transcript) != first_seen
        assert [where for where in renders if where == "in view"] == []


def nearby_rendered(transcript: Transcript, width: int) -> bool:
    blocks = transcript.blocks
    near, _ = near_view(transcript, blocks)
    return all(blocks[index].rendered_at(width) for index in near)


def in_view(transcript: Transcript, block: MessageBlock) -> bool:
    blocks = transcript.blocks
    if block not in blocks:
        return False
    index = blocks.index(block)
    top, height = round(transcript.scroll_y), transcript.scrollable_content_region.height
    return transcript._tops[index] < top + height and transcript._tops[index + 1] > top


def record_renders(monkeypatch: pytest.MonkeyPatch, transcript: Transcript) -> list[str]:
    """From now on, where each block rendered was, as it was rendered: "in view" (a
    frame waited for it) or "out of view" (rendered ahead)."""
    renders: list[str] = []
    original = MessageBlock.render

    def recorded(block: MessageBlock, *args: Any) -> int:
        if block.message.status is not MessageStatus.PENDING:  # not the one streaming
            renders.append("in view" if in_view(transcript, block) else "out of view")
        return original(block, *args)

    monkeypatch.setattr(MessageBlock, "render", recorded)
    return renders


async def test_nothing_is_rendered_ahead_while_a_reply_streams(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, server.base_url, sidebar=False)
    conversation_id = long_conversation(config.db_path, 30)
    server.queue_reply("streamed " * 3000)
    server.tokens_per_second = 200
    app = make_app(config, resume=conversation_id)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_chat(app, pilot)
        transcript = screen.query_one(Transcript)
        await wait_until(pilot, lambda: len(shown(app)) == 60, what="the transcript")
        screen.query_one("#prompt").text = "more"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: len(shown(app)) == 62 and shown(app)[-1].source != "",
            what="the reply streaming",
        )
        renders = record_renders(monkeypatch, transcript)
        # The user pages up to read while it streams: the messages above the page now in
        # view are not rendered ahead until the reply is done.
        transcript.focus()
        await pilot.press("pageup", "pageup")
        await pilot.pause(0.4)  # many pauses of NEARBY_PAUSE
        assert screen.streaming
        assert "out of view" not in renders
        server.tokens_per_second = None
        await wait_until(pilot, lambda: not screen.streaming, what="the reply's end")
        await wait_until(pilot, lambda: "out of view" in renders, what="rendering ahead")


async def test_a_selected_message_near_the_end_stays_in_view_as_those_above_are_rendered(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendering a message above the view can make the whole shorter, so that the end
    comes above where the view was: Textual then moves the view, and that move must not
    count as the user's (the view would go on following the end, away from the cursor)."""
    monkeypatch.setattr(transcript_module, "NEARBY_PAUSE", 0.5)
    config = write_config(tmp_path, server.base_url, sidebar=False)
    with Store.open(config.db_path) as store:
        conversation = store.create_conversation(
            profile="local", settings=GenerationSettings(model="gpt-4o")
        )
        for turn in range(20):
            store.add_message(
                conversation_id=conversation.id,
                role=MessageRole.USER,
                text=f"question {turn}",
                status=MessageStatus.COMPLETED,
            )
            # Blank lines count in the estimate; Markdown draws one: 60 lines shorter.
            text = f"answer {turn}" + "\n" * 60 + "the end"
            if turn == 19:  # the last, taller than the view
                text = "answer 19\n\n" + "\n\n".join(f"paragraph {n}" for n in range(20))
            store.add_message(
                conversation_id=conversation.id,
                role=MessageRole.ASSISTANT,
                text=text,
                status=MessageStatus.COMPLETED,
                response_id=f"resp_{turn}",
            )
    app = make_app(config, resume=conversation.id)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_chat(app, pilot)
        transcript = screen.query_one(Transcript)
        await wait_until(pilot, lambda: "paragraph 19" in visible_text(transcript), what="end")
        await wait_until(pilot, lambda: transcript._nearby_timer is None, what="quiet")
        await pilot.press("ctrl+up")  # the last reply selected, its first line in view
        await pilot.pause()
        selected = transcript.cursor
        assert selected is not None and in_view(transcript, selected.block)
        seen = visible_text(transcript)
        assert "answer 19" in seen and "paragraph 19" not in seen
        width = transcript.scrollable_content_region.width

        await wait_until(
            pilot, lambda: nearby_rendered(transcript, width), what="the messages near the view"
        )
        await pilot.pause(0.3)
        assert visible_text(transcript) == seen
        assert transcript.cursor == selected
