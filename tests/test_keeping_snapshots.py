"""How writing and keeping look (SVG snapshots): the prompt back from the editor, the
delete question offering the server's stored responses, the archived list. Update with
--snapshot-update after checking the pictures in snapshot_report.html."""

from __future__ import annotations

import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foundry_tui.core.models import GenerationSettings, MessageRole, MessageStatus
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.dialogs import DeleteScreen
from foundry_tui.ui.widgets.history import ConversationList, HistoryPanel
from tests.helpers import KEY_VARIABLE, TEST_KEY, chat_ready, wait_until, write_config
from tests.responses_server import ResponsesServer
from tests.test_snapshots import no_blink

EDITED = """Review this plan:

1. Drain the **node**
2. Upgrade, then uncordon

Markup stays text: [bold]not bold[/bold]."""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    monkeypatch.setattr("foundry_tui.ui.widgets.history.when", lambda *_: "10:42")
    # The dialog names the server; the test server's port changes from run to run.
    monkeypatch.setattr(
        "foundry_tui.core.workspace.Workspace.server_host",
        property(lambda self: "myres.openai.azure.com"),
    )
    with ResponsesServer(api_key=TEST_KEY) as running:
        yield running


def saved(db: Path, titles: list[str], *, archived: int = 0) -> None:
    """Conversations of two turns each, the first ``archived`` of them archived."""
    with Store.open(db) as store:
        for number, title in enumerate(titles):
            made = store.create_conversation(
                profile="local", settings=GenerationSettings(model="gpt-4o"), title=title
            )
            for turn in range(2):
                store.add_message(
                    conversation_id=made.id,
                    role=MessageRole.USER,
                    text=f"{title} {turn}",
                    status=MessageStatus.COMPLETED,
                )
                store.add_message(
                    conversation_id=made.id,
                    role=MessageRole.ASSISTANT,
                    text="ok",
                    status=MessageStatus.COMPLETED,
                    response_id=f"resp_{number}_{turn}",
                )
            if number < archived:
                store.archive_conversation(made.id)


def test_prompt_back_from_the_editor(
    snap_compare: Any, tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor = tmp_path / "editor.py"
    editor.write_text(
        f"#!{sys.executable}\nimport sys\nopen(sys.argv[-1], 'w').write({EDITED!r} + '\\n')\n",
        encoding="utf-8",
    )
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("EDITOR", str(editor))

    async def edited(pilot: Any) -> None:
        app = pilot.app
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        prompt = app.screen.query_one("#prompt")
        await pilot.press(*"draft", "ctrl+e")
        await wait_until(pilot, lambda: prompt.text == EDITED, what="the editor's text")
        # The cursor is drawn or not with the blink's phase: the picture is taken without it.
        app.screen.query_one("#transcript").focus()
        await wait_until(pilot, lambda: not prompt.has_focus, what="the prompt left")
        await no_blink(pilot)

    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    assert snap_compare(app, terminal_size=(100, 30), run_before=edited)


def test_delete_question_offers_the_stored_responses(
    snap_compare: Any, tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url, sidebar=False)
    saved(config.db_path, ["Kubernetes pod restarts"])

    async def asking(pilot: Any) -> None:
        app = pilot.app
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        history = app.screen.query_one(ConversationList)
        await wait_until(
            pilot,
            lambda: history.option_count > 0 and history.get_option_at_index(0).id is not None,
            what="the list",
        )
        await pilot.press("ctrl+o")  # the history list, shown and focused
        await wait_until(pilot, lambda: history.has_focus, what="the list focused")
        history.highlighted = 0
        await pilot.press("delete")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, DeleteScreen) and bool(app.screen.query("Checkbox")),
            what="the question",
        )
        await pilot.press("s")
        await no_blink(pilot)

    assert snap_compare(make_app(config), terminal_size=(110, 30), run_before=asking)


def test_archived_list(snap_compare: Any, tmp_path: Path, server: ResponsesServer) -> None:
    config = write_config(tmp_path, server.base_url, sidebar=False)
    saved(config.db_path, ["Old incident notes", "Q3 planning", "Kept one"], archived=2)

    async def archived(pilot: Any) -> None:
        app = pilot.app
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        history = app.screen.query_one(ConversationList)
        await wait_until(
            pilot,
            lambda: history.option_count > 0 and history.get_option_at_index(0).id is not None,
            what="the list",
        )
        await pilot.press("ctrl+o")  # the history list, shown and focused
        await wait_until(pilot, lambda: history.has_focus, what="the list focused")
        await pilot.press("v")
        await wait_until(
            pilot,
            lambda: (
                app.screen.query_one(HistoryPanel).showing_archived and history.option_count == 2
            ),
            what="the archived list",
        )
        await app.workers.wait_for_complete()
        await no_blink(pilot)

    assert snap_compare(make_app(config), terminal_size=(110, 30), run_before=archived)
