"""The palette's "Export conversation…" and "Copy conversation as Markdown": Pilot tests
against the local test server, a snapshot of the dialog, and an imported hostile title
shown inert."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from textual.app import App
from textual.command import CommandPalette
from textual.widgets import Input, OptionList, Static

from foundry_tui.core import transfer
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.export import NOTHING_OPEN, ExportScreen
from foundry_tui.ui.widgets.history import ConversationList
from tests.helpers import (
    chat_ready,
    record_notifications,
    send,
    start_chat,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer
from tests.test_export import document
from tests.test_untrusted_surfaces import TITLE, TITLE_SHOWN, inert


async def run_command(pilot: Any, app: App[Any], title: str) -> None:
    """Opens the palette, finds the command ``title`` and runs it."""
    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
    app.screen.query_one("CommandInput", Input).value = title
    await wait_until(
        pilot,
        lambda: any(
            title in str(option.prompt)
            for results in app.screen.query(OptionList)
            for option in results.options
        ),
        what=f"{title} in the palette",
    )
    await pilot.press("enter")


async def test_export_and_copy_from_the_palette(
    tmp_path: Path, server: ResponsesServer, isolated_home: Path
) -> None:
    """Before a conversation, both commands say so; after a turn, Export writes the format
    and the file chosen in its dialog, and Copy puts the Markdown on the clipboard."""
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(140, 40)) as pilot:
        chat = await start_chat(app, pilot)
        said = record_notifications(app)
        await run_command(pilot, app, "Copy conversation as Markdown")
        await wait_until(pilot, lambda: bool(said), what="the hint")
        assert said == [NOTHING_OPEN] and app.screen is chat and app.clipboard == ""
        said.clear()

        reply = (await send(pilot, app, "hello")).message
        await run_command(pilot, app, "Export conversation…")
        await wait_until(pilot, lambda: isinstance(app.screen, ExportScreen), what="the dialog")
        field = app.screen.query_one("#export-path", Input)
        assert field.value == str(isolated_home / "hello.md")  # no Downloads folder: home
        await pilot.click("#format-json")
        await wait_until(pilot, lambda: field.value.endswith("hello.json"), what="the suffix")
        field.value = str(tmp_path / "chat.json")
        await pilot.click("#export-save")
        await wait_until(pilot, lambda: bool(said), what="the export's outcome")
        assert app.screen is chat
        out = tmp_path / "chat.json"
        assert said == [f"Exported: Saved to {out}"]
        said.clear()

        await run_command(pilot, app, "Copy conversation as Markdown")
        await wait_until(pilot, lambda: bool(said), what="the copy's outcome")
        copied = app.clipboard
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["format"] == "foundry-tui.conversation"
    assert [m["text"] for m in data["messages"]] == ["hello", "You said: hello"]
    assert reply.response_id is not None
    assert data["messages"][1]["response_id"] == reply.response_id
    assert copied.startswith('---\ntitle: "hello"\n')
    assert copied.endswith("\n## User\n\nhello\n\n## Assistant (gpt-4o)\n\nYou said: hello\n")
    assert said == [f"Copied the conversation as Markdown ({len(copied):,} characters)."]


async def test_an_imported_hostile_title_stays_inert(
    tmp_path: Path, server: ResponsesServer, isolated_home: Path
) -> None:
    """Imported from a file: in the history list, above the transcript, in the export
    dialog and in the file name it suggests."""
    data = document()
    data["conversation"]["title"] = TITLE
    with Store.open(tmp_path / "history.db") as store:
        transfer.save_imported(store, transfer.parse(json.dumps(data).encode()))
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(160, 40)) as pilot:
        chat = await start_chat(app, pilot)
        history = chat.query_one(ConversationList)
        await wait_until(pilot, lambda: history.option_count == 1, what="the history")
        entry = history.render_line(0).text
        assert TITLE_SHOWN in entry and inert(entry)
        history.focus()
        history.highlighted = 0
        await pilot.press("enter")
        title = chat.query_one("#conversation-title", Static)
        await wait_until(pilot, lambda: TITLE_SHOWN in str(title.render()), what="the title")
        await wait_until(pilot, lambda: chat.session is not None, what="opened")
        await run_command(pilot, app, "Export conversation…")
        await wait_until(pilot, lambda: isinstance(app.screen, ExportScreen), what="the dialog")
        shown = str(app.screen.query_one("#export-title", Static).render())
        assert shown == TITLE_SHOWN
        path = app.screen.query_one("#export-path", Input).value
        assert path == str(isolated_home / "title-b-t-b-end.md")
        said = record_notifications(app)
        await pilot.press("escape")  # nothing written, nothing said
        await wait_until(pilot, lambda: app.screen is chat, what="the dialog closed")
        await app.workers.wait_for_complete()
        assert said == [] and not Path(path).exists()


async def _dialog(pilot: Any) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: chat_ready(app), what="chat")
    await app.push_screen(
        ExportScreen(
            "Deploy checklist for friday",
            Path("/home/user/Downloads/deploy-checklist-for-friday.md"),
        )
    )
    app.screen.query_one("#export-path", Input).cursor_blink = False
    await app.workers.wait_for_complete()
    await pilot.pause(0)


def test_export_dialog(snap_compare: Any, tmp_path: Path, server: ResponsesServer) -> None:
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    assert snap_compare(app, terminal_size=(100, 30), run_before=_dialog)
