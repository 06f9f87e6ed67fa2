"""The Compare dialog: which 2 or 3 deployments (and the local model) answer which prompt.

It picks and returns; the comparison itself runs on the compare screen (compare.py).
Deployment names come from the config or an endpoint's listing: shown inert.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, SelectionList, Static, TextArea
from textual.widgets.selection_list import Selection

from foundry_tui.core.compare import MAX_CONTENDERS, MIN_CONTENDERS
from foundry_tui.core.text import one_line

# The value the local model's line has in the list (a deployment's value is its name).
LOCAL_CHOICE = "\x00local"
NAME_LIMIT = 120


@dataclass(frozen=True)
class ComparePick:
    """What the user picked: deployments in the order listed, the local model or not."""

    models: tuple[str, ...]
    local: bool
    prompt: str


class ComparePicker(ModalScreen[ComparePick | None]):
    """Asks for 2 or 3 contenders and the prompt; Ctrl+S or the button starts, Escape not."""

    CSS_PATH = "compare.tcss"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="compare_picker.cancel", tooltip="Do not compare"),
        Binding(
            "ctrl+s",
            "start",
            "Compare",
            id="compare_picker.start",
            tooltip="Send the prompt to the picked deployments at once",
        ),
    ]

    def __init__(
        self, models: tuple[str, ...], current: str, prompt: str, local_label: str | None
    ) -> None:
        super().__init__()
        names = dict.fromkeys(one_line(name, NAME_LIMIT) for name in (current, *models))
        names.pop("", None)
        self.models = tuple(names)
        self.current = one_line(current, NAME_LIMIT)
        self.prompt = prompt
        self.local_label = local_label

    def compose(self) -> ComposeResult:
        picked = [self.current, *(m for m in self.models if m != self.current)][:MIN_CONTENDERS]
        choices: list[Selection[str]] = [
            Selection(Content(name), name, name in picked) for name in self.models
        ]
        if self.local_label is not None:
            label = f"local model ({one_line(self.local_label, NAME_LIMIT)})"
            choices.append(Selection(Content(label), LOCAL_CHOICE, len(picked) < MIN_CONTENDERS))
        with Vertical(classes="dialog", id="compare-dialog"):
            yield Static("Compare: one prompt, 2 or 3 answers side by side", id="compare-title")
            yield SelectionList[str](*choices, id="compare-models")
            yield Input(placeholder="Another deployment, by name (optional)", id="compare-other")
            yield TextArea(
                self.prompt, id="compare-prompt", soft_wrap=True, show_line_numbers=False
            )
            yield Static("", id="compare-problem", classes="hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Compare (Ctrl+S)", variant="primary", id="compare-start")
                yield Button("Cancel (Esc)", id="compare-cancel")

    def on_mount(self) -> None:
        self.query_one("#compare-models", SelectionList).focus()

    @on(SelectionList.SelectedChanged, "#compare-models")
    def _picked(self, event: SelectionList.SelectedChanged[str]) -> None:
        chosen = event.selection_list.selected
        if len(chosen) > MAX_CONTENDERS:
            event.selection_list.deselect(chosen[-1])
            self._problem(f"At most {MAX_CONTENDERS}: unpick one first.")
        else:
            self._problem("")

    def _problem(self, text: str) -> None:
        self.query_one("#compare-problem", Static).update(text)

    @on(Button.Pressed, "#compare-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#compare-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_start(self) -> None:
        chosen = self.query_one("#compare-models", SelectionList).selected
        prompt = self.query_one("#compare-prompt", TextArea).text
        models = [name for name in self.models if name in chosen]
        other = one_line(self.query_one("#compare-other", Input).value, NAME_LIMIT)
        if other and other not in models:
            models.append(other)
        count = len(models) + (LOCAL_CHOICE in chosen)
        if not MIN_CONTENDERS <= count <= MAX_CONTENDERS:
            self._problem(f"Pick {MIN_CONTENDERS} or {MAX_CONTENDERS} (a name typed counts).")
            return
        if not prompt.strip():
            self._problem("Type the prompt to send.")
            self.query_one("#compare-prompt", TextArea).focus()
            return
        self.dismiss(ComparePick(tuple(models), LOCAL_CHOICE in chosen, prompt))

    def action_cancel(self) -> None:
        self.dismiss(None)
