"""The key bar: shows the keys that apply, rebuilt only when they change."""

from __future__ import annotations

from pathlib import Path

from foundry_tui.app import make_app
from foundry_tui.widgets.footer import KeyFooter
from tests.helpers import start_chat, wait_until, write_config
from tests.responses_server import ResponsesServer


def footer_text(footer: KeyFooter) -> str:
    return " ".join(str(key.render()) for key in footer.children)


async def test_footer_follows_focus_and_rebuilds_only_on_change(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        footer = screen.query_one(KeyFooter)
        await wait_until(pilot, lambda: "Cancel reply" in footer_text(footer), what="keys")
        assert "Delete" not in footer_text(footer)
        rebuilds = 0
        original = footer.recompose

        async def counted() -> None:
            nonlocal rebuilds
            rebuilds += 1
            await original()

        footer.recompose = counted  # type: ignore[method-assign]
        # Moving between widgets that add no keys of their own changes nothing shown.
        for selector in ("#temperature-input", "#top-p-input", "#prompt"):
            screen.query_one(selector).focus()
            await pilot.pause(0.05)
        assert rebuilds == 0
        # The history list adds Delete and Rename: the bar shows them.
        screen.query_one("#history-list").focus()
        await wait_until(pilot, lambda: "Delete" in footer_text(footer), what="list keys")
        assert rebuilds == 1
