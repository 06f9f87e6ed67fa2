"""The files going with the next prompt, one chip a file under the prompt: its name, type
and size, and a ✕ that removes it.

Tab from the prompt reaches the chips; Left and Right move between them, Delete or
Backspace removes the one focused, Escape goes back to the prompt. A file's name is
untrusted text (markup, escape sequences, bidi overrides, a name of 500 characters): shown
inert and cut to one short line.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from foundry_tui.core.attachments import FileToAttach, describe
from foundry_tui.core.text import one_line

# The most of a file's name a chip shows; the whole name is its tooltip.
NAME_CHARS = 48
REMOVE = "✕"


def chip_text(name: str, media_type: str, size: int) -> str:
    """A chip's words: "report.pdf · PDF document, 1.2 MB", the name made one inert line."""
    return f"{one_line(name, NAME_CHARS)} · {describe(media_type, size)}"


class _Remove(Static):
    """The chip's ✕: a click removes the chip."""

    def on_click(self, event: events.Click) -> None:
        event.stop()
        chip = self.parent
        if isinstance(chip, AttachmentChip):
            chip.remove_me()


class AttachmentChip(Horizontal, can_focus=True):
    """One file: its words and a ✕."""

    BINDINGS = [
        Binding(
            "delete,backspace",
            "remove_me",
            "Remove",
            id="chips.remove",
            tooltip="Leave this file out of the next prompt",
        ),
        Binding("left", "step(-1)", "Previous", show=False, id="chips.previous"),
        Binding("right", "step(1)", "Next", show=False, id="chips.next"),
        Binding("escape", "back", "Prompt", show=False, id="chips.back"),
    ]

    def __init__(self, file: FileToAttach) -> None:
        super().__init__(classes="chip")
        self.file = file
        self.tooltip = Content(one_line(file.name, 500))

    def compose(self) -> ComposeResult:
        file = self.file
        yield Static(
            Content(chip_text(file.name, file.media_type, file.size)), classes="chip-label"
        )
        yield _Remove(REMOVE, classes="chip-remove")

    def remove_me(self) -> None:
        self.post_message(AttachmentChips.RemoveWanted(self))

    def action_remove_me(self) -> None:
        self.remove_me()

    def action_step(self, step: int) -> None:
        chips = list(self.parent.query_children(AttachmentChip)) if self.parent else []
        index = chips.index(self) + step if self in chips else 0
        if 0 <= index < len(chips):
            chips[index].focus()

    def action_back(self) -> None:
        self.post_message(AttachmentChips.Done())


class AttachmentChips(VerticalScroll, can_focus=False):
    """The chips of the files to send; hidden while there are none. The screen holds the
    list of files here and reads it when the prompt is sent."""

    class RemoveWanted(Message):
        def __init__(self, chip: AttachmentChip) -> None:
            super().__init__()
            self.chip = chip

    class Changed(Message):
        """The files changed (added or removed)."""

        def __init__(self, chips: AttachmentChips) -> None:
            super().__init__()
            self.chips = chips

    class Done(Message):
        """The user left the chips (Escape, or the last one removed)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.display = False

    @property
    def files(self) -> tuple[FileToAttach, ...]:
        return tuple(chip.file for chip in self.query_children(AttachmentChip))

    async def add(self, files: Iterable[FileToAttach]) -> None:
        new = [AttachmentChip(file) for file in files]
        if not new:
            return
        await self.mount_all(new)
        self.display = True
        self.post_message(self.Changed(self))

    async def drop(self, files: Iterable[FileToAttach]) -> None:
        """Removes the chips of ``files`` (those sent with a prompt)."""
        going = set(files)
        chips = [chip for chip in self.query_children(AttachmentChip) if chip.file in going]
        if chips:
            await self.remove_children(chips)
            self._after_removal()

    @on(RemoveWanted)
    async def _remove_wanted(self, event: RemoveWanted) -> None:
        event.stop()
        chips = list(self.query_children(AttachmentChip))
        if event.chip not in chips:
            return
        index = chips.index(event.chip)
        had_focus = event.chip.has_focus
        await event.chip.remove()
        self._after_removal()
        rest = chips[:index] + chips[index + 1 :]
        if had_focus:
            if rest:
                rest[min(index, len(rest) - 1)].focus()
            else:
                self.post_message(self.Done())

    def _after_removal(self) -> None:
        self.display = bool(self.query_children(AttachmentChip))
        self.post_message(self.Changed(self))
