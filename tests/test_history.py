"""The history list: newest first, a page at a time, the full-text filter, one frame a key.

Speed itself is measured by ``benchmarks/run.py`` (group big_history), never here; these
tests pin the behaviour the fast paths must keep.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.driver import Driver
from textual.widgets import Input

from foundry_tui.config import AppConfig, Overrides, load_config
from foundry_tui.core.models import (
    ConversationSummary,
    EndpointKind,
    GenerationSettings,
    MessageRole,
    MessageStatus,
    Profile,
    StorageError,
)
from foundry_tui.core.workspace import StoreOpening, Workspace
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.history import (
    PAGE_ROWS,
    ConversationList,
    HistoryPanel,
)
from tests.helpers import PaintedScreen, chat_ready, eventually, wait_until

SETTINGS = GenerationSettings(model="gpt-4o")


def fill(store: Store, count: int, *, planted: dict[int, str] | None = None) -> list[str]:
    """``count`` conversations, oldest first, each a prompt "cNNN ..." and a reply; the
    reply of conversation i ends with ``planted[i]`` when given. Returns their ids."""
    ids = []
    for i in range(count):
        conversation = store.create_conversation(profile="local", settings=SETTINGS)
        store.add_message(
            conversation_id=conversation.id,
            role=MessageRole.USER,
            text=f"c{i:03d} question number {i}",
            status=MessageStatus.COMPLETED,
        )
        store.add_message(
            conversation_id=conversation.id,
            role=MessageRole.ASSISTANT,
            text=f"an answer {(planted or {}).get(i, '')}",
            status=MessageStatus.COMPLETED,
        )
        ids.append(conversation.id)
    return ids


def summaries(count: int, *, prefix: str = "c") -> list[ConversationSummary]:
    """Newest first, like the store returns them."""
    return [
        ConversationSummary(
            id=f"{prefix}{i:03d}",
            title=f"{prefix}{i:03d} title",
            model="gpt-4o",
            updated_at=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
        )
        for i in reversed(range(count))
    ]


# ---------------------------------------------------------------------------
# The store's list query


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "history.db") as opened:
        yield opened


def test_list_is_newest_first_and_limited_in_sql(store: Store) -> None:
    ids = fill(store, 12)
    assert [c.id for c in store.list_conversations(limit=5)] == ids[::-1][:5]
    assert [c.id for c in store.list_conversations()] == ids[::-1]
    first = store.list_conversations(limit=1)[0]
    assert first.title == "c011 question number 11" and first.model == "gpt-4o"


def test_equal_times_keep_the_newer_row_first(store: Store, tmp_path: Path) -> None:
    ids = fill(store, 4)
    conn = sqlite3.connect(tmp_path / "history.db")
    try:
        conn.execute("UPDATE conversations SET updated_at = '2026-01-01T00:00:00+00:00'")
        conn.commit()
    finally:
        conn.close()
    assert [c.id for c in store.list_conversations()] == ids[::-1]
    assert [c.id for c in store.list_conversations(search="answer")] == ids[::-1]


def test_search_finds_message_text_newest_first_within_the_limit(store: Store) -> None:
    ids = fill(store, 30, planted={3: "zymurgy", 17: "zymurgist", 25: "zebra"})
    assert [c.id for c in store.list_conversations(search="zym")] == [ids[17], ids[3]]
    assert [c.id for c in store.list_conversations(search="zym", limit=1)] == [ids[17]]
    assert [c.id for c in store.list_conversations(search="z")] == [ids[25], ids[17], ids[3]]
    assert [c.id for c in store.list_conversations(search="c004")] == [ids[4]]  # title
    assert store.list_conversations(search="zymurgists") == []


def test_titles_and_models_with_any_text_survive_the_trip(store: Store) -> None:
    odd = 'quotes " and \\ backslash, 日本語, emoji 🙂, [markup]'
    conversation = store.create_conversation(
        profile="p", settings=GenerationSettings(model='m"odel'), title=odd
    )
    listed = store.list_conversations()
    assert [(c.id, c.title, c.model) for c in listed] == [(conversation.id, odd, 'm"odel')]


async def test_workspace_passes_the_limit(store: Store) -> None:
    ids = fill(store, 8)
    profile = Profile(name="p", kind=EndpointKind.COMPATIBLE, endpoint="http://127.0.0.1:9/v1")

    async def opened() -> Store:
        return store

    workspace = Workspace(StoreOpening(opened), NoBackend(), profile)  # type: ignore[arg-type]
    assert [c.id for c in await workspace.conversations(limit=3)] == ids[::-1][:3]
    assert [c.id for c in await workspace.conversations("  c002  ")] == [ids[2]]


async def test_the_history_opens_once_when_first_needed(store: Store) -> None:
    openings = 0
    opened = asyncio.Event()

    async def open_store() -> Store:
        nonlocal openings
        openings += 1
        await opened.wait()  # opening takes a while: more users come meanwhile
        return store

    history = StoreOpening(open_store)
    waiting = asyncio.ensure_future(history.when_opened())
    for _ in range(5):  # a few turns of the loop: it could have started by now
        await asyncio.sleep(0)
    # Waiting for it does not open it...
    assert openings == 0 and not waiting.done()
    # ...the first use does, once, and every user and waiter gets the same store.
    users = [asyncio.ensure_future(_opened(history)) for _ in range(3)]
    await eventually(lambda: openings == 1, what="the opening")
    assert not any(user.done() for user in users) and not waiting.done()
    opened.set()
    assert await asyncio.gather(*users, waiting) == [store] * 4
    assert await history is store
    assert openings == 1


async def _opened(history: StoreOpening) -> Store:
    return await history


async def test_a_failed_opening_reaches_every_user(store: Store) -> None:
    async def open_store() -> Store:
        raise StorageError("disk full")

    history = StoreOpening(open_store)
    waiting = asyncio.ensure_future(history.when_opened())
    history.start()
    with pytest.raises(StorageError, match="disk full"):
        await waiting
    with pytest.raises(StorageError, match="disk full"):
        await history


# ---------------------------------------------------------------------------
# The panel on its own


class PanelApp(App[None]):
    """The panel alone; answers MoreWanted from ``rows`` like the chat screen would."""

    CSS = "#history-list { height: 1fr; }"  # as in the chat screen

    def __init__(
        self, rows: list[ConversationSummary], *, driver_class: type[Driver] | None = None
    ) -> None:
        super().__init__(driver_class=driver_class)
        self.rows = rows
        self.asked: list[int] = []

    def compose(self) -> ComposeResult:
        yield HistoryPanel(id="history")

    def serve(self) -> None:
        panel = self.query_one(HistoryPanel)
        self.asked.append(panel.rows_wanted)
        panel.show(self.rows[: panel.rows_wanted], None)

    def on_history_panel_more_wanted(self, event: HistoryPanel.MoreWanted) -> None:
        self.serve()


async def test_entries_are_two_lines_title_over_model_and_time() -> None:
    app = PanelApp(summaries(3))
    async with app.run_test(size=(60, 20)) as pilot:
        app.serve()
        await pilot.pause()
        listed = app.query_one(ConversationList)
        assert [listed.get_option_at_index(i).id for i in range(3)] == ["c002", "c001", "c000"]
        lines = [listed.render_line(y).text.rstrip() for y in range(6)]
        assert lines[0] == "c002 title"
        assert lines[1].startswith("gpt-4o · ")
        assert lines[2] == "c001 title"
        assert app.query_one(HistoryPanel).titles["c001"] == "c001 title"


async def test_long_and_wide_titles_are_cut_never_wrapped() -> None:
    row = ConversationSummary(
        id="w", title="日本語のタイトル" * 5, model="a-very-long-deployment-name", updated_at=""
    )
    plain = ConversationSummary(id="p", title="x" * 80, model="gpt-4o", updated_at="")
    app = PanelApp([row, plain])
    async with app.run_test(size=(24, 12)) as pilot:
        app.serve()
        await pilot.pause()
        listed = app.query_one(ConversationList)
        width = listed.scrollable_content_region.width
        lines = [listed.render_line(y).text for y in range(4)]
        assert all(cell_len(line) == width for line in lines)  # padded, never longer
        assert lines[0].rstrip().endswith("…") and lines[0].startswith("日本語")
        assert lines[1].startswith("a-very-long-deplo…")
        assert lines[2].rstrip().endswith("…") and lines[2].startswith("xxxx")
        assert lines[3].startswith("gpt-4o · ")  # each entry is two lines, whatever its text


async def test_no_conversations_says_so() -> None:
    app = PanelApp([])
    async with app.run_test(size=(60, 20)) as pilot:
        app.serve()
        await pilot.pause()
        listed = app.query_one(ConversationList)
        assert listed.option_count == 1
        assert listed.get_option_at_index(0).id is None
        assert "No saved conversations" in listed.render_line(0).text


async def test_the_same_rows_are_not_rebuilt_and_the_current_one_is_highlighted() -> None:
    app = PanelApp(summaries(5))
    async with app.run_test(size=(60, 20)) as pilot:
        app.serve()
        await pilot.pause()
        panel = app.query_one(HistoryPanel)
        listed = app.query_one(ConversationList)
        first = listed.get_option_at_index(0)
        panel.show(summaries(5), "c001")
        assert listed.get_option_at_index(0) is first
        assert listed.highlighted == 3
        panel.show(summaries(6), None)  # a new conversation on top: rebuilt
        assert listed.get_option_at_index(0).id == "c005"


async def test_a_page_more_is_appended_as_the_cursor_nears_the_end() -> None:
    app = PanelApp(summaries(PAGE_ROWS * 2 + 7))
    async with app.run_test(size=(60, 20)) as pilot:
        app.serve()
        await pilot.pause()
        listed = app.query_one(ConversationList)
        assert listed.option_count == PAGE_ROWS  # the first page only
        first = listed.get_option_at_index(0)
        listed.focus()
        listed.highlighted = 5
        await pilot.pause()
        assert listed.option_count == PAGE_ROWS  # far from the end: nothing asked
        await pilot.press("end")
        await wait_until(pilot, lambda: listed.option_count == 2 * PAGE_ROWS, what="page 2")
        assert listed.get_option_at_index(0) is first  # appended, not rebuilt
        assert listed.highlighted == PAGE_ROWS - 1  # the cursor stayed on its entry
        await pilot.press("end")
        await wait_until(pilot, lambda: listed.option_count == 2 * PAGE_ROWS + 7, what="rest")
        await pilot.press("end")
        await pilot.pause()  # a request for more would be answered by now
        assert app.asked == [PAGE_ROWS, 2 * PAGE_ROWS, 3 * PAGE_ROWS]  # then: all there


async def test_scrolling_near_the_end_asks_for_more() -> None:
    app = PanelApp(summaries(PAGE_ROWS + 3))
    async with app.run_test(size=(60, 20)) as pilot:
        app.serve()
        await pilot.pause()
        listed = app.query_one(ConversationList)
        listed.scroll_end(animate=False, immediate=True)
        await wait_until(pilot, lambda: listed.option_count == PAGE_ROWS + 3, what="more")


async def test_a_filter_key_is_painted_with_its_results_or_alone_after_the_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The letter typed into the filter reaches the terminal in the same frame as the list
    it selects, never a frame before; when no results come, it is painted alone after
    HOLD_SECONDS."""
    hold = 0.5  # longer than the real one, so a slow machine still sees the hold
    monkeypatch.setattr("foundry_tui.ui.widgets.history.HOLD_SECONDS", hold)
    painted = PaintedScreen(60, 20)
    app = PanelApp(summaries(3), driver_class=painted.driver)
    async with app.run_test(size=(60, 20), headless=False) as pilot:
        app.serve()
        field = app.query_one("#history-filter", Input)
        listed = app.query_one(ConversationList)
        field.focus()
        await pilot.pause()

        def frames_with(letters: str) -> list[str]:
            """The list as painted in each frame whose filter shows ``letters``."""
            return [
                painted.text(frame, listed.region)
                for frame in painted.frames
                if painted.text(frame, field.region).strip() == letters
            ]

        assert "c002 title" in painted.text(painted.frames[-1], listed.region)
        await pilot.press("c")
        await pilot.pause()  # a repaint: without the hold, the letter would be painted now
        assert frames_with("c") == []  # the letter waits for its results...
        app.rows = summaries(3)[1:2]  # ...which come: one match
        app.serve()
        await pilot.pause()  # ...and release it at once, not at the end of the hold:
        [first] = frames_with("c")  # the letter and its results in one frame
        assert "c001 title" in first and "c002 title" not in first
        await pilot.press("x")  # no results ever come for this one
        await pilot.pause()
        assert frames_with("cx") == []
        await wait_until(pilot, lambda: bool(frames_with("cx")), what="the letter alone")
        assert field.value == "cx"


