"""An open code block is drawn plain while the reply streams, in colour once closed.

Highlighting a 40-line block took ~7 ms of each ~10 ms repaint of a streaming reply (and
three Compare columns repaint at once): the block being written is drawn as plain text
until its closing fence comes, or the reply ends. What is drawn is otherwise the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from foundry_tui.core.models import MessageStatus
from foundry_tui.ui.app import make_app
from foundry_tui.ui.markdown_split import open_fence, with_plain_open_fence
from foundry_tui.ui.widgets.message_block import LineRenderer
from foundry_tui.ui.widgets.transcript import Transcript
from tests.helpers import KEY_VARIABLE, TEST_KEY, chat_ready, replies, wait_until, write_config
from tests.responses_server import ResponsesServer

CODE = "".join(f"value_{n} = compute({n})  # step {n}\n" for n in range(30))


@pytest.mark.parametrize(
    ("text", "open_line"),
    [
        ("Intro\n\n```python\nx = 1\n", "```python"),
        ("Intro\n\n```python\nx = 1\n```\n", None),
        ("~~~ruby\nputs 1\n", "~~~ruby"),
        ("```python\nx = 1\n```\n\n```js\nlet a\n", "```js"),
        ("  ```python\nx\n", "  ```python"),
        ("```pyth", None),  # the opening line is still coming
        ("No code at all.\n", None),
    ],
)
def test_the_fence_still_open_is_found(text: str, open_line: str | None) -> None:
    span = open_fence(text)
    assert (None if span is None else text[span[0] : span[1]]) == open_line


def test_only_the_open_fence_is_made_plain() -> None:
    text = "```python\nx = 1\n```\n\nThen:\n\n````python\ny = 2\n"
    assert with_plain_open_fence(text) == "```python\nx = 1\n```\n\nThen:\n\n````text\ny = 2\n"
    closed = "```python\nx = 1\n```\n"
    assert with_plain_open_fence(closed) is closed
    unnamed = "```\nx = 1\n"
    assert with_plain_open_fence(unnamed) is unnamed


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, tokens_per_second=200) as running:
        yield running


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Markdown text handed to the renderer with its code blocks."""
    texts: list[str] = []
    original = LineRenderer.markdown_with_code

    def recording(self: LineRenderer, text: str, width: int) -> tuple[object, object]:
        texts.append(text)
        return original(self, text, width)

    monkeypatch.setattr(LineRenderer, "markdown_with_code", recording)
    return texts


async def test_the_block_being_written_is_plain_and_in_colour_once_the_reply_ends(
    tmp_path: Path, server: ResponsesServer, rendered: list[str]
) -> None:
    # The reply ends inside its code block (as one cut off at its token limit does).
    server.queue_reply("Here it is:\n\n```python\n" + CODE)
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        app.screen.query_one("#prompt").text = "code please"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: bool(replies(app)) and "step 3" in replies(app)[-1].source,
            what="the code streaming",
        )
        await wait_until(
            pilot,
            lambda: (
                bool(replies(app)) and replies(app)[-1].message.status is MessageStatus.COMPLETED
            ),
            what="the reply's end",
        )
        await pilot.pause(0.2)
        streamed = [text for text in rendered if "step 3" in text]
        assert streamed and "```text\n" in streamed[0]  # drawn plain while it streamed
        assert "```python\n" in rendered[-1] and "step 29" in rendered[-1]  # then in colour
        block = replies(app)[-1]
        transcript = app.screen.query_one(Transcript)
        width = transcript.scrollable_content_region.width
        # The code block is known by its language again (the copy mark, the code spans).
        assert [span.language for span in block.code_spans] == ["python"]
        assert block.rendered_at(width)
