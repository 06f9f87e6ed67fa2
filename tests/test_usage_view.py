"""What the user sees of the numbers: the status line's short form after a turn (at 60 and
120 columns) and the palette's "Usage" table (Pilot and a snapshot), against the local
test server or a history written through the Store."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import DataTable, Static

from foundry_tui.core.models import GenerationSettings, MessageRole, MessageStatus, Usage
from foundry_tui.core.usage import Speed
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.chat import ChatScreen
from foundry_tui.ui.screens.usage import NOTHING_OPEN, UsageScreen
from foundry_tui.ui.widgets.status import StatusLine
from tests.helpers import chat_ready, send, shown, start_chat, wait_until, write_config
from tests.responses_server import ResponsesServer, count_tokens
from tests.test_export_tui import run_command
from tests.test_snapshots import no_blink

HOSTILE_MODEL = "[@click=app.quit]gpt-4o[/] \x1b[31mred\x1b[0m"


@pytest.fixture
def steady_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each reading of a reply's clock is 0.2 s after the last: the request leaves, its
    first token comes 0.2 s later, its stream ends 0.2 s after that."""
    ticks = itertools.count()
    monkeypatch.setattr("foundry_tui.core.session._clock", lambda: next(ticks) * 0.2)


def cells(table: DataTable[Any], row: int) -> list[str]:
    return [cell.plain if isinstance(cell, Text) else str(cell) for cell in table.get_row_at(row)]


# -- the status line -------------------------------------------------------------------------


@pytest.mark.usefixtures("steady_clock")
async def test_the_status_line_shows_the_short_form_after_a_turn(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        status = screen.query_one(StatusLine)
        first = (await send(pilot, app, "alpha beta")).message.usage
        assert "cached" not in status.full_text  # nothing was cached on the first turn
        usage = (await send(pilot, app, "gamma")).message.usage
        cached = count_tokens("alpha beta") + count_tokens("You said: alpha beta")
        assert usage.cached_input_tokens == cached and usage.input_tokens is not None
        share = round(100 * cached / usage.input_tokens)
        made = count_tokens("You said: gamma")
        # Output tokens over the 0.2 s between the first token and the end.
        expected = (
            f"{usage.input_tokens} in ({share}% cached) · {made} out · TTFT 0.2 s · "
            f"{made / 0.2:.0f} tok/s"
        )
        assert expected in status.full_text, status.full_text
        total = (first.total_tokens or 0) + (usage.total_tokens or 0)
        assert status.full_text.endswith(f"conversation {total} tokens"), status.full_text


FIGURES = ("1.2k", "80%", "340", "120", "0.4 s", "85 tok/s", "12M")


@pytest.mark.parametrize("width", [60, 120])
async def test_the_short_form_fits_narrow_terminals_keeping_figures_whole(
    tmp_path: Path, server: ResponsesServer, width: int
) -> None:
    app = make_app(write_config(tmp_path, server.base_url, sidebar=False))
    async with app.run_test(size=(width, 30)) as pilot:
        screen = await start_chat(app, pilot)
        status = screen.query_one(StatusLine)
        status.last_status = MessageStatus.COMPLETED
        status.mode = "chained on the server"
        status.mode_short = "chained"
        status.last_usage = Usage(1_234, 340, 1_574, cached_input_tokens=987, reasoning_tokens=120)
        status.last_first_token_ms = 400
        status.last_speed = Speed(85.2, estimated=False)
        status.conversation_usage = Usage(9_000_000, 3_345_678, 12_345_678)
        await pilot.pause()
        full = status.full_text
        assert full == (
            "● completed · chained on the server · 1.2k in (80% cached) · "
            "340 out (120 reasoning) · TTFT 0.4 s · 85 tok/s · conversation 12M tokens"
        )
        drawn = status.render_line(0).text.rstrip()
        assert drawn.strip() == status.text
        assert len(drawn.strip()) <= status.content_size.width
        for figure in FIGURES:
            # Whole or not at all: never cut at the edge.
            assert figure in drawn or not re.search(re.escape(figure[:2]) + "$", drawn)
        if width >= 120:
            assert all(figure in drawn for figure in FIGURES), drawn
        else:
            # The words go first; the turn's counts stay.
            assert "cached" not in drawn and "1.2k (80%)+340 (120)" in drawn, drawn
        assert status.tooltip == full


# -- the usage table -----------------------------------------------------------------------


async def test_usage_from_the_palette_lists_each_turn_and_the_totals(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(150, 40)) as pilot:
        chat = await start_chat(app, pilot)
        await run_command(pilot, app, "Usage")
        await wait_until(pilot, lambda: isinstance(app.screen, UsageScreen), what="the view")
        said = str(app.screen.query_one("#usage-none", Static).render())
        assert said == NOTHING_OPEN
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is chat, what="closed")

        one = (await send(pilot, app, "alpha beta")).message
        two = (await send(pilot, app, "gamma")).message
        await run_command(pilot, app, "Usage")
        await wait_until(pilot, lambda: isinstance(app.screen, UsageScreen), what="the view")
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 3, what="the rows")
        assert table.has_focus
        first, second, totals = (cells(table, row) for row in range(3))
        assert first[:3] == ["1", "gpt-4o", str(one.usage.input_tokens)]
        assert first[3] == "0" and first[5] == "0" and first[9] == "completed"
        assert second[0] == "2" and second[3] == str(two.usage.cached_input_tokens)
        assert second[7].endswith(" s")
        assert totals[:2] == ["Total", "2 replies"]
        total_in = (one.usage.input_tokens or 0) + (two.usage.input_tokens or 0)
        assert totals[2] == f"{total_in:,}"
        assert totals[3] == str(two.usage.cached_input_tokens)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is chat, what="closed")


