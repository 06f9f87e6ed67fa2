"""Pilot tests: a user driving the app against the local Responses API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from foundry_tui.app import make_app
from foundry_tui.models import MessageRole, MessageStatus
from foundry_tui.screens.chat import ChatScreen
from foundry_tui.store import Store
from foundry_tui.widgets.message import MessageView
from foundry_tui.widgets.prompt import PromptInput
from tests.helpers import KEY_VARIABLE, TEST_KEY, wait_until, write_config
from tests.responses_server import ResponsesServer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, reasoning_models=["o4-mini"]) as running:
        yield running


def replies(app: object) -> list[MessageView]:
    screen = app.screen  # type: ignore[attr-defined]
    return [v for v in screen.query(MessageView) if v.message.role == MessageRole.ASSISTANT]


async def test_send_and_stream_reply(tmp_path: Path, server: ResponsesServer) -> None:
    config = write_config(tmp_path, server.base_url)
    server.queue_reply("Here is code:\n\n```python\nprint('hi')\n```\n\nDone.")
    app = make_app(config)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), what="chat screen")
        await pilot.press(*"hello there")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: (
                bool(replies(app)) and replies(app)[-1].message.status == MessageStatus.COMPLETED
            ),
            what="completed reply",
        )
        reply = replies(app)[-1]
        assert reply.message.text.endswith("Done.")
        assert "print('hi')" in reply.markdown.source
        assert app.screen.query_one(PromptInput).text == ""
    body = server.created()[0]
    assert body["instructions"] == "Answer briefly."
    assert body["model"] == "gpt-4o"
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        messages = store.transcript(summary.id)
    assert [m.role for m in messages] == [MessageRole.USER, MessageRole.ASSISTANT]
    assert messages[0].text == "hello there"
    assert messages[1].response_id is not None
    assert messages[1].status == MessageStatus.COMPLETED


async def start_chat(app: object, pilot: object) -> ChatScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen), what="chat screen")  # type: ignore[attr-defined,arg-type]
    return app.screen  # type: ignore[attr-defined,no-any-return]


def last_reply_done(app: object) -> bool:
    views = replies(app)
    return bool(views) and views[-1].message.status != MessageStatus.PENDING


async def send(pilot: object, app: object, text: str) -> MessageView:
    before = len(replies(app))
    await pilot.press(*text)  # type: ignore[attr-defined]
    await pilot.press("enter")  # type: ignore[attr-defined]
    await wait_until(
        pilot,  # type: ignore[arg-type]
        lambda: len(replies(app)) > before and last_reply_done(app),
        what=f"reply to {text!r}",
    )
    return replies(app)[-1]


async def test_shift_enter_and_ctrl_j_insert_newlines(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await pilot.press("a", "shift+enter", "b", "ctrl+j", "c")
        assert screen.query_one(PromptInput).text == "a\nb\nc"
        await pilot.press("enter")
        await wait_until(pilot, lambda: last_reply_done(app), what="reply")
    assert server.created()[0]["input"][-1]["content"] == "a\nb\nc"


async def test_failed_send_keeps_prompt_and_saves_turn(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from tests.responses_server import Fault

    config = write_config(tmp_path, server.base_url)
    server.inject(Fault.UNAUTHORIZED)
    app = make_app(config)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        reply = await send(pilot, app, "keep me")
        assert reply.message.status == MessageStatus.FAILED
        assert screen.query_one(PromptInput).text == "keep me"
        footer = str(reply.query_one(".message-footer").render())
        assert "failed" in footer
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        user, failed = store.transcript(summary.id)
    assert user.text == "keep me"
    assert failed.status == MessageStatus.FAILED and failed.error


async def test_escape_cancels_stream_and_keeps_partial_reply(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    server.tokens_per_second = 40
    server.queue_reply(" ".join(f"word{i}" for i in range(400)))
    app = make_app(config)
    async with app.run_test(size=(140, 40)) as pilot:
        await start_chat(app, pilot)
        await pilot.press(*"long please")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: bool(replies(app)) and "word5" in replies(app)[-1].markdown.source,
            what="some streamed text",
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: last_reply_done(app), what="cancelled reply")
        view = replies(app)[-1]
        assert view.message.status == MessageStatus.CANCELLED
        assert "cancelled" in str(view.query_one(".message-footer").render())
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        user, reply = store.transcript(summary.id)
    assert user.text == "long please"
    assert reply.status == MessageStatus.CANCELLED
    assert reply.text.startswith("word0 word1 word2 word3 word4 word5")
    assert "word399" not in reply.text


async def set_field(pilot: object, app: object, selector: str, value: str) -> None:
    from textual.widgets import Input

    field = app.screen.query_one(selector, Input)  # type: ignore[attr-defined]
    field.focus()
    field.value = ""
    await pilot.press(*value) if value else None  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


async def test_sidebar_switches_model_and_temperature_mid_conversation(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from textual.widgets import OptionList

    config = write_config(tmp_path, server.base_url)
    app = make_app(config)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        first = await send(pilot, app, "one")
        await set_field(pilot, app, "#temperature-input", "0.3")
        await set_field(pilot, app, "#top-p-input", "0.9")
        await set_field(pilot, app, "#max-tokens-input", "500")
        model_list = screen.query_one("#model-list", OptionList)
        model_list.focus()
        model_list.highlighted = 1  # gpt-4o-mini
        await pilot.press("enter")
        await pilot.pause()
        screen.query_one(PromptInput).focus()
        second = await send(pilot, app, "two")
        assert first.message.model == "gpt-4o"
        assert second.message.model == "gpt-4o-mini"
        assert "gpt-4o-mini" in str(second.query_one(".message-header").render())
        assert "gpt-4o" in str(first.query_one(".message-header").render())
    one, two = server.created()
    assert one["model"] == "gpt-4o" and "temperature" not in one
    assert two["model"] == "gpt-4o-mini"
    assert two["temperature"] == 0.3 and two["top_p"] == 0.9 and two["max_output_tokens"] == 500
    assert two["previous_response_id"] == first.message.response_id
    assert two["instructions"] == "Answer briefly."  # sent again on every turn
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        saved = store.get_conversation(summary.id)
    assert saved is not None
    assert saved.settings.model == "gpt-4o-mini" and saved.settings.temperature == 0.3


async def test_invalid_setting_is_refused_at_the_field(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from textual.widgets import Static

    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await set_field(pilot, app, "#temperature-input", "3")
        error = screen.query_one("#temperature-error", Static)
        assert "0.0 to 2.0" in str(error.render())
        screen.query_one(PromptInput).focus()
        await pilot.press(*"hi", "enter")
        await pilot.pause(0.2)
        assert screen.query_one(PromptInput).text == "hi"  # not sent, not lost
        assert server.created() == []
        await set_field(pilot, app, "#temperature-input", "")
        assert str(error.render()) == ""


async def test_reasoning_model_rejecting_temperature_is_explained(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url, deployments=("o4-mini",)))
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await set_field(pilot, app, "#temperature-input", "0.5")
        screen.query_one(PromptInput).focus()
        reply = await send(pilot, app, "think")
        assert reply.message.status == MessageStatus.FAILED
        assert "temperature" in (reply.message.error or "")
        notices = " ".join(str(n.message) + str(n.title) for n in app._notifications)
        assert "temperature" in notices
        # Clearing the field lets the next turn through.
        await set_field(pilot, app, "#temperature-input", "")
        screen.query_one(PromptInput).focus()
        screen.query_one(PromptInput).text = ""
        ok = await send(pilot, app, "again")
        assert ok.message.status == MessageStatus.COMPLETED
    assert "temperature" not in server.created()[-1]
