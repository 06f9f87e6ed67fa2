"""A bracketed paste is text, whatever it holds: escape sequences and control characters in it
are removed, never run as keys; invalid UTF-8 is shown as U+FFFD; a paste of megabytes is
held whole without a freeze. The terminal tests write the raw bytes into the real
`foundry-tui` in a pseudo-terminal; the others drive the parser and the prompt directly."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import events
from textual.app import App, ComposeResult
from textual.message import Message

from benchmarks.ptyterm import PtyApp
from foundry_tui.core.text import sanitize
from foundry_tui.ui.terminal import PasteParser
from foundry_tui.ui.widgets.prompt import FOLD_CHARS, PromptInput
from tests.pty_terminal import PASTE_END, PASTE_START, foundry_in_pty, paste

COLOURED_LOG = "\x1b[31mERROR\x1b[0m disk full\r\x1b[32mINFO\x1b[0m retry ok"
QUIT_INSIDE = "before\x1b\x11after echo LEAKED"  # ESC, then Ctrl+Q
LOG_LINE = "2026-12-06 12:00:00 INFO worker-7 handled request in 12 ms, status 200 OK\n"


def parse(*chunks: str) -> list[Message]:
    parser = PasteParser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


def described(messages: Iterable[Message]) -> list[tuple[str, str]]:
    return [
        ("paste", message.text)
        if isinstance(message, events.Paste)
        else ("key", message.key)
        if isinstance(message, events.Key)
        else (type(message).__name__, "")
        for message in messages
    ]


# -- the parser -----------------------------------------------------------------------------


def test_a_paste_is_one_event_of_inert_text_however_the_reads_split_it() -> None:
    data = f"a{PASTE_START.decode()}{COLOURED_LOG}\x1b\x11!{PASTE_END.decode()}b\x1b[A"
    expected = [
        ("key", "a"),
        ("paste", "ERROR disk full\nINFO retry ok!"),
        ("key", "b"),
        ("key", "up"),
    ]
    assert described(parse(data)) == expected
    for cut in range(1, len(data)):  # the markers and sequences split across two reads
        assert described(parse(data[:cut], data[cut:])) == expected, cut
    assert described(parse(*data)) == expected  # one character a read


def test_keys_and_the_mouse_around_pastes_still_parse() -> None:
    data = "\x1b[<0;10;5M\x1b[1;5A" + PASTE_START.decode() + "x" + PASTE_END.decode() + "\r"
    assert described(parse(data)) == [
        ("MouseDown", ""),
        ("key", "ctrl+up"),
        ("paste", "x"),
        ("key", "enter"),
    ]


def test_a_paste_cut_off_by_the_end_of_input_is_kept() -> None:
    parser = PasteParser()
    events_seen = [*parser.feed(PASTE_START.decode() + "half a paste\x1b[20"), *parser.feed("")]
    assert described(events_seen) == [("paste", "half a paste20")]


# -- the prompt -----------------------------------------------------------------------------


class PromptApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.submitted: list[str] = []

    def compose(self) -> ComposeResult:
        yield PromptInput(id="prompt")

    def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        self.submitted.append(event.text)


async def test_text_put_in_the_prompt_is_inert() -> None:
    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        prompt.text = "restored\x1b]52;c;cHduZWQ=\x07 \x1b[2Jprompt"
        assert prompt.text == "restored prompt"
        prompt.move_cursor(prompt.document.end)
        prompt.insert("\x1b[31mred\x1b[0m\x00")
        assert prompt.text == "restored promptred"
        await pilot.press("enter")
        assert app.submitted == ["restored promptred"]


async def test_a_five_megabyte_paste_is_held_whole_and_sent_whole() -> None:
    text = LOG_LINE * (5_000_000 // len(LOG_LINE))
    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.press(*"see: ")
        app.post_message(events.Paste(text))  # as the driver does: to the focused widget
        await pilot.pause()
        lines = text.count("\n") + 1
        marker = f"[pasted {lines:,} lines, {len(text):,} characters #1]"
        assert prompt.text == f"see: {marker}"
        await pilot.press(*" thanks", "enter")
        assert app.submitted == [f"see: {text} thanks"]
        # A paste below the limit goes in as it is.
        prompt.clear()
        app.post_message(events.Paste("y" * FOLD_CHARS))
        await pilot.pause()
        assert prompt.text == "y" * FOLD_CHARS


async def test_undoing_a_paste_of_many_lines_gives_the_draft_back() -> None:
    app = PromptApp()
    async with app.run_test(size=(80, 24)) as pilot:
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.press(*"draft")
        app.post_message(events.Paste("line\n" * 50))
        await pilot.pause()
        assert prompt.document.line_count == 51
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert app.is_running and prompt.text == "draft"


# -- a real terminal ------------------------------------------------------------------------


def prompt_shows(app: PtyApp, text: str) -> None:
    app.wait_text(text, 10)
    assert app.proc.poll() is None, "the app quit"


def test_pastes_of_escapes_controls_and_bad_utf8_are_text_in_a_real_terminal(
    tmp_path: Path, server_process: Callable[..., str]
) -> None:
    with foundry_in_pty(tmp_path, server_process()) as app:
        app.wait_text("Enter to send", 20)
        app.send("draft kept")
        prompt_shows(app, "draft kept")

        # Coloured log lines: not half a prompt sent at the first colour's end.
        paste(app, COLOURED_LOG.encode())
        prompt_shows(app, "draft keptERROR disk full")
        prompt_shows(app, "INFO retry ok")
        assert not app.text().contains("You said")
        app.send("\x1a")  # Ctrl+Z undoes the paste
        app.wait_for(lambda s: not s.contains("INFO retry ok"), 5, "the undo")

        # ESC then Ctrl+Q: no quit mid-paste (the rest would have gone to the shell).
        paste(app, QUIT_INSIDE.encode())
        prompt_shows(app, "draft keptbeforeafter echo LEAKED")
        app.send("\x1a")
        app.wait_for(lambda s: not s.contains("LEAKED"), 5, "the undo")

        # Invalid UTF-8: replacement characters, no crash.
        paste(app, b"bad \xff\xfe bytes \xc3(")
        prompt_shows(app, "draft keptbad \ufffd\ufffd bytes \ufffd(")


def test_random_bytes_and_five_megabytes_pasted_into_a_real_terminal(
    tmp_path: Path, server_process: Callable[..., str]
) -> None:
    noise = random.Random(11).randbytes(64 * 1024).replace(PASTE_END, b"")
    big = (LOG_LINE * (5_000_000 // len(LOG_LINE))).encode()
    with foundry_in_pty(tmp_path, server_process()) as app:
        app.wait_text("Enter to send", 20)
        app.send("draft kept")
        prompt_shows(app, "draft kept")

        paste(app, noise)
        app.wait_for(lambda s: not s.contains("draft kept"), 10, "the paste")  # scrolled away
        app.send("\x1a")  # the app still runs, and the draft is there under the paste
        prompt_shows(app, "draft kept")

        paste(app, big)
        text = sanitize(big.decode())
        marker = f"[pasted {text.count(chr(10)) + 1:,} lines, {len(text):,} characters #1]"
        prompt_shows(app, f"draft kept{marker}")