async def test_a_value_set_while_unfocused_holds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("foundry_tui.ui.widgets.history.HOLD_SECONDS", 60.0)  # a hold would show
    painted = PaintedScreen(60, 20)
    app = PanelApp(summaries(3), driver_class=painted.driver)
    async with app.run_test(size=(60, 20), headless=False) as pilot:
        app.serve()
        app.query_one(ConversationList).focus()
        await pilot.pause()
        field = app.query_one("#history-filter", Input)
        field.value = "c"
        await pilot.pause()
        assert painted.text(painted.frames[-1], field.region).strip() == "c"


# ---------------------------------------------------------------------------
# In the app: the chat screen, the workspace and the store together


class NoBackend:
    """The history never talks to a server; the app only lists models at start-up."""

    async def list_models(self) -> list[str]:
        return []

    async def aclose(self) -> None:
        return None

    def warm_up(self) -> None:
        return None


def config_for(tmp_path: Path) -> AppConfig:
    path = tmp_path / "config.toml"
    path.write_text(
        '[profiles.local]\nkind = "compatible"\nendpoint = "http://127.0.0.1:9/v1"\n'
        'auth = "none"\ndeployments = ["gpt-4o"]\n',
        encoding="utf-8",
    )
    return load_config(path, overrides=Overrides(db=tmp_path / "history.db"))


