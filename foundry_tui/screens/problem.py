"""A full-screen explanation for a problem the app cannot work around by itself."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static


class ProblemScreen(Screen[None]):
    CSS_PATH = "problem.tcss"
    BINDINGS = [
        Binding("q,escape", "app.quit", "Quit", id="problem.quit", tooltip="Quit foundry-tui"),
    ]

    def __init__(self, title: str, detail: str) -> None:
        super().__init__()
        self.problem_title = title
        self.problem_detail = detail

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="problem-box"):
            yield Static(self.problem_title, id="problem-title", markup=False)
            yield Static(self.problem_detail, id="problem-detail", markup=False)
        yield Footer()
