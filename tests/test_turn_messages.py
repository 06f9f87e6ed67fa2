"""Attributes down, messages up: a turn reaches the chat screen as Textual messages, and
the app and the chat screen talk only by messages. Seen with run_test's message_hook."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.message import Message as TextualMessage

from foundry_tui.core.models import MessageStatus, StorageError
from foundry_tui.core.session import SettingsChanged, TurnStarted
from foundry_tui.core.turns import Remedy
from foundry_tui.ui.app import make_app
from foundry_tui.ui.messages import HistoryUnusable, ModelsListed
from foundry_tui.ui.screens import turn_flow
from foundry_tui.ui.screens.chat import ChatScreen
from foundry_tui.ui.screens.problem import ProblemScreen
from foundry_tui.ui.screens.turn_flow import (
    ReplyText,
    TurnClosed,
    TurnMessage,
    TurnSettled,
    TurnUpdate,
)
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    last_reply_done,
    replies,
    send,
    set_field,
    start_chat,
    wait_until,
    write_config,
)
from tests.responses_server import Fault, ResponsesServer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, reasoning_models=["o4-mini"]) as running:
        yield running


def recorder() -> tuple[list[TextualMessage], Callable[[TextualMessage], None]]:
    seen: list[TextualMessage] = []
    return seen, seen.append


def flow_of(seen: list[TextualMessage]) -> list[str]:
    """The turn messages in the order the screen got them; a run of ReplyText as one."""
    flow: list[str] = []
    for message in seen:
        if not isinstance(message, TurnMessage):
            continue
        name = type(message).__name__
        if isinstance(message, TurnUpdate):
            name = type(message.event).__name__
        if not (name == "ReplyText" and flow and flow[-1] == name):
            flow.append(name)
    return flow


async def test_a_turn_reaches_the_screen_as_messages(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the first text, the next ReplyText may go only 10 s later: what streams
    # meanwhile goes with the turn's end, in one message.
    monkeypatch.setattr(turn_flow, "TEXT_MESSAGE_SECONDS", 10.0)
    words = " ".join(f"w{i}" for i in range(800))
    server.queue_reply(words)
    seen, hook = recorder()
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(140, 40), message_hook=hook) as pilot:
        screen = await start_chat(app, pilot)
        reply = await send(pilot, app, "many words")
        await wait_until(pilot, lambda: any(isinstance(m, TurnClosed) for m in seen))
        assert reply.message.status == MessageStatus.COMPLETED
        assert reply.source == words  # every word, through however few messages
        current = screen.current_messages()
    assert flow_of(seen) == ["TurnStarted", "ReplyText", "TurnSettled", "TurnClosed"]
    [started] = [m.event for m in seen if isinstance(m, TurnUpdate)]
    assert isinstance(started, TurnStarted) and started.user.text == "many words"
    [settled] = [m for m in seen if isinstance(m, TurnSettled)]
    assert settled.end.reply == current[-1] and settled.remedy is None
    # 800 deltas, gathered: the first text at once, then the rest before the end.
    assert 1 <= sum(isinstance(m, ReplyText) for m in seen) <= 2


async def test_a_cancelled_turn_closes_with_the_reply_it_left(
    tmp_path: Path, server: ResponsesServer
) -> None:
    server.inject(Fault.STALL, after_deltas=4)
    seen, hook = recorder()
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(140, 40), message_hook=hook) as pilot:
        screen = await start_chat(app, pilot)
        await pilot.press(*"stall", "enter")
        await wait_until(pilot, lambda: any(isinstance(m, ReplyText) for m in seen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: last_reply_done(app), what="cancelled")
        assert screen.check_action("retry", ()) is True
        [closed] = [m for m in seen if isinstance(m, TurnClosed)]
        assert closed.stopped is not None and closed.stopped.status == MessageStatus.CANCELLED
        assert closed.stopped.text  # the words that came, as saved
        assert replies(app)[-1].message == closed.stopped
    assert "TurnSettled" not in flow_of(seen)


async def test_a_resend_without_sampling_is_a_message_too(
    tmp_path: Path, server: ResponsesServer
) -> None:
    seen, hook = recorder()
    app = make_app(write_config(tmp_path, server.base_url, deployments=("o4-mini",)))
    async with app.run_test(size=(140, 40), message_hook=hook) as pilot:
        screen = await start_chat(app, pilot)
        await set_field(pilot, app, "#temperature-input", "0.4")
        screen.query_one("#prompt").focus()
        await send(pilot, app, "think")
        [refused] = [m for m in seen if isinstance(m, TurnSettled)]
        assert refused.remedy == Remedy.RESEND_WITHOUT_SAMPLING
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: len([m for m in seen if isinstance(m, TurnClosed)]) == 2)
        assert screen.query_one("#temperature-input").value == ""
    changes = [m.event for m in seen if isinstance(m, TurnUpdate)]
    # The resent turn reaches the reasoning model, which starts to think (in silence).
    assert [type(e).__name__ for e in changes] == [
        "TurnStarted",
        "SettingsChanged",
        "TurnStarted",
        "ThinkingStarted",
    ]
    assert isinstance(changes[1], SettingsChanged) and changes[1].settings.temperature is None


async def test_the_app_tells_the_chat_screen_the_models_by_message(
    tmp_path: Path, server: ResponsesServer
) -> None:
    seen, hook = recorder()
    app = make_app(write_config(tmp_path, server.base_url, deployments=("mine",)))
    async with app.run_test(size=(140, 40), message_hook=hook) as pilot:
        screen = await start_chat(app, pilot)
        await wait_until(pilot, lambda: any(isinstance(m, ModelsListed) for m in seen))
    [listed] = [m for m in seen if isinstance(m, ModelsListed)]
    assert listed.deployments == ("mine",)
    assert listed.endpoint_models == ("gpt-4o", "gpt-4o-mini", "o4-mini")
    assert isinstance(screen, ChatScreen)


async def test_the_chat_screen_asks_the_app_about_an_unusable_history(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    config.db_path.write_bytes(b"not a database at all " * 100)
    seen, hook = recorder()
    app = make_app(config)
    async with app.run_test(size=(140, 40), message_hook=hook) as pilot:
        await wait_until(
            pilot, lambda: isinstance(app.screen, ProblemScreen) and app.screen.is_mounted
        )
    # Handled by the app after the chat screen let it bubble up: the same message twice.
    [unusable] = {id(m): m for m in seen if isinstance(m, HistoryUnusable)}.values()
    assert unusable.profile.name == "local" and isinstance(unusable.error, StorageError)