async def test_the_app_lists_a_page_filters_all_text_and_pages_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only results may end a filter key's hold here: a timeout would hide a hold left over.
    monkeypatch.setattr("foundry_tui.ui.widgets.history.HOLD_SECONDS", 60.0)
    config = config_for(tmp_path)
    count = PAGE_ROWS + 25
    with Store.open(config.db_path) as store:
        ids = fill(store, count, planted={1: "zymurgist", 2: "zymurgy"})
    app = make_app(config, backend_factory=lambda profile: NoBackend())  # type: ignore[arg-type,return-value]
    painted = PaintedScreen(160, 40)
    app.driver_class = painted.driver
    async with app.run_test(size=(160, 40), headless=False) as pilot:
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        listed = app.screen.query_one(ConversationList)
        await wait_until(pilot, lambda: listed.option_count == PAGE_ROWS, what="first page")
        assert listed.get_option_at_index(0).id == ids[-1]
        # The filter searches message text, beyond the first page too.
        await pilot.press("ctrl+o", "shift+tab")  # to the list (shown), then its filter
        assert app.focused is app.screen.query_one("#history-filter", Input)
        await pilot.press(*"zym")
        await wait_until(pilot, lambda: listed.option_count == 2, what="two matches")
        assert [listed.get_option_at_index(i).id for i in range(2)] == [ids[2], ids[1]]
        # Painted as soon as the results came (a hold left would keep it off the terminal
        # for the whole HOLD_SECONDS), the typed letters with them in one frame.
        field = app.screen.query_one("#history-filter", Input)
        await wait_until(
            pilot,
            lambda: painted.text(painted.now(), field.region).strip() == "zym",
            what="the filter painted",
        )
        shown = painted.text(painted.now(), listed.region)
        assert "c002 question number 2" in shown and "c003" not in shown
        await pilot.press(*"urgi")
        await wait_until(pilot, lambda: listed.option_count == 1, what="one match")
        assert listed.get_option_at_index(0).id == ids[1]
        await pilot.press("q")
        await wait_until(pilot, lambda: listed.get_option_at_index(0).id is None, what="no match")
        for _ in range(len("zymurgiq")):
            await pilot.press("backspace")
        await wait_until(pilot, lambda: listed.option_count == PAGE_ROWS, what="unfiltered")
        # Enter in the filter moves to the list; End there loads the rest.
        await pilot.press("enter")
        assert app.focused is listed
        await pilot.press("end")
        await wait_until(pilot, lambda: listed.option_count == count, what="all rows")
        assert listed.get_option_at_index(count - 1).id == ids[0]
