"""How the screens look: SVG snapshots (pytest-textual-snapshot). Update with --snapshot-update
after checking the new pictures in snapshot_report.html."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from foundry_tui.config import load_config
from foundry_tui.core.models import MessageStatus
from foundry_tui.ui.app import make_app
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    chat_ready,
    fix_reply_clock,
    shown,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer

REPLY = """## Plan

1. Read the **file**
2. Count the lines

```python
def count(path: str) -> int:
    with open(path) as handle:
        return sum(1 for _ in handle)
```

Markup stays text: [bold]not bold[/bold]."""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    # A fixed clock for the history list's "when" column.
    monkeypatch.setattr("foundry_tui.ui.widgets.history.when", lambda *_: "10:42")
    fix_reply_clock(monkeypatch)
    with ResponsesServer(api_key=TEST_KEY, tokens_per_second=400) as running:
        yield running


async def no_blink(pilot: Any) -> None:
    """A steady cursor: a blinking one makes the picture depend on timing."""
    from textual.widgets import Input, TextArea

    for widget in pilot.app.screen.query("Input, TextArea"):
        if isinstance(widget, (Input, TextArea)):
            widget.cursor_blink = False
    await pilot.pause(0)  # the steady cursor drawn


def chat_app(tmp_path: Path, server: ResponsesServer, *, sidebar: bool = True) -> Any:
    return make_app(write_config(tmp_path, server.base_url, sidebar=sidebar))


async def _streamed_reply(pilot: Any) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: chat_ready(app), what="chat")
    app.screen.query_one("#prompt").text = "How do I count lines in a file?"
    await pilot.press("enter")
    await wait_until(
        pilot,
        lambda: any(block.message.status == MessageStatus.COMPLETED for block in shown(app)),
        what="streamed reply",
    )
    await app.workers.wait_for_complete()  # the turn's end shown everywhere
    await no_blink(pilot)


def test_chat_screen_with_streamed_reply(
    snap_compare: Any, tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply(REPLY)
    assert snap_compare(
        chat_app(tmp_path, server, sidebar=False),
        terminal_size=(100, 34),
        run_before=_streamed_reply,
    )


def test_chat_screen_at_80_columns(
    snap_compare: Any, tmp_path: Path, server: ResponsesServer
) -> None:
    """A new user's 80 columns: the status line keeps its figures (fewer words), and the key
    bar keeps Quit and the palette key."""
    server.queue_reply("Two lines,\nno more.")
    config = replace(write_config(tmp_path, server.base_url), sidebar=None)
    assert snap_compare(make_app(config), terminal_size=(80, 24), run_before=_streamed_reply)


async def _invalid_temperature(pilot: Any) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: chat_ready(app), what="chat")
    field = app.screen.query_one("#temperature-input")
    field.focus()
    await pilot.press(*"2.5")
    error = app.screen.query_one("#temperature-error")
    await wait_until(pilot, lambda: "2.0" in str(error.render()), what="the refusal shown")
    await no_blink(pilot)


def test_sidebar_with_a_refused_value(
    snap_compare: Any, tmp_path: Path, server: ResponsesServer
) -> None:
    assert snap_compare(
        chat_app(tmp_path, server), terminal_size=(130, 40), run_before=_invalid_temperature
    )


async def _reasoning_settings(pilot: Any) -> None:
    from foundry_tui.core.models import GenerationSettings

    app = pilot.app
    await wait_until(pilot, lambda: chat_ready(app), what="chat")
    app.screen.show_settings(
        GenerationSettings(
            model="gpt-4o",
            max_output_tokens=4096,
            reasoning_effort="high",
            reasoning_summary="auto",
            verbosity=None,
        )
    )
    app.screen.query_one("#verbosity-select").focus()
    await pilot.pause()
    await no_blink(pilot)


def test_sidebar_with_reasoning_settings(
    snap_compare: Any, tmp_path: Path, server: ResponsesServer
) -> None:
    """Reasoning effort, summary and verbosity below the numbers; the focused one marked."""
    assert snap_compare(
        chat_app(tmp_path, server), terminal_size=(130, 44), run_before=_reasoning_settings
    )


async def _history(pilot: Any) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: chat_ready(app), what="chat")
    for prompt in ("Deploy checklist for friday", "Why is my bicep failing", "Summarise RFC 9110"):
        app.screen.query_one("#prompt").text = prompt
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda p=prompt: any(
                v.message.status == MessageStatus.COMPLETED and v.message.text == f"You said: {p}"
                for v in shown(app)
            ),
            what=prompt,
        )
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: not shown(app), what="new")
    await pilot.press("ctrl+o")
    history = app.screen.query_one("#history-list")
    await wait_until(pilot, lambda: history.option_count == 3, what="history")
    await app.workers.wait_for_complete()
    await no_blink(pilot)


def test_history_list(snap_compare: Any, tmp_path: Path, server: ResponsesServer) -> None:
    assert snap_compare(
        chat_app(tmp_path, server, sidebar=False), terminal_size=(110, 30), run_before=_history
    )


def fixed_local_status(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, installed: bool) -> None:
    """The setup screen shows what this machine has; the pictures must not depend on it."""
    from foundry_tui.local import discovery

    model = tmp_path / discovery.BUNDLED_MODEL_FILE
    with model.open("wb") as handle:
        handle.truncate(98_000_000)  # sparse: the size is what the screen shows
    status = discovery.LocalStatus(
        runtime=installed,
        runtime_version="2026.10.11549" if installed else None,
        model=model if installed else None,
        avx2=True,
    )
    monkeypatch.setattr(discovery, "local_status", lambda: status)


@pytest.mark.parametrize("installed", [True, False], ids=["local-model", "no-local-model"])
def test_setup_screen(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: bool
) -> None:
    fixed_local_status(monkeypatch, tmp_path, installed=installed)
    app = make_app(load_config(Path("/home/user/.config/foundry-tui/config.toml")))
    assert snap_compare(app, terminal_size=(100, 44), run_before=_setup)


async def _setup(pilot: Any) -> None:
    from foundry_tui.ui.screens.setup import SetupScreen

    app = pilot.app
    await wait_until(
        pilot,
        lambda: isinstance(app.screen, SetupScreen) and app.screen.is_mounted,
        what="setup screen",
    )
    await no_blink(pilot)
