"""The key bar: shows the keys that apply, repaints only when they change, keys click."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.footer import KeyFooter
from foundry_tui.ui.widgets.sidebar import SettingsSidebar
from tests.helpers import send, start_chat, wait_until, write_config
from tests.responses_server import Fault, ResponsesServer


@asynccontextmanager
async def chat_with_keys(
    tmp_path: Path, server: ResponsesServer
) -> AsyncIterator[tuple[Any, Any, KeyFooter]]:
    """The app on its chat screen at 160x40, once the key bar shows its keys."""
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        footer = screen.query_one(KeyFooter)
        await wait_until(pilot, lambda: "Quit" in footer.text, what="keys")
        yield pilot, screen, footer


async def test_footer_follows_focus_and_repaints_only_on_change(
    tmp_path: Path, server: ResponsesServer
) -> None:
    async with chat_with_keys(tmp_path, server) as (pilot, screen, footer):
        assert footer.text.startswith(" ^n New  ^b Settings ")
        assert footer.text.endswith("▏^p palette ")
        assert len(footer.text) == 160
        assert "Delete" not in footer.text
        changes = 0
        original = footer.refresh

        def counted(*args: object, **kwargs: object) -> KeyFooter:
            nonlocal changes
            changes += 1
            return original(*args, **kwargs)  # type: ignore[arg-type]

        footer.refresh = counted  # type: ignore[method-assign]

        async def settled() -> None:
            """The focus change handled, and the bar's update after the next refresh run."""
            await pilot.pause(0)
            await footer.wait_for_refresh()

        # Moving between widgets that add no keys of their own changes nothing shown.
        for selector in ("#temperature-input", "#top-p-input", "#prompt"):
            screen.query_one(selector).focus()
            await settled()
        assert changes == 0
        # The history list adds Delete and Rename: the bar shows them, in one repaint.
        screen.query_one("#history-list").focus()
        await wait_until(pilot, lambda: "Delete" in footer.text, what="list keys")
        await settled()
        assert changes == 1


async def test_clicking_a_key_presses_it(tmp_path: Path, server: ResponsesServer) -> None:
    async with chat_with_keys(tmp_path, server) as (pilot, screen, footer):
        sidebar = screen.query_one(SettingsSidebar)
        assert sidebar.display
        column = footer.text.index("Settings")
        await pilot.click(KeyFooter, offset=(column, 0))
        await wait_until(pilot, lambda: sidebar.has_focus_within, what="the sidebar focused")
        await pilot.click(KeyFooter, offset=(column, 0))
        await wait_until(pilot, lambda: not sidebar.display, what="the sidebar to hide")
        # The space between the keys and the palette key presses nothing.
        await pilot.click(KeyFooter, offset=(footer.text.index("▏") - 3, 0))
        await pilot.pause(0)  # a key's action would have run by now
        assert not sidebar.display
        # The palette key, at the right end, opens the command palette.
        await pilot.click(KeyFooter, offset=(footer.text.index("^p"), 0))
        await wait_until(
            pilot, lambda: type(pilot.app.screen).__name__ == "CommandPalette", what="the palette"
        )


async def test_hovering_a_key_highlights_it_and_shows_its_tooltip(
    tmp_path: Path, server: ResponsesServer
) -> None:
    async with chat_with_keys(tmp_path, server) as (pilot, _screen, footer):
        column = footer.text.index("New")
        plain = footer.render_line(0)
        await pilot.hover(KeyFooter, offset=(column, 0))
        await wait_until(pilot, lambda: footer.tooltip is not None, what="the tooltip")
        assert footer.tooltip == "Start a new conversation"
        hovered = footer.render_line(0)
        assert hovered.text == plain.text
        # The hovered key is drawn differently; the other keys are not.
        start = footer.text.index(" ^n ")
        assert hovered.crop(start, start + 3) != plain.crop(start, start + 3)
        other = footer.text.index(" ^b ")
        assert hovered.crop(other, other + 4) == plain.crop(other, other + 4)
        await pilot.hover(KeyFooter, offset=(footer.text.index("▏") - 3, 0))
        await wait_until(pilot, lambda: footer.tooltip is None, what="the tooltip to go")


@pytest.mark.parametrize("size", [(80, 24), (120, 30), (160, 40)], ids=["80", "120", "160"])
async def test_quit_and_the_palette_always_show_and_cancel_only_while_a_reply_streams(
    tmp_path: Path, server: ResponsesServer, size: tuple[int, int]
) -> None:
    app = make_app(replace(write_config(tmp_path, server.base_url), sidebar=None))
    async with app.run_test(size=size) as pilot:
        screen = await start_chat(app, pilot)
        footer = screen.query_one(KeyFooter)

        def shows(*words: str) -> bool:
            return all(word in footer.text for word in words)

        await wait_until(pilot, lambda: shows("^q Quit", "^p palette"), what="the keys")
        assert "Cancel reply" not in footer.text
        server.inject(Fault.INCOMPLETE)
        await send(pilot, app, "cut me off")
        await wait_until(pilot, lambda: shows("Continue", "Retry", "^q Quit", "^p palette"))
        # The most keys at once: a reply streams after one that was cut off.
        server.tokens_per_second = 40
        server.queue_reply(" ".join(["word"] * 300))
        await pilot.press(*"go on", "enter")
        await wait_until(
            pilot,
            lambda: shows("Cancel reply", "Continue", "^q Quit", "^p palette"),
            what="Cancel reply while streaming",
        )
        assert len(footer.text) == size[0]
        await pilot.press("escape")
        await wait_until(pilot, lambda: "Cancel reply" not in footer.text, what="Cancel gone")
        assert shows("^q Quit", "^p palette")
