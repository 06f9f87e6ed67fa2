"""A huge reply is saved whole and shown cut, with a note, while it streams and when the
conversation is opened again; Markdown is never asked to render more than the head.
The cut sizes are made small here; the real ones apply above half a megabyte."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets import message_block
from foundry_tui.ui.widgets.message_block import LineRenderer, MessageBlock
from foundry_tui.ui.widgets.transcript import Transcript
from tests.helpers import KEY_VARIABLE, send, start_chat, write_config
from tests.responses_server import ResponsesServer, make_text

CUT_ABOVE, HEAD, TAIL = 4000, 1200, 500
HUGE = make_text(1000)  # about 6,500 characters


@pytest.fixture
def small_cut(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Small cut sizes; yields the length of every text handed to Markdown to render."""
    for name, value in (("CUT_ABOVE_CHARS", CUT_ABOVE), ("HEAD_CHARS", HEAD), ("TAIL_CHARS", TAIL)):
        monkeypatch.setattr(message_block, name, value, raising=False)
    rendered: list[int] = []
    markdown = LineRenderer.markdown
    with_code = LineRenderer.markdown_with_code

    def recording(self: LineRenderer, text: str, width: int) -> list[object]:
        rendered.append(len(text))
        return markdown(self, text, width)  # type: ignore[return-value]

    def recording_with_code(self: LineRenderer, text: str, width: int) -> tuple[object, object]:
        rendered.append(len(text))
        return with_code(self, text, width)

    monkeypatch.setattr(LineRenderer, "markdown", recording)
    monkeypatch.setattr(LineRenderer, "markdown_with_code", recording_with_code)
    yield rendered


def assert_cut(block: MessageBlock, text: str) -> None:
    shown = block.source
    assert "shown cut" in shown and len(shown) < len(text)
    assert block.cut_note in shown
    assert f"{len(text):,} characters" in block.cut_note and "whole text is saved" in shown
    head, tail = shown.split(block.cut_note)
    assert text.startswith(head.rstrip("\n")) and len(head) <= HEAD + 1
    assert text.endswith(tail.lstrip("\n")) and len(tail) <= TAIL + 1


def drawn(block: MessageBlock, width: int) -> list[str]:
    """The block's lines as the transcript draws them at ``width``."""
    return [block.plain_line(y) for y in range(block.height(width))]


@pytest.mark.parametrize("per_delta", [100, 10_000], ids=["many deltas", "one delta"])
async def test_a_huge_reply_is_shown_cut_and_saved_whole(
    tmp_path: Path, small_cut: list[int], per_delta: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, "unused")
    with ResponsesServer(tokens_per_delta=per_delta) as server:
        config = write_config(tmp_path, server.base_url)
        server.queue_reply(HUGE)
        app = make_app(config)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await start_chat(app, pilot)
            reply = await send(pilot, app, "go")
            assert_cut(reply, HUGE)
            width = screen.query_one(Transcript).scrollable_content_region.width
            assert reply.rendered_at(width)
            assert any("shown cut" in line for line in drawn(reply, width))
        assert max(small_cut) <= CUT_ABOVE  # all of it only while it was under the limit
        with Store.open(config.db_path) as store:
            [summary] = store.list_conversations()
            saved = store.transcript(summary.id)[-1]
        assert saved.text == HUGE

        # Opened again: cut the same way, from the saved text, and only the head is
        # rendered as Markdown.
        small_cut.clear()
        reopened = MessageBlock(saved)
        assert_cut(reopened, HUGE)
        reopened.render(100, renderer())
        assert any("shown cut" in line for line in drawn(reopened, 100))
        assert small_cut and max(small_cut) <= HEAD
        # A message under the limit is shown whole.
        short = MessageBlock(replace(saved, text=HUGE[: CUT_ABOVE - 1]))
        assert short.source == HUGE[: CUT_ABOVE - 1]


def renderer() -> LineRenderer:
    from io import StringIO

    from rich.console import Console
    from rich.style import Style

    plain = Style()
    palette = message_block.Palette(*[plain] * 8, code_theme="default")
    return LineRenderer(Console(file=StringIO(), width=100), palette)
