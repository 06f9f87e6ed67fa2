"""Branches in the app's other places: a search that finds text on a branch not shown opens
the conversation on that branch; the export writes the branch shown or every branch."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from foundry_tui import cli
from foundry_tui.core.models import GenerationSettings, MessageRole, MessageStatus
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.export import ExportScreen
from foundry_tui.ui.widgets.history import ConversationList
from tests.helpers import chat_ready, visible_text, wait_until
from tests.test_export_tui import run_command
from tests.test_history import NoBackend, config_for


def two_branches(store: Store) -> str:
    conversation = store.create_conversation(
        profile="local", settings=GenerationSettings(model="gpt-4o"), title="Animals"
    )
    cid = conversation.id

    def add(role: MessageRole, text: str, parent: str | None = None) -> str:
        return store.add_message(
            conversation_id=cid,
            role=role,
            text=text,
            status=MessageStatus.COMPLETED,
            parent_id=parent,
        ).id

    add(MessageRole.USER, "Tell me about animals")
    reply = add(MessageRole.ASSISTANT, "Which ones?")
    add(MessageRole.USER, "Zebras, please", reply)
    add(MessageRole.ASSISTANT, "Zebras have stripes.")
    add(MessageRole.USER, "Lions, please", reply)  # written last: the branch shown
    add(MessageRole.ASSISTANT, "Lions have manes.")
    return cid


async def test_opening_a_search_result_shows_the_branch_that_matched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("foundry_tui.ui.widgets.history.HOLD_SECONDS", 60.0)
    config = config_for(tmp_path)
    with Store.open(config.db_path) as store:
        cid = two_branches(store)
    app = make_app(config, backend_factory=lambda profile: NoBackend())  # type: ignore[arg-type,return-value]
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        listed = app.screen.query_one(ConversationList)
        await pilot.press("ctrl+o", "shift+tab", *"stripes")
        await wait_until(pilot, lambda: listed.option_count == 1, what="the match")
        await pilot.press("enter", "enter")  # to the list, then open
        transcript = app.screen.query_one("Transcript")
        await wait_until(
            pilot, lambda: "Zebras have stripes." in visible_text(transcript), what="zebras"
        )
        assert "Lions" not in visible_text(transcript)
    with Store.open(config.db_path) as store:  # remembered as the branch last shown
        assert store.transcript(cid)[-1].text == "Zebras have stripes."


async def test_the_export_dialog_writes_every_branch_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_for(tmp_path)
    with Store.open(config.db_path) as store:
        two_branches(store)
    app = make_app(config, backend_factory=lambda profile: NoBackend())  # type: ignore[arg-type,return-value]
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        listed = app.screen.query_one(ConversationList)
        await wait_until(pilot, lambda: listed.option_count == 1, what="the history")
        listed.focus()
        listed.highlighted = 0
        await pilot.press("enter")
        chat = app.screen
        await wait_until(pilot, lambda: chat.session is not None, what="opened")  # type: ignore[attr-defined]
        for choice, name in (("#format-md", "shown.md"), ("#format-md-all", "every.md")):
            await run_command(pilot, app, "Export conversation…")
            await wait_until(pilot, lambda: isinstance(app.screen, ExportScreen), what="dialog")
            await pilot.click(choice)
            app.screen.query_one("#export-path", Input).value = str(tmp_path / name)
            await pilot.click("#export-save")
            written = tmp_path / name
            await wait_until(pilot, written.exists, what=name)
    shown = (tmp_path / "shown.md").read_text(encoding="utf-8")
    every = (tmp_path / "every.md").read_text(encoding="utf-8")
    assert "Lions have manes." in shown and "Zebras" not in shown
    assert "Lions have manes." in every and "Zebras have stripes." in every
    assert "**Branch 2 of 2**, branching off after this reply: *Which ones?*" in every


def test_export_all_branches_on_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    with Store.open(db) as store:
        cid = two_branches(store)
    out = tmp_path / "out.md"
    assert cli.main(["export", cid, "--db", str(db), "-o", str(out)]) == 0
    assert "Zebras" not in out.read_text(encoding="utf-8")
    assert cli.main(["export", cid, "--all-branches", "--db", str(db), "-o", str(out)]) == 0
    assert "Zebras have stripes." in out.read_text(encoding="utf-8")
