"""The history list of saved conversations, newest first, with a filter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from foundry_tui.models import ConversationSummary
from foundry_tui.text import one_line


def when(iso_timestamp: str, now: datetime | None = None) -> str:
    """A short, human 'when' for the list: time today, else the date."""
    try:
        moment = datetime.fromisoformat(iso_timestamp)
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone()
    now = (now or datetime.now(UTC)).astimezone()
    if moment.date() == now.date():
        return moment.strftime("%H:%M")
    if moment.year == now.year:
        return moment.strftime("%d %b")
    return moment.strftime("%Y-%m-%d")


class ConversationList(OptionList):
    """Keys on a highlighted conversation: Enter opens, Delete deletes, F2 renames."""

    BINDINGS = [
        Binding(
            "delete", "delete", "Delete", id="history.delete", tooltip="Delete this conversation"
        ),
        Binding("f2", "rename", "Rename", id="history.rename", tooltip="Rename this conversation"),
    ]

    @dataclass
    class DeleteRequested(Message):
        conversation_id: str
        title: str

    @dataclass
    class RenameRequested(Message):
        conversation_id: str
        title: str

    def _highlighted(self) -> Option | None:
        if self.highlighted is None:
            return None
        return self.get_option_at_index(self.highlighted)

    def action_delete(self) -> None:
        option = self._highlighted()
        if option is not None and option.id is not None:
            self.post_message(self.DeleteRequested(option.id, _title_of(self, option.id)))

    def action_rename(self) -> None:
        option = self._highlighted()
        if option is not None and option.id is not None:
            self.post_message(self.RenameRequested(option.id, _title_of(self, option.id)))


def _title_of(widget: ConversationList, conversation_id: str) -> str:
    panel = widget.query_ancestor(HistoryPanel)
    return panel.titles.get(conversation_id, "")


class HistoryPanel(Vertical):
    """Lists conversations; posts Opened/FilterChanged; the screen does the loading."""

    @dataclass
    class Opened(Message):
        conversation_id: str

    @dataclass
    class FilterChanged(Message):
        text: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.titles: dict[str, str] = {}
        self._shown: list[tuple[str, str, str, str]] = []

    def compose(self) -> ComposeResult:
        yield Static("Conversations", classes="panel-title")
        yield Input(placeholder="Filter (full text)", id="history-filter", compact=True)
        yield ConversationList(id="history-list", compact=True, markup=False)

    def show(self, conversations: list[ConversationSummary], current_id: str | None) -> None:
        option_list = self.query_one(ConversationList)
        now = datetime.now(UTC)
        shown = [(c.id, c.title, c.model, when(c.updated_at, now)) for c in conversations]
        if shown != self._shown or not option_list.option_count:
            # Rebuilt only when something visible changed: a rebuild costs a full layout.
            self._shown = shown
            self.titles = {c.id: c.title for c in conversations}
            option_list.clear_options()
            option_list.add_options([_option(c, now) for c in conversations])
            if not conversations:
                option_list.add_option(Option("No saved conversations", disabled=True))
        if current_id is not None and current_id in self.titles:
            option_list.highlighted = option_list.get_option_index(current_id)

    @on(OptionList.OptionSelected, "#history-list")
    def _opened(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Opened(event.option.id))

    @on(Input.Changed, "#history-filter")
    def _filter(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.FilterChanged(event.value))

    @on(Input.Submitted, "#history-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(ConversationList).focus()


def _option(summary: ConversationSummary, now: datetime) -> Option:
    title = one_line(summary.title or "Untitled", 30)  # one line in the panel: no re-wrap
    meta = f"{one_line(summary.model, 18)} · {when(summary.updated_at, now)}"
    return Option(
        Content.assemble(Content.styled(title, "bold"), "\n", Content.styled(meta, "dim")),
        id=summary.id,
    )
