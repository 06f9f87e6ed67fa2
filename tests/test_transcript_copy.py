"""The transcript's cursor and copying: the keys move over messages and code blocks; ``c``
and a click on a code block's copy mark put the Markdown or the code on the clipboard as
written (not as the view indents or wraps it), and a notice says what was copied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from foundry_tui.core.models import MessageRole
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.message_block import COPY_MARK
from foundry_tui.ui.widgets.transcript import CURSOR_BAR, Item, Transcript
from tests.helpers import (
    offset_of,
    press_keys,
    record_notifications,
    send,
    start_chat,
    visible_text,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer

LONG_LINE = "    result = compute(" + ", ".join(f"argument_{i}" for i in range(12)) + ")"
CODE = f"def main() -> None:\n{LONG_LINE}\n    print(result)"
REPLY = (
    "Here is a list that the view wraps: "
    + " ".join(f"word{i}" for i in range(30))
    + "\n\n- first item, long enough to wrap at a narrow width, "
    + " ".join(f"item{i}" for i in range(12))
    + "\n- second\n\n"
    + f"```python\n{CODE}\n```\n\n"
    + "Then a second block:\n\n```\nplain text block\n```"
)


def recording_clipboard(app: Any) -> list[str]:
    """What the app hands to ``copy_to_clipboard`` (OSC 52) from now on."""
    copied: list[str] = []
    app.copy_to_clipboard = copied.append
    return copied


async def keys(pilot: Any, *pressed: str, until: Any, what: str = "") -> None:
    """Presses ``pressed`` (queued as a fast typist would) and waits until ``until()``."""
    await press_keys(pilot, *pressed)
    await wait_until(pilot, until, what=what or f"after {pressed}")


async def to_transcript(pilot: Any, transcript: Transcript) -> None:
    """Ctrl+Up: from the prompt to the newest message."""
    await keys(pilot, "ctrl+up", until=lambda: transcript.has_focus and transcript.cursor)


def cursor_lines(transcript: Transcript) -> list[str]:
    """The lines on screen drawn with the cursor's bar."""
    return [line for line in visible_text(transcript).split("\n") if line.startswith(CURSOR_BAR)]


async def test_keys_move_the_cursor_over_messages_and_code_blocks(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply(REPLY)
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(100, 50)) as pilot:
        screen = await start_chat(app, pilot)
        await send(pilot, app, "show me code")
        transcript = screen.query_one(Transcript)
        assert transcript.cursor is None and not cursor_lines(transcript)
        await to_transcript(pilot, transcript)  # from the prompt: the newest message
        prompt, reply = transcript.blocks
        assert transcript.cursor == Item(reply)
        assert any("gpt-4o" in line for line in cursor_lines(transcript))
        await keys(pilot, "up", until=lambda: transcript.cursor == Item(prompt))
        assert [line.strip() for line in cursor_lines(transcript)] == [
            f"{CURSOR_BAR} You",
            f"{CURSOR_BAR} show me code",
        ]
        # vi keys too: the reply, then its first code block.
        await keys(pilot, "j", "down", until=lambda: transcript.cursor == Item(reply, 0))
        marked = cursor_lines(transcript)
        assert any("def main" in line for line in marked)
        assert not any("Here is a list" in line or "plain text" in line for line in marked)
        await keys(pilot, "down", until=lambda: transcript.cursor == Item(reply, 1))
        await keys(pilot, "down", "k", "k", "k", until=lambda: transcript.cursor == Item(prompt))
        assert not cursor_lines(transcript)[0].endswith("plain text block")
        prompt_box = screen.query_one("#prompt")
        await keys(pilot, "escape", until=lambda: prompt_box.has_focus)  # back to the prompt


