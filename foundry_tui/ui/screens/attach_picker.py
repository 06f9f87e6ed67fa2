"""Attach… (F3): a file picker, driven by the keyboard.

A tree of the folders and the attachable files (by suffix; the real check reads the first
bytes, later, in a thread) starting at the working folder, and a field to type or paste a
path, Tab completing it. Enter on a file picks it; Enter on a folder opens it, Backspace
in the tree goes up to the parent folder; Escape cancels. The picker only chooses: the
chat screen checks the file. Names on disk are untrusted text: shown as one inert line.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Input, Static

from foundry_tui.core.attachments import MAX_FILE_BYTES, human_size
from foundry_tui.core.dropped_paths import ATTACHABLE_SUFFIXES, complete_path
from foundry_tui.core.text import one_line

# The most of a name or path a line of the tree shows.
LABEL_CHARS = 120
KINDS = f"PNG, JPEG, WebP or GIF images and PDFs, up to {human_size(MAX_FILE_BYTES)} each"


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _home_short(path: str) -> str:
    """``path`` with the home folder written "~"."""
    home = os.path.expanduser("~")
    if path == home or path.startswith(home.rstrip(os.sep) + os.sep):
        return "~" + path[len(home.rstrip(os.sep)) :]
    return path


def _folder_line(folder: Path) -> Content:
    return Content(f"In {one_line(_home_short(str(folder)), LABEL_CHARS)}")


class AttachableTree(DirectoryTree):
    """Folders and the files the API may take; hidden entries left out."""

    BINDINGS = [
        Binding(
            "backspace",
            "parent",
            "Parent folder",
            id="attach.parent",
            tooltip="Show the folder above this one",
        )
    ]

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        # Runs in the tree's loading thread.
        return [
            path
            for path in paths
            if not path.name.startswith(".")
            and (path.suffix.lower() in ATTACHABLE_SUFFIXES or _is_dir(path))
        ]

    def process_label(self, label: str | Text) -> Text:
        plain = label.plain if isinstance(label, Text) else label
        return Text(one_line(plain, LABEL_CHARS), no_wrap=True, overflow="ellipsis")

    def action_parent(self) -> None:
        current = Path(self.path).expanduser().resolve()
        if current.parent != current:
            self.go_to(current.parent)

    def go_to(self, folder: Path) -> None:
        self.path = folder
        self.post_message(self.FolderShown(folder))

    class FolderShown(Message):
        def __init__(self, folder: Path) -> None:
            super().__init__()
            self.folder = folder


class PathField(Input):
    """The path field: Tab completes what is typed (then moves on when it cannot)."""

    BINDINGS = [
        Binding(
            "tab",
            "complete",
            "Complete",
            id="attach.complete",
            tooltip="Complete the path from the folder it names",
        )
    ]

    def action_complete(self) -> None:
        self.complete()

    @work(exclusive=True, group="complete", exit_on_error=False)
    async def complete(self) -> None:
        typed = self.value
        completed = await asyncio.to_thread(complete_path, typed) if typed else typed
        if completed != typed and self.value == typed:
            self.value = completed
            self.cursor_position = len(completed)
        elif completed == typed:
            self.screen.focus_next()


class AttachPicker(ModalScreen[Path | None]):
    """Answers the path chosen, or None."""

    CSS_PATH = "attach_picker.tcss"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="attach.cancel", tooltip="Attach nothing"),
    ]

    def __init__(self, start: Path) -> None:
        super().__init__()
        self.start = start

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="attach-dialog"):
            yield Static("Attach a file", classes="dialog-question")
            yield Static(KINDS, classes="hint")
            yield PathField(placeholder="Type or paste a path (Tab completes)", id="attach-path")
            yield Static(_folder_line(self.start), id="attach-folder")
            yield AttachableTree(self.start, id="attach-tree")
            yield Static("Enter picks · Backspace: folder above · Escape cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one(AttachableTree).focus()

    @on(AttachableTree.FolderShown)
    def _folder_shown(self, event: AttachableTree.FolderShown) -> None:
        self.query_one("#attach-folder", Static).update(_folder_line(event.folder))

    @on(DirectoryTree.FileSelected)
    def _file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.dismiss(event.path)

    @on(Input.Submitted, "#attach-path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.open_typed(event.value.strip())

    @work(exclusive=True, group="typed-path", exit_on_error=False)
    async def open_typed(self, typed: str) -> None:
        """A folder typed opens in the tree; anything else is the answer (checked later)."""
        path = Path(os.path.expanduser(typed))
        if await asyncio.to_thread(_is_dir, path):
            tree = self.query_one(AttachableTree)
            tree.go_to(path)
            tree.focus()
        else:
            self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
