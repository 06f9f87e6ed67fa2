"""The history list of saved conversations, newest first, with a filter."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style as RichStyle
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.styles import RulesMap
from textual.message import Message
from textual.strip import Strip
from textual.style import Style
from textual.timer import Timer
from textual.visual import RenderOptions, Visual
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from foundry_tui.core.models import ConversationSummary
from foundry_tui.core.text import one_line

# Longest a filter keystroke's repaint waits for its results (then the letter shows alone).
HOLD_SECONDS = 0.1
# Rows fetched at least at a time; more are asked for this many entries before the end.
PAGE_ROWS = 50
MORE_MARGIN = 10


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

    def __init__(self, *, id: str | None = None, compact: bool = False) -> None:
        super().__init__(id=id, compact=compact, markup=False)
        # Entries are plain text, never links: no link styling pass over every line drawn.
        self.set_reactive(ConversationList.auto_links, False)

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
    """Lists conversations; posts Opened/FilterChanged/MoreWanted; the screen does the loading.

    The screen fetches ``rows_wanted`` rows (about two screens); when the cursor or the
    scroll nears the end of them, the panel asks for a page more (MoreWanted), and the new
    rows are appended, so the cursor and the scroll stay where they are.
    """

    @dataclass
    class Opened(Message):
        conversation_id: str

    @dataclass
    class FilterChanged(Message):
        text: str

    class MoreWanted(Message):
        """The list nears the end of its rows and more may exist: fetch ``rows_wanted``."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.titles: dict[str, str] = {}
        self._rows: list[tuple[str, str, str, str]] = []
        self._day: date | None = None
        self._rows_wanted = 0
        self._more_asked = False
        self._may_have_more = False
        self._hold: AbstractContextManager[None] | None = None
        self._hold_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static("Conversations", classes="panel-title")
        yield Input(placeholder="Filter (full text)", id="history-filter", compact=True)
        yield ConversationList(id="history-list", compact=True)

    def on_mount(self) -> None:
        self.watch(self.query_one("#history-filter", Input), "value", self._filter_typed)
        self.watch(self.query_one(ConversationList), "scroll_y", self._check_more)

    def on_unmount(self) -> None:
        self._release_repaint()

    def on_resize(self) -> None:
        self._check_more()

    @property
    def rows_wanted(self) -> int:
        """How many rows the screen should fetch (the current filter's first ones)."""
        return self._rows_wanted or self._page()

    def _page(self) -> int:
        # Two lines an entry: a terminal's height in entries is two screens of the list.
        return max(PAGE_ROWS, self.app.size.height)

    def show(self, conversations: list[ConversationSummary], current_id: str | None) -> None:
        option_list = self.query_one(ConversationList)
        now = datetime.now(UTC)
        day = now.astimezone().date()  # "14:14" becomes "27 Nov" when the day changes
        rows = [(c.id, c.title, c.model, c.updated_at) for c in conversations]
        old = self._rows
        self._may_have_more = len(rows) >= self.rows_wanted
        self._more_asked = False
        if option_list.option_count and day == self._day and rows == old:
            pass  # nothing visible changed: no rebuild, no repaint
        elif old and day == self._day and rows[: len(old)] == old:
            # A page more of the same list: appended, the cursor and scroll stay put.
            added = conversations[len(old) :]
            self._rows = rows
            self.titles.update((c.id, c.title) for c in added)
            option_list.add_options([Option(_Entry(c, now), id=c.id) for c in added])
        else:
            # Each option is a fixed two-line visual that formats itself when first drawn:
            # a rebuild costs little more than the entries on screen.
            self._rows = rows
            self._day = day
            self.titles = {c.id: c.title for c in conversations}
            option_list.set_options(
                [Option(_Entry(c, now), id=c.id) for c in conversations]
                or [Option("No saved conversations", disabled=True)]
            )
        if current_id is not None and current_id in self.titles:
            option_list.highlighted = option_list.get_option_index(current_id)
        elif option_list.highlighted is None and conversations and option_list.has_focus:
            # The list was opened before its rows arrived: Enter must open the first.
            option_list.highlighted = 0
        self._release_repaint()
        self._check_more()

    def _check_more(self) -> None:
        """Asks for a page more when the cursor or the scroll is near the end of the rows."""
        if not self._may_have_more or self._more_asked or not self.is_mounted:
            return
        option_list = self.query_one(ConversationList)
        count = option_list.option_count
        near_cursor = option_list.highlighted is not None and (
            option_list.highlighted >= count - MORE_MARGIN
        )
        near_scroll = option_list.max_scroll_y - option_list.scroll_y < 2 * MORE_MARGIN
        if near_cursor or near_scroll:
            self._more_asked = True
            self._rows_wanted = self.rows_wanted + self._page()
            self.post_message(self.MoreWanted())

    def _filter_typed(self, value: str) -> None:
        """Runs inside the keystroke, before the screen repaints the new letter: the repaint
        waits for the results (at most HOLD_SECONDS), so letter and list arrive in one frame.
        Without this the letter takes a frame and the list the frame after, which Textual
        paces at up to two frame periods (33 ms at 60 fps) later."""
        self._rows_wanted = 0  # a new filter starts again from its first page
        self._more_asked = False
        self._may_have_more = False
        if self._hold is None and self.query_one("#history-filter", Input).has_focus:
            self._hold = self.app.batch_update()
            self._hold.__enter__()
            self._hold_timer = self.set_timer(HOLD_SECONDS, self._release_repaint)

    def _release_repaint(self) -> None:
        hold, self._hold = self._hold, None
        timer, self._hold_timer = self._hold_timer, None
        if timer is not None:
            timer.stop()
        if hold is not None:
            hold.__exit__(None, None, None)

    @on(OptionList.OptionHighlighted, "#history-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._check_more()

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
        listed = self.query_one(ConversationList)
        listed.focus()
        if listed.highlighted is None and listed.option_count:
            listed.highlighted = 0  # Enter again opens the best match


class _Entry(Visual):
    """One conversation in the list: its title (bold) over its model and time (dim).

    Always two lines, cut to the width with "…", never wrapped: the option list asks every
    option for its height when options are set, and for this visual the answer is free.
    The text is made when the entry is first drawn, straight into one segment a line
    (the list allows no text selection, so no per-cell offsets are needed).
    """

    __slots__ = ("_now", "_summary", "_text")

    def __init__(self, summary: ConversationSummary, now: datetime) -> None:
        self._summary = summary
        self._now = now
        self._text: tuple[str, str] | None = None

    def _lines(self) -> tuple[str, str]:
        if self._text is None:
            summary = self._summary
            title = one_line(summary.title or "Untitled", 30)
            meta = f"{one_line(summary.model, 18)} · {when(summary.updated_at, self._now)}"
            self._text = (title, meta)
        return self._text

    def render_strips(
        self, width: int, height: int | None, style: Style, options: RenderOptions
    ) -> list[Strip]:
        title, meta = self._lines()
        title_style, meta_style, pad_style = _entry_styles(style)
        strips = [
            _strip(_fit(title, width), title_style, width, pad_style),
            _strip(_fit(meta, width), meta_style, width, pad_style),
        ]
        return strips if height is None else strips[:height]

    def get_optimal_width(self, rules: RulesMap, container_width: int) -> int:
        return max(cell_len(line) for line in self._lines())

    def get_height(self, rules: RulesMap, width: int) -> int:
        return 2


_BOLD = Style(bold=True)
_DIM = Style(dim=True)


@lru_cache(maxsize=64)
def _entry_styles(base: Style) -> tuple[RichStyle, RichStyle, RichStyle]:
    """The title's, the meta line's and the padding's styles over an option's style (plain,
    highlighted, hovered...): a handful of distinct ones, so each is combined once."""
    return (base + _BOLD).rich_style, (base + _DIM).rich_style, base.rich_style


def _fit(text: str, width: int) -> str:
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, width - 1) + "…" if width > 0 else ""


def _strip(text: str, style: RichStyle, width: int, pad_style: RichStyle) -> Strip:
    """One line, padded to the width as the option list would pad it (so it need not)."""
    length = cell_len(text)
    segments = [Segment(text, style)] if text else []
    if length < width:
        segments.append(Segment(" " * (width - length), pad_style))
    return Strip(segments, max(length, width))
