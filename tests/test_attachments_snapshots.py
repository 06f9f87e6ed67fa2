"""How attachments look: the prompt with two chips, the Attach… picker, a user message with
its files in the transcript (SVG snapshots; update with --snapshot-update after checking
the pictures in snapshot_report.html)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual import events

from foundry_tui.core.models import Attachment, MessageRole, MessageStatus
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.attach_picker import AttachableTree, AttachPicker
from foundry_tui.ui.widgets.attachment_chips import AttachmentChips
from foundry_tui.ui.widgets.transcript import Transcript
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

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 1_234_559  # 1.2 MB
PDF = b"%PDF-1.7\n" + b"x" * 48_191  # 48.2 kB


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    monkeypatch.setattr("foundry_tui.ui.widgets.history.when", lambda *_: "10:42")
    fix_reply_clock(monkeypatch)
    with ResponsesServer(api_key=TEST_KEY, tokens_per_second=400) as running:
        yield running


@pytest.fixture
def work(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """~/work, the app's working folder: two attachable files, one the API does not take
    (left out of the picker), a folder, a hidden file (left out too)."""
    folder = isolated_home / "work"
    (folder / "drafts").mkdir(parents=True)
    (folder / "chart.png").write_bytes(PNG)
    (folder / "Quarterly report.pdf").write_bytes(PDF)
    (folder / "notes.txt").write_text("text\n")
    (folder / ".hidden.png").write_bytes(PNG)
    monkeypatch.chdir(folder)
    return folder


async def no_blink(pilot: Any) -> None:
    from textual.widgets import Input, TextArea

    for widget in pilot.app.screen.query("Input, TextArea"):
        if isinstance(widget, (Input, TextArea)):
            widget.cursor_blink = False
    await pilot.pause(0)


def chat_app(tmp_path: Path, server: ResponsesServer) -> Any:
    return make_app(write_config(tmp_path, server.base_url, sidebar=False))


def test_prompt_with_two_chips(
    snap_compare: Any, tmp_path: Path, server: ResponsesServer, work: Path
) -> None:
    async def run_before(pilot: Any) -> None:
        app = pilot.app
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        app.post_message(events.Paste(f"{work}/chart.png '{work}/Quarterly report.pdf'"))
        chips = app.screen.query_one(AttachmentChips)
        await wait_until(pilot, lambda: len(chips.files) == 2, what="two chips")
        await pilot.press(*"What changed between these?")
        await no_blink(pilot)

    assert snap_compare(chat_app(tmp_path, server), terminal_size=(100, 24), run_before=run_before)


def test_attach_picker(
    snap_compare: Any, tmp_path: Path, server: ResponsesServer, work: Path
) -> None:
    async def run_before(pilot: Any) -> None:
        app = pilot.app
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, AttachPicker), what="picker")
        tree = app.screen.query_one(AttachableTree)
        await wait_until(pilot, lambda: len(tree.root.children) == 3, what="folder listed")
        await no_blink(pilot)

    assert snap_compare(chat_app(tmp_path, server), terminal_size=(100, 30), run_before=run_before)


def test_user_message_with_attachments(
    snap_compare: Any, tmp_path: Path, server: ResponsesServer
) -> None:
    server.queue_reply("The chart shows revenue rising; the report explains why.")

    async def run_before(pilot: Any) -> None:
        app = pilot.app
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        app.screen.query_one("#prompt").text = "What do these show?"
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: any(b.message.status == MessageStatus.COMPLETED for b in shown(app)),
            what="reply",
        )
        await app.workers.wait_for_complete()
        messages = await app.screen.session.transcript()  # as saved
        user = next(m for m in messages if m.role == MessageRole.USER)
        files = (
            Attachment("ab" * 32, "chart.png", "image/png", len(PNG)),
            Attachment("cd" * 32, "Quarterly report.pdf", "application/pdf", len(PDF)),
        )
        shown_again = [replace(m, attachments=files) if m is user else m for m in messages]
        await app.screen.query_one(Transcript).show(shown_again)
        await no_blink(pilot)

    assert snap_compare(chat_app(tmp_path, server), terminal_size=(100, 24), run_before=run_before)
