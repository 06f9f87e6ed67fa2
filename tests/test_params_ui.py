"""The sidebar's reasoning and verbosity fields, a refused parameter and a larger budget, on
the chat screen (Pilot), against the local server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input, Select

from foundry_tui.core.models import MessageStatus
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.footer import KeyFooter
from foundry_tui.ui.widgets.prompt import PromptInput
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    last_reply_done,
    record_notifications,
    replies,
    send,
    start_chat,
    wait_until,
    write_config,
)
from tests.responses_server import Fault, ResponsesServer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY) as running:
        yield running


async def pick(pilot: object, app: object, select_id: str, downs: int) -> None:
    """From the prompt, with keys only: to the sidebar, Tab to the field, open it, move
    ``downs`` choices down and take that one."""
    await pilot.press("ctrl+l", "ctrl+b")  # type: ignore[attr-defined]
    await tab_to(pilot, app, select_id)
    await choose(pilot, downs)


async def tab_to(pilot: object, app: object, widget_id: str) -> None:
    for _ in range(12):
        focused = app.focused  # type: ignore[attr-defined]
        if focused is not None and focused.id == widget_id:
            return
        await pilot.press("tab")  # type: ignore[attr-defined]
    raise AssertionError(f"Tab never reached #{widget_id}")


async def choose(pilot: object, downs: int) -> None:
    """Opens the focused choice, moves ``downs`` down and takes that one."""
    await pilot.press("enter", *["down"] * downs, "enter")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


def value_of(app: object, select_id: str) -> object:
    return app.screen.query_one(f"#{select_id}", Select).value  # type: ignore[attr-defined]


async def to_prompt(pilot: object, app: object) -> None:
    app.screen.query_one(PromptInput).focus()  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


async def test_the_fields_are_set_by_keyboard_sent_and_saved(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    app = make_app(config)
    async with app.run_test(size=(140, 50)) as pilot:
        screen = await start_chat(app, pilot)
        await pick(pilot, app, "reasoning-effort-select", 5)  # none minimal low medium HIGH
        await tab_to(pilot, app, "reasoning-summary-select")
        await choose(pilot, 3)  # auto concise DETAILED
        await tab_to(pilot, app, "verbosity-select")
        await choose(pilot, 1)  # LOW
        assert [value_of(app, f"{n}-select") for n in ("reasoning-effort", "verbosity")] == [
            "high",
            "low",
        ]
        await to_prompt(pilot, app)
        await send(pilot, app, "think")
        saved_id = screen.turns.session.conversation.id if screen.turns else ""

        # A new conversation starts from the profile's defaults; the saved one, reopened,
        # shows its own.
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: value_of(app, "verbosity-select") == "", what="new")
        screen.open_conversation(saved_id)
        await wait_until(pilot, lambda: value_of(app, "verbosity-select") == "low", what="shown")
        assert value_of(app, "reasoning-effort-select") == "high"
        assert value_of(app, "reasoning-summary-select") == "detailed"
    [body] = server.created()
    assert body["reasoning"] == {"effort": "high", "summary": "detailed"}
    assert body["text"] == {"verbosity": "low"}
    assert body["prompt_cache_key"] == saved_id
    with Store.open(config.db_path) as store:
        saved = store.get_conversation(saved_id)
    assert saved is not None
    assert (saved.settings.reasoning_effort, saved.settings.verbosity) == ("high", "low")


async def test_a_refused_effort_is_explained_cleared_and_remembered(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.refuse("gpt-4o", "reasoning.effort")
    app = make_app(write_config(tmp_path, server.base_url))
    notices = record_notifications(app)
    async with app.run_test(size=(140, 50)) as pilot:
        screen = await start_chat(app, pilot)
        await pick(pilot, app, "reasoning-effort-select", 3)  # low
        await to_prompt(pilot, app)
        await send(pilot, app, "think")
        assert replies(app)[-1].message.status == MessageStatus.FAILED
        await wait_until(
            pilot,
            lambda: any("Ctrl+R to resend without reasoning effort" in n for n in notices),
            what="the refusal explained",
        )
        assert any("does not accept a reasoning effort" in n for n in notices)
        await pilot.press("ctrl+r")
        await wait_until(
            pilot,
            lambda: len(server.created()) == 2 and last_reply_done(app),
            what="the resend",
        )
        assert value_of(app, "reasoning-effort-select") == ""
        assert replies(app)[-1].message.status == MessageStatus.COMPLETED

        # A new conversation, the effort set again: sent without it, and said so.
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: screen.turns is None, what="new conversation")
        await pick(pilot, app, "reasoning-effort-select", 5)
        await to_prompt(pilot, app)
        await send(pilot, app, "again")
        assert replies(app)[-1].message.status == MessageStatus.COMPLETED
        assert any("gpt-4o refused reasoning effort before: sent without it" in n for n in notices)
        assert value_of(app, "reasoning-effort-select") == ""
    refused, resent, again = server.created()
    assert refused["reasoning"] == {"effort": "low"}
    assert "reasoning" not in resent and "reasoning" not in again


async def test_a_dropped_cache_key_is_noted_in_the_status_line(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from foundry_tui.ui.widgets.status import StatusLine

    server.refuse("gpt-4o", "prompt_cache_key")
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(140, 50)) as pilot:
        screen = await start_chat(app, pilot)
        reply = await send(pilot, app, "hello")
        assert reply.message.status == MessageStatus.COMPLETED
        assert "prompt cache key" in screen.query_one(StatusLine).full_text


async def test_f4_resends_with_a_larger_budget(tmp_path: Path, server: ResponsesServer) -> None:
    app = make_app(write_config(tmp_path, server.base_url))
    notices = record_notifications(app)
    async with app.run_test(size=(140, 50)) as pilot:
        screen = await start_chat(app, pilot)
        max_tokens = screen.query_one("#max-tokens-input", Input)
        max_tokens.value = "64"
        await to_prompt(pilot, app)
        await send(pilot, app, "warm up")
        footer = screen.query_one(KeyFooter)
        assert screen.check_action("larger_budget", ()) is False  # only when it applies
        assert "Larger budget" not in footer.text
        server.inject(Fault.INCOMPLETE, after_deltas=0)
        await send(pilot, app, "a hard question")
        assert screen.check_action("larger_budget", ()) is True
        await wait_until(pilot, lambda: "Larger budget" in footer.text, what="F4 in the key bar")
        await wait_until(
            pilot,
            lambda: any(
                "whole budget of 64 output tokens reasoning and wrote no" in n for n in notices
            ),
            what="the budget explained",
        )
        assert any("F4 to resend with a larger budget (128 tokens)" in n for n in notices)
        await pilot.press("f4")
        await wait_until(pilot, lambda: len(server.created()) == 3 and last_reply_done(app))
        assert max_tokens.value == "128"
        assert replies(app)[-1].message.status == MessageStatus.COMPLETED
        assert screen.check_action("larger_budget", ()) is False
    assert server.created()[-1]["max_output_tokens"] == 128
    assert any("Resending with max output tokens 128 (twice 64)" in n for n in notices)
