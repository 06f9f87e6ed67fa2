"""A full-screen explanation for a problem the app cannot work around by itself."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Static

from foundry_tui.ui.widgets.footer import KeyFooter
from foundry_tui.ui.widgets.plain import plain_line, plain_text


class ProblemScreen(Screen[bool]):
    """Says what is wrong; where there is a way forward (``offer``), F accepts it."""

    CSS_PATH = "problem.tcss"
    BINDINGS = [
        Binding("q,escape", "app.quit", "Quit", id="problem.quit", tooltip="Quit foundry-tui"),
        Binding("f", "accept", "Fix", id="problem.accept", tooltip="Take the way forward offered"),
    ]

    def __init__(self, title: str, detail: str, *, offer: str | None = None) -> None:
        super().__init__()
        self.problem_title = title
        self.problem_detail = detail
        self.offer = offer

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="problem-box"):
            # Both quote paths and errors from the system: inert (widgets/plain.py).
            yield Static(plain_line(self.problem_title), id="problem-title")
            yield Static(plain_text(self.problem_detail), id="problem-detail")
            with Horizontal(id="problem-buttons"):
                if self.offer:
                    yield Button(f"{self.offer} (f)", variant="primary", id="problem-accept")
                yield Button("Quit (q)", id="problem-quit")
        yield KeyFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.offer is not None if action == "accept" else True

    def action_accept(self) -> None:
        if self.offer:
            self.dismiss(True)

    @on(Button.Pressed, "#problem-accept")
    def _accepted(self) -> None:
        self.action_accept()

    @on(Button.Pressed, "#problem-quit")
    def _quit(self) -> None:
        self.app.exit()
