"""The transcript widget: selection and copying, markup safety, wide and narrow."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.geometry import Offset
from textual.selection import Selection

from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.prompt import PromptInput
from foundry_tui.ui.widgets.transcript import Transcript
from tests.helpers import (
    send,
    start_chat,
    visible_text,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer

REPLY = "First line of the answer.\n\n- an item\n- another item\n\nLast paragraph here."


async def test_selected_lines_copy_as_text_without_the_bar(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply(REPLY)
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_chat(app, pilot)
        await send(pilot, app, "question")
        transcript = screen.query_one(Transcript)
        lines = visible_text(transcript).split("\n")
        top = round(transcript.scroll_y)
        first = next(i for i, line in enumerate(lines) if "First line" in line) + top
        last = next(i for i, line in enumerate(lines) if "Last paragraph" in line) + top
        unselected = [segment.style for segment in transcript.render_line(first - top)]
        screen.selections = {transcript: Selection(Offset(0, first), Offset(99, last))}
        await pilot.pause()
        copied = screen.get_selected_text()
        assert copied is not None
        assert copied.splitlines()[0].strip() == "First line of the answer."
        assert "another item" in copied and copied.rstrip().endswith("Last paragraph here.")
        assert "▌" not in copied
        # The selected lines are drawn highlighted.
        selected = [segment.style for segment in transcript.render_line(first - top)]
        assert selected != unselected

        screen.selections = {transcript: Selection(None, None)}  # select all
        everything = screen.get_selected_text()
        assert everything is not None and "question" in everything and REPLY in everything


async def test_resizing_rewraps_every_message(tmp_path: Path, server: ResponsesServer) -> None:
    long_line = " ".join(f"word{i}" for i in range(60))
    server.queue_reply(long_line)
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start_chat(app, pilot)
        await send(pilot, app, "wrap me")
        transcript = screen.query_one(Transcript)
        wide = [line for line in visible_text(transcript).split("\n") if "word" in line]
        await pilot.resize_terminal(60, 30)
        await wait_until(
            pilot,
            lambda: (
                len([ln for ln in visible_text(transcript).split("\n") if "word" in ln]) > len(wide)
            ),
            what="narrower lines",
        )
        narrow = [line for line in visible_text(transcript).split("\n") if "word" in line]
        assert all(len(line.rstrip()) <= 60 for line in narrow)
        assert "word59" in " ".join(narrow)


async def test_theme_change_redraws_the_messages_in_its_colours(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply("Some text and `code`.")
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_chat(app, pilot)
        await send(pilot, app, "colours")
        transcript = screen.query_one(Transcript)
        row = (
            visible_text(transcript)
            .split("\n")
            .index(
                next(line for line in visible_text(transcript).split("\n") if "Some text" in line)
            )
        )

        def colours() -> set[object]:
            return {seg.style.bgcolor for seg in transcript.render_line(row) if seg.style}

        dark = colours()
        app.theme = "textual-light"
        await wait_until(pilot, lambda: colours() != dark, what="the light theme's colours")
        assert "Some text" in transcript.render_line(row).text


async def test_scrollbar_shows_only_once_the_messages_overflow(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply("Short.")
    server.queue_reply("\n\n".join(f"Paragraph {i}." for i in range(60)))
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_chat(app, pilot)
        transcript = screen.query_one(Transcript)
        await send(pilot, app, "short")
        assert transcript.has_class("-fits")  # the bar is drawn in the background colour
        await send(pilot, app, "long")
        assert not transcript.has_class("-fits")
        assert transcript.max_scroll_y > 0


async def test_older_messages_put_above_keep_what_the_user_reads_in_place(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from foundry_tui.core.models import Message, MessageRole, MessageStatus

    def message(i: int) -> Message:
        return Message(
            id=f"m{i}",
            conversation_id="c",
            parent_id=None,
            role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
            text=f"message number {i}\n\n" + "filler words " * 30,
            status=MessageStatus.COMPLETED,
            created_at="2026-11-27T00:00:00Z",
        )

    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_chat(app, pilot)
        transcript = screen.query_one(Transcript)
        await transcript.show([message(i) for i in range(40, 60)])
        await pilot.pause()
        transcript.scroll_to(y=0, animate=False)  # the user scrolled to the oldest shown
        await pilot.pause()
        before = visible_text(transcript)
        assert "message number 40" in before
        transcript.prepend([message(i) for i in range(40)])
        await pilot.pause()
        assert visible_text(transcript) == before  # nothing moved under the reader
        assert [block.message.id for block in transcript.blocks][:2] == ["m0", "m1"]
        transcript.scroll_to(y=0, animate=False)
        await pilot.pause()
        assert "message number 0" in visible_text(transcript)


COPIED_REPLY = """A first paragraph long enough that an eighty column terminal has to wrap it over \
several lines of the transcript, which must not show in what is copied.

```python
def count(path: str) -> int:
    with open(path) as handle:
        return sum(1 for _ in handle)
```

- an item in a list, also long enough to be wrapped by the view at eighty columns wide
- another item"""


@pytest.mark.parametrize("size", [(80, 24), (120, 30), (160, 40)], ids=["80", "120", "160"])
async def test_a_copied_selection_is_the_text_as_written_not_as_wrapped(
    tmp_path: Path, server: ResponsesServer, size: tuple[int, int]
) -> None:
    prompt = ("A question typed in one line that is long enough to wrap " * 3).strip()
    server.queue_reply(COPIED_REPLY)
    app = make_app(write_config(tmp_path, server.base_url, sidebar=True))
    async with app.run_test(size=size) as pilot:
        screen = await start_chat(app, pilot)
        transcript = screen.query_one(Transcript)
        screen.query_one(PromptInput).text = prompt  # typed key by key, it takes seconds
        await send(pilot, app, "")
        # Lines of a block: a margin, the header, then the text.
        answer_top = transcript.blocks[0].height(transcript.scrollable_content_region.width)
        screen.selections = {transcript: Selection(Offset(0, 2), Offset(999, answer_top - 1))}
        assert screen.get_selected_text() == prompt
        screen.selections = {transcript: Selection(Offset(0, answer_top + 2), None)}
        copied = screen.get_selected_text()
        assert copied is not None
        lines = copied.split("\n")
        assert lines[0] == COPIED_REPLY.split("\n")[0]  # one line, as written
        assert "def count(path: str) -> int:" in lines  # no margin added
        assert "    with open(path) as handle:" in lines  # the code's own indentation kept
        assert any(line.endswith("by the view at eighty columns wide") for line in lines)
        # From a word in the paragraph's second row to one in its third: no line break.
        transcript.action_scroll_home()
        await pilot.pause()
        rows = [transcript.render_line(y).text for y in range(transcript.size.height)]
        second = next(y for y, row in enumerate(rows) if "A first paragraph" in row) + 1
        start = rows[second].index(rows[second].split()[2])
        selection = Selection(Offset(start, second), Offset(start + 5, second + 1))
        screen.selections = {transcript: selection}
        part = screen.get_selected_text()
        assert part is not None and "\n" not in part and part.strip() in COPIED_REPLY, part
