"""The palette's "Usage": a table of what each turn of the open conversation cost and how
fast it came, with the conversation's totals.

The figures come from the session (`ChatSession.usage_table`); this module only lays them
out. A model name is what the server said: shown inert, cut to one short line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final

from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from foundry_tui.core.models import StorageError, Usage
from foundry_tui.core.text import one_line
from foundry_tui.core.usage import TurnFigures
from foundry_tui.ui.widgets.plain import plain_line

if TYPE_CHECKING:
    from foundry_tui.ui.screens.chat import ChatScreen

USAGE_TITLE: Final = "Usage"
NOTHING_OPEN: Final = "No conversation is open: send a message or open one from the history."
COLUMNS: Final = (
    "Turn",
    "Model",
    "Input",
    "Cached",
    "Output",
    "Reasoning",
    "Total",
    "TTFT",
    "Tok/s",
    "Status",
)
_MODEL_WIDTH: Final = 32
_NONE: Final = "-"


def _count(value: int | None, style: str = "") -> Text:
    return Text(_NONE if value is None else f"{value:,}", style=style, justify="right")


def _first_token(ms: int | None) -> Text:
    return Text(_NONE if ms is None else f"{ms / 1000:.2f} s", justify="right")


def _speed(row: TurnFigures) -> Text:
    speed = row.speed
    if speed is None:
        return Text(_NONE, justify="right")
    figure = f"{speed.tokens_per_second:.1f}"
    return Text(f"~{figure}" if speed.estimated else figure, justify="right")


def table_rows(rows: Sequence[TurnFigures], totals: Usage) -> list[tuple[Text, ...]]:
    """The table's cells, a row per turn and the totals last."""
    cells = [
        (
            Text(str(row.number), justify="right"),
            Text(one_line(row.model or _NONE, _MODEL_WIDTH)),
            _count(row.usage.input_tokens),
            _count(row.usage.cached_input_tokens),
            _count(row.usage.output_tokens),
            _count(row.usage.reasoning_tokens),
            _count(row.usage.total_tokens),
            _first_token(row.first_token_ms),
            _speed(row),
            Text(row.status.value),
        )
        for row in rows
    ]
    total = (
        Text("Total", style="bold"),
        Text(f"{len(rows)} {'reply' if len(rows) == 1 else 'replies'}", style="bold"),
        *(
            _count(value, "bold")
            for value in (
                totals.input_tokens,
                totals.cached_input_tokens,
                totals.output_tokens,
                totals.reasoning_tokens,
                totals.total_tokens,
            )
        ),
        Text(""),
        Text(""),
        Text(""),
    )
    return [*cells, total]


class UsageScreen(ModalScreen[None]):
    """The table, scrolled with the keys of a DataTable; Escape closes it."""

    CSS_PATH = "usage.tcss"
    BINDINGS = [
        Binding("escape", "close", "Close", id="usage.close", tooltip="Back to the conversation")
    ]

    def __init__(
        self, title: str, rows: Sequence[TurnFigures] | None, totals: Usage | None = None
    ) -> None:
        """``rows`` None: no conversation is open, and the screen says so."""
        super().__init__()
        self.conversation_title = title
        self.rows = rows
        self.totals = totals or Usage()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="usage-dialog"):
            yield Static("Usage", classes="dialog-question")
            if self.rows is None:
                yield Static(NOTHING_OPEN, id="usage-none", markup=False)
                yield Static("Escape to close.", classes="hint", markup=False)
                return
            yield Static(plain_line(self.conversation_title or "Untitled", 80), id="usage-title")
            yield DataTable(id="usage-table", cursor_type="row", zebra_stripes=True)
            yield Static(
                "TTFT: time to the first token. Tok/s: output tokens while the output came "
                "(~: estimated from the text). Arrows, PgUp/PgDn and Ctrl+Home/End move; "
                "Escape closes.",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        if self.rows is None:
            return
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        table.add_rows(table_rows(self.rows, self.totals))
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)


def usage_commands(chat: ChatScreen) -> Iterator[SystemCommand]:
    """The palette's "Usage" for the conversation open on ``chat``."""
    yield SystemCommand(
        USAGE_TITLE,
        "What each turn of this conversation cost (tokens in, cached, out, reasoning) "
        "and how fast it came",
        lambda: chat.run_worker(
            show_usage(chat), group="usage", exclusive=True, exit_on_error=False
        ),
    )


async def show_usage(chat: ChatScreen) -> None:
    session = chat.session
    if session is None:
        await chat.app.push_screen(UsageScreen("", None))
        return
    try:
        rows, totals = await session.usage_table()
    except StorageError as error:
        chat.notify(str(error), title="Could not read the usage", severity="error", timeout=15)
        return
    await chat.app.push_screen(UsageScreen(session.conversation.title, rows, totals))
