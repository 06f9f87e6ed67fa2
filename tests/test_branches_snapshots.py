"""How branches and copying look: a selected message with siblings (‹ 2/3 ›) and a reply's
code block with its copy mark, selected. Update with --snapshot-update after checking the
pictures in snapshot_report.html."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foundry_tui.core.models import MessageStatus
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.transcript import Transcript
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    chat_ready,
    fix_reply_clock,
    press_keys,
    shown,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer

CODE_REPLY = """Count them like this:

```python
def count(path: str) -> int:
    with open(path) as handle:
        return sum(1 for _ in handle)
```

Markup stays text: [bold]not bold[/bold]."""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    monkeypatch.setattr("foundry_tui.ui.widgets.history.when", lambda *_: "10:42")
    fix_reply_clock(monkeypatch)
    with ResponsesServer(api_key=TEST_KEY, tokens_per_second=400) as running:
        yield running


def settled(app: Any) -> bool:
    blocks = shown(app)
    return bool(blocks) and all(b.message.status == MessageStatus.COMPLETED for b in blocks)


async def steady(pilot: Any) -> None:
    """Every worker done and a steady cursor: the picture must not depend on timing."""
    from textual.widgets import TextArea

    await pilot.app.workers.wait_for_complete()
    for widget in pilot.app.screen.query(TextArea):
        widget.cursor_blink = False
    await pilot.pause()


async def _three_siblings(pilot: Any) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: chat_ready(app), what="chat")
    app.screen.query_one("#prompt").text = "Name a colour."
    await pilot.press("enter")
    await wait_until(pilot, lambda: settled(app) and len(shown(app)) == 2, what="the reply")
    for answer in ("Green.", "Blue."):
        await press_keys(pilot, "ctrl+r")
        await wait_until(
            pilot,
            lambda a=answer: settled(app) and shown(app)[-1].message.text == a,
            what=answer,
        )
    await steady(pilot)
    transcript = app.screen.query_one(Transcript)
    await wait_until(pilot, lambda: "‹ 3/3 ›" in shown(app)[-1].header, what="3/3")
    await pilot.press("ctrl+up", "left")
    await wait_until(pilot, lambda: shown(app)[-1].message.text == "Green.", what="2/3")
    assert transcript.cursor is not None
    await steady(pilot)


def test_a_selected_reply_with_siblings(
    snap_compare: Any, tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply("Red.")
    server.queue_reply("Green.")
    server.queue_reply("Blue.")
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    assert snap_compare(app, terminal_size=(90, 24), run_before=_three_siblings)


async def _code_block_selected(pilot: Any) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: chat_ready(app), what="chat")
    app.screen.query_one("#prompt").text = "How do I count lines?"
    await pilot.press("enter")
    await wait_until(pilot, lambda: settled(app) and len(shown(app)) == 2, what="the reply")
    await steady(pilot)
    await pilot.press("ctrl+up", "down")
    transcript = app.screen.query_one(Transcript)
    await wait_until(pilot, lambda: transcript.cursor and transcript.cursor.code == 0, what="code")
    await steady(pilot)


def test_a_code_block_with_its_copy_mark_selected(
    snap_compare: Any, tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply(CODE_REPLY)
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    assert snap_compare(app, terminal_size=(80, 26), run_before=_code_block_selected)
