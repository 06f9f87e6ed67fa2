"""Small modal dialogs: confirm a deletion (and, on a server that stores responses, whether
to delete them there too), rename a conversation, list what could not be deleted.

They show a conversation's title, response ids and a server's words, which came from a
prompt, the database or a server: shown inert (widgets/plain.py), never as markup or
escape sequences.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Static

from foundry_tui.core.text import one_line
from foundry_tui.ui.widgets.plain import plain_line, plain_text

# The longest title the rename field starts with (a title is a line, not a document).
RENAME_LIMIT = 500


class ConfirmScreen(ModalScreen[bool]):
    """Asks a yes/no question; Escape or N answers no."""

    BINDINGS = [
        Binding("escape,n", "answer(False)", "Cancel", id="confirm.no", tooltip="Keep it"),
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Go ahead"),
    ]

    def __init__(self, question: str, confirm_label: str = "Delete") -> None:
        super().__init__()
        self.question = question
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain_text(self.question), classes="dialog-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.confirm_label} (y)", variant="error", id="confirm-yes")
                yield Button("Cancel (n)", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class DeleteScreen(ConfirmScreen):
    """Confirms deleting a conversation; with ``stored`` responses on a server, offers to
    delete them there too (off unless ticked: ``on_server`` says what was chosen)."""

    BINDINGS = [
        Binding(
            "s",
            "toggle_server",
            "Also on the server",
            id="confirm.on_server",
            tooltip="Also delete the conversation's stored responses on the server",
        )
    ]

    def __init__(self, question: str, *, stored: int = 0, host: str = "", note: str = "") -> None:
        super().__init__(question)
        self.stored = stored
        self.host = host
        self.note = note
        # What the box says now: read by whoever gets the answer, after the dialog is gone.
        self.on_server = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain_text(self.question), classes="dialog-question")
            if self.stored:
                responses = "response" if self.stored == 1 else "responses"
                label = f"Also delete {self.stored:,} stored {responses} on {self.host} (s)"
                yield Checkbox(plain_line(label, 120), id="delete-on-server")
            if self.note:
                yield Static(plain_text(self.note), classes="hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.confirm_label} (y)", variant="error", id="confirm-yes")
                yield Button("Cancel (n)", id="confirm-no")

    def action_toggle_server(self) -> None:
        for box in self.query("#delete-on-server").results(Checkbox):
            box.toggle()
            self.on_server = box.value

    @on(Checkbox.Changed, "#delete-on-server")
    def _server_choice(self, event: Checkbox.Changed) -> None:
        self.on_server = event.value


class FailuresScreen(ModalScreen[None]):
    """What could not be done, one line each (``lines``: untrusted); Enter or Escape closes."""

    BINDINGS = [
        Binding("escape,enter", "close", "Close", id="failures.close", tooltip="Close"),
    ]

    def __init__(self, title: str, lines: list[str]) -> None:
        super().__init__()
        self.heading = title
        self.lines = lines

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain_line(self.heading), classes="dialog-question")
            yield Static(plain_text("\n".join(self.lines)), id="failures-list")
            yield Static("Enter or Escape to close", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)


class RenameScreen(ModalScreen[str | None]):
    """Asks for a new title; Enter saves, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="rename.cancel", tooltip="Keep the title")]

    def __init__(self, title: str) -> None:
        super().__init__()
        # What the field starts with: the title as one inert line. Saved only if edited, so
        # a title shown cut or cleaned is never written back in place of the original.
        self.current_title = one_line(title, RENAME_LIMIT)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Rename conversation", classes="dialog-question")
            yield Input(value=self.current_title, id="rename-input")
            yield Static("Enter to save, Escape to cancel", classes="hint")

    @on(Input.Submitted, "#rename-input")
    def _submitted(self, event: Input.Submitted) -> None:
        title = one_line(event.value, RENAME_LIMIT)
        self.dismiss(title if title and title != self.current_title else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