def write_history(db: Path, turns: int, *, model: str = "gpt-4o-2024-08-06") -> str:
    """A conversation of ``turns`` turns with fixed figures, never sent to a server."""
    settings = GenerationSettings(model="gpt-4o")
    with Store.open(db) as store:
        conversation = store.create_conversation(profile="test", settings=settings)
        parent: str | None = None
        for number in range(1, turns + 1):
            user = store.add_message(
                conversation_id=conversation.id,
                role=MessageRole.USER,
                text=f"question {number}",
                status=MessageStatus.COMPLETED,
                parent_id=parent,
            )
            cancelled = number == 3
            reply = store.add_message(
                conversation_id=conversation.id,
                role=MessageRole.ASSISTANT,
                text="x" * 800 if cancelled else f"answer {number}",
                status=MessageStatus.CANCELLED if cancelled else MessageStatus.COMPLETED,
                model="gpt-4o",
                parent_id=user.id,
            )
            usage = (
                None
                if cancelled
                else Usage(
                    input_tokens=1_000 * number + 25,
                    output_tokens=300 + number,
                    total_tokens=1_000 * number + 325 + number,
                    cached_input_tokens=1_000 * (number - 1),
                    reasoning_tokens=120 if number == 2 else 0,
                )
            )
            store.update_message(
                reply.id,
                response_model=model if not cancelled else None,
                usage=usage,
                first_token_ms=350 + 10 * number,
                duration_ms=4_350 + 10 * number,
            )
            parent = reply.id
        return conversation.id


async def test_the_table_scrolls_by_key_and_shows_a_model_name_as_text(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    conversation = write_history(config.db_path, 30, model=HOSTILE_MODEL)
    app = make_app(config, resume=conversation)
    async with app.run_test(size=(150, 30)) as pilot:
        await wait_until(pilot, lambda: len(shown(app)) == 60, what="the transcript")
        chat = app.screen
        assert isinstance(chat, ChatScreen)
        await run_command(pilot, app, "Usage")
        await wait_until(pilot, lambda: isinstance(app.screen, UsageScreen), what="the view")
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 31, what="the rows")
        model = cells(table, 0)[1]
        assert "[@click=app.quit]gpt-4o[/]" in model and "\x1b" not in model
        assert table.scroll_offset.y == 0
        await pilot.press("pagedown")
        await wait_until(pilot, lambda: table.scroll_offset.y > 0, what="a page down")
        await pilot.press("ctrl+end")
        await wait_until(pilot, lambda: table.cursor_row == 30, what="the totals")
        assert cells(table, 30)[:2] == ["Total", "30 replies"]
        assert cells(table, 2)[8].startswith("~")  # the cancelled reply: estimated
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is chat, what="closed")
        assert app.is_running  # the name's [@click=app.quit] did nothing


async def _usage_view(pilot: Any) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: chat_ready(app) and len(shown(app)) == 8, what="opened")
    await no_blink(pilot)  # the prompt under the view: a steady cursor
    await run_command(pilot, app, "Usage")
    await wait_until(pilot, lambda: isinstance(app.screen, UsageScreen), what="the view")
    await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 5, what="rows")
    await pilot.pause()


@pytest.fixture
def quiet_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    from tests.helpers import KEY_VARIABLE, TEST_KEY

    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    monkeypatch.setattr("foundry_tui.ui.widgets.history.when", lambda *_: "10:42")
    with ResponsesServer(api_key=TEST_KEY) as running:
        yield running


def test_usage_view_snapshot(
    snap_compare: Any, tmp_path: Path, quiet_server: ResponsesServer
) -> None:
    config = write_config(tmp_path, quiet_server.base_url, sidebar=False)
    conversation = write_history(config.db_path, 4)
    app = make_app(config, resume=conversation)
    assert snap_compare(app, terminal_size=(120, 30), run_before=_usage_view)
