"""Exporting from the app: the palette's "Export conversation…" (a dialog for the format
and the file) and "Copy conversation as Markdown" (OSC 52, through the terminal).

The chat screen yields `export_commands` among its palette commands. The reading, the
rendering and the writing happen in the Workspace, in threads; this module only asks and
tells. The title shown in the dialog came from a prompt, a server or an imported file:
shown inert.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, RadioButton, RadioSet, Static

from foundry_tui.core.export_files import SUFFIXES
from foundry_tui.core.models import StorageError
from foundry_tui.core.workspace import ExportProblem
from foundry_tui.ui.widgets.plain import plain_line

if TYPE_CHECKING:
    from foundry_tui.core.export_files import ExportFormat
    from foundry_tui.ui.screens.chat import ChatScreen

EXPORT_TITLE: Final = "Export conversation…"
COPY_TITLE: Final = "Copy conversation as Markdown"
NOTHING_OPEN: Final = "Nothing to export yet: send a message or open a conversation first."
# The clipboard is written through the terminal (OSC 52), which carries the text base64 in
# one escape sequence: terminals cap it (often well below this), and a bigger one would
# hold the screen while it is written. A file has no such limit.
COPY_LIMIT: Final = 1_000_000


@dataclass(frozen=True)
class ExportChoice:
    form: ExportFormat
    path: str
    all_branches: bool = False  # Markdown: every branch, not only the one shown


class ExportScreen(ModalScreen[ExportChoice | None]):
    """Asks for the format and the file; Enter (or Export) writes it, Escape cancels."""

    CSS_PATH = "export.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export.cancel", tooltip="Export nothing")]

    def __init__(self, title: str, suggested: Path) -> None:
        super().__init__()
        self.conversation_title = title
        self.suggested = suggested

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="export-dialog"):
            yield Static("Export conversation", classes="dialog-question")
            yield Static(plain_line(self.conversation_title or "Untitled", 54), id="export-title")
            with RadioSet(id="export-format"):
                yield RadioButton("Markdown, to read: the branch shown", value=True, id="format-md")
                yield RadioButton("Markdown, every branch", id="format-md-all")
                yield RadioButton("JSON, every detail and branch (for import)", id="format-json")
            yield Static("Save to", classes="hint")
            yield Input(value=str(self.suggested), id="export-path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="export-save")
                yield Button("Cancel", id="export-cancel")
            yield Static("Enter to export, Escape to cancel", classes="hint")

    def on_mount(self) -> None:
        field = self.query_one("#export-path", Input)
        field.focus()
        field.cursor_position = len(field.value)

    @property
    def form(self) -> ExportFormat:
        pressed = self.query_one(RadioSet).pressed_button
        return "json" if pressed is not None and pressed.id == "format-json" else "md"

    @property
    def all_branches(self) -> bool:
        pressed = self.query_one(RadioSet).pressed_button
        return pressed is not None and pressed.id == "format-md-all"

    @on(RadioSet.Changed)
    def _format_changed(self) -> None:
        """The file's suffix follows the format, unless the user named it otherwise."""
        field = self.query_one("#export-path", Input)
        wanted = SUFFIXES[self.form]
        for suffix in SUFFIXES.values():
            if suffix != wanted and field.value.endswith(suffix):
                field.value = field.value[: -len(suffix)] + wanted

    @on(Input.Submitted, "#export-path")
    @on(Button.Pressed, "#export-save")
    def _export(self) -> None:
        path = self.query_one("#export-path", Input).value
        self.dismiss(ExportChoice(self.form, path, all_branches=self.all_branches))

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def export_commands(chat: ChatScreen) -> Iterator[SystemCommand]:
    """The palette's two export commands for the conversation open on ``chat``; with none
    open, they say so instead."""
    session = chat.session
    if session is None:
        hint = partial(chat.notify, NOTHING_OPEN)
        yield SystemCommand(EXPORT_TITLE, f"(no conversation open) {NOTHING_OPEN}", hint)
        yield SystemCommand(COPY_TITLE, f"(no conversation open) {NOTHING_OPEN}", hint)
        return
    conversation = session.conversation
    yield SystemCommand(
        EXPORT_TITLE,
        "Save this conversation in a file: Markdown to read, or JSON with every detail",
        lambda: chat.run_worker(
            _export(chat, conversation.id, conversation.title),
            group="export",
            exclusive=True,
            exit_on_error=False,
        ),
    )
    yield SystemCommand(
        COPY_TITLE,
        "Copy this whole conversation to the clipboard, as Markdown",
        lambda: chat.run_worker(
            _copy(chat, conversation.id), group="export", exclusive=True, exit_on_error=False
        ),
    )


async def _export(chat: ChatScreen, conversation_id: str, title: str) -> None:
    workspace = chat.workspace
    suggested = await workspace.suggested_export_path(title, "md")
    choice = await chat.app.push_screen_wait(ExportScreen(title, suggested))
    if choice is None:
        return
    try:
        path = await workspace.export_conversation(
            conversation_id, choice.form, choice.path, all_branches=choice.all_branches
        )
    except (ExportProblem, LookupError, StorageError) as error:
        chat.notify(str(error), title="Could not export", severity="error", timeout=15)
        return
    chat.notify(f"Saved to {path}", title="Exported")


async def _copy(chat: ChatScreen, conversation_id: str) -> None:
    try:
        text = await chat.workspace.conversation_markdown(conversation_id)
    except (LookupError, StorageError) as error:
        chat.notify(str(error), title="Could not copy", severity="error", timeout=15)
        return
    if len(text) > COPY_LIMIT:
        chat.notify(
            f"It is {len(text):,} characters, more than a terminal passes to the clipboard: "
            f"use “{EXPORT_TITLE}” instead.",
            title="Too long to copy",
            severity="warning",
            timeout=15,
        )
        return
    chat.app.copy_to_clipboard(text)
    chat.notify(f"Copied the conversation as Markdown ({len(text):,} characters).")