async def test_c_copies_a_reply_as_its_markdown_not_as_wrapped_on_screen(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply(REPLY)
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(50, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await send(pilot, app, "show me code")
        transcript = screen.query_one(Transcript)
        assert "word29" not in visible_text(transcript).split("\n")[0]  # the view wraps
        copied = recording_clipboard(app)
        notices = record_notifications(app)
        await to_transcript(pilot, transcript)
        await keys(pilot, "c", until=lambda: bool(copied))
        assert copied == [REPLY]
        assert notices == [f"Copied the reply ({len(REPLY):,} characters)."]
        await keys(pilot, "up", "c", until=lambda: len(copied) == 2)
        assert copied[-1] == "show me code"
        assert notices[-1] == "Copied the prompt (12 characters)."


async def test_c_copies_the_selected_code_block_exactly(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply(REPLY)
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(50, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await send(pilot, app, "show me code")
        transcript = screen.query_one(Transcript)
        copied = recording_clipboard(app)
        notices = record_notifications(app)
        await to_transcript(pilot, transcript)
        await keys(pilot, "down", "c", until=lambda: bool(copied))
        # Indented and wrapped on screen; copied as written between the fences.
        lines = visible_text(transcript).split("\n")
        assert not any(LONG_LINE.strip() in line for line in lines)
        assert copied == [CODE]
        assert notices == ["Copied the python code block (3 lines)."]
        await keys(pilot, "down", "c", until=lambda: len(copied) == 2)
        assert copied[-1] == "plain text block"
        assert notices[-1] == "Copied the code block (1 line)."


async def test_a_click_on_the_copy_mark_copies_that_code_block(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply(REPLY)
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(60, 50)) as pilot:
        screen = await start_chat(app, pilot)
        await send(pilot, app, "show me code")
        transcript = screen.query_one(Transcript)
        copied = recording_clipboard(app)
        notices = record_notifications(app)
        marks = [
            i for i, line in enumerate(visible_text(transcript).split("\n")) if COPY_MARK in line
        ]
        assert len(marks) == 2  # one per code block
        where = offset_of(transcript, COPY_MARK)
        assert await pilot.click(Transcript, offset=where)
        await wait_until(pilot, lambda: bool(copied), what="the copy")
        assert copied == [CODE]
        assert notices == ["Copied the python code block (3 lines)."]
        reply = transcript.blocks[-1]
        assert transcript.cursor == Item(reply, 0)  # and it is selected
        # A click elsewhere in a message selects it and copies nothing.
        assert await pilot.click(Transcript, offset=offset_of(transcript, "show me code"))
        assert transcript.cursor is not None
        assert transcript.cursor.block.message.role == MessageRole.USER
        assert copied == [CODE]


HOSTILE_LANGUAGE = "[@click=app.quit]q[/]\x1b]52;c;cHduZWQ=\x07\u202e"
LANGUAGE_SHOWN = "[@click=app.quit]q[/]"
HOSTILE_TEXT = "Say [bold red]loud[/] \x1b]0;title\x07\u202eright-to-left"
TEXT_COPIED = "Say [bold red]loud[/] right-to-left"
UNSAFE = ("\x1b", "\x07", "\u202e")


async def test_untrusted_text_is_copied_and_announced_inert(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply(f"{HOSTILE_TEXT}\n\n```{HOSTILE_LANGUAGE}\nx = 1\n```")
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(80, 30), notifications=True) as pilot:
        screen = await start_chat(app, pilot)
        await send(pilot, app, "go")
        transcript = screen.query_one(Transcript)
        copied = recording_clipboard(app)
        await to_transcript(pilot, transcript)
        await keys(pilot, "c", until=lambda: bool(copied))
        # The Markdown as written, markup and all, without what could act in a terminal.
        assert copied == [f"{TEXT_COPIED}\n\n```{LANGUAGE_SHOWN}\nx = 1\n```"]
        await keys(pilot, "down", "c", until=lambda: len(copied) == 2)
        assert copied[-1] == "x = 1"
        await wait_until(
            pilot, lambda: "code block" in toast_text(app), what="the code block's toast"
        )
        toast = toast_text(app)
        assert f"Copied the {LANGUAGE_SHOWN} code block (1 line)." in toast, toast
        assert not any(c in toast for c in UNSAFE)
        await pilot.click("Toast")  # the would-be action does nothing but dismiss it
        assert app.is_running and app.screen is screen


def toast_text(app: Any) -> str:
    toasts = app.screen.query("Toast")
    return str(toasts.last().render()) if toasts else ""


async def run_command(pilot: Any, name: str) -> None:
    """Opens the palette, types ``name`` and runs the command once it is highlighted."""
    from textual.command import CommandList, CommandPalette

    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
    await press_keys(pilot, *name)
    commands = app.screen.query_one(CommandList)
    await wait_until(
        pilot,
        lambda: (
            commands.highlighted is not None
            and str(commands.get_option_at_index(commands.highlighted).prompt).startswith(name)
        ),
        what=f"{name} highlighted",
    )
    await pilot.press("enter")


async def test_the_palette_copies_the_newest_reply_and_its_code_block(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply(REPLY)
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(100, 40)) as pilot:
        await start_chat(app, pilot)
        await send(pilot, app, "show me code")
        copied = recording_clipboard(app)
        notices = record_notifications(app)
        await run_command(pilot, "Copy reply")
        await wait_until(pilot, lambda: bool(copied), what="the reply copied")
        assert copied == [REPLY]
        await run_command(pilot, "Copy code block")  # nothing selected: the reply's last one
        await wait_until(pilot, lambda: len(copied) == 2, what="the code block copied")
        assert copied[-1] == "plain text block"
        assert notices == [
            f"Copied the reply ({len(REPLY):,} characters).",
            "Copied the code block (1 line).",
        ]


async def test_down_reads_a_long_reply_a_page_at_a_time_before_moving_on(
    tmp_path: Path, server: ResponsesServer
) -> None:
    long_reply = "\n\n".join(f"Paragraph {i}." for i in range(40))
    server.queue_reply(long_reply)
    server.queue_reply("Short.")
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await start_chat(app, pilot)
        await send(pilot, app, "long")
        await send(pilot, app, "short")
        transcript = screen.query_one(Transcript)
        await to_transcript(pilot, transcript)
        long_block = transcript.blocks[1]
        # Up from the newest: "short", then the long reply's header comes into view.
        await keys(pilot, "up", "up", until=lambda: transcript.cursor == Item(long_block))
        assert "Paragraph 0." in visible_text(transcript)
        top = transcript.scroll_y
        # Down goes on through the reply, a page at a time, with the cursor on it.
        await keys(pilot, "down", until=lambda: transcript.scroll_y > top)
        assert transcript.cursor == Item(long_block)
        assert "Paragraph 0." not in visible_text(transcript)
        pages = 1
        while transcript.cursor == Item(long_block) and pages < 10:
            before = (transcript.scroll_y, transcript.cursor)
            await keys(
                pilot, "down", until=lambda b=before: (transcript.scroll_y, transcript.cursor) != b
            )
            pages += 1
        # Each page of it was shown before the cursor went on to the next prompt.
        assert transcript.cursor == Item(transcript.blocks[2]) and pages > 3
        assert "Paragraph 39." in visible_text(transcript)
