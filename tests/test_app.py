"""Pilot tests: a user driving the app against the local Responses API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from foundry_tui.core.models import MessageRole, MessageStatus
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.chat import ChatScreen
from foundry_tui.ui.widgets.prompt import PromptInput
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    chat_ready,
    click_does_nothing,
    last_reply_done,
    record_notifications,
    replies,
    send,
    set_field,
    shown,
    start_chat,
    visible_text,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, reasoning_models=["o4-mini"]) as running:
        yield running


async def test_send_and_stream_reply(tmp_path: Path, server: ResponsesServer) -> None:
    config = write_config(tmp_path, server.base_url)
    server.queue_reply("Here is code:\n\n```python\nprint('hi')\n```\n\nDone.")
    app = make_app(config)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: chat_ready(app), what="chat screen")
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
        assert "print('hi')" in reply.source
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
        # Kept once, in the transcript with its failed reply (Ctrl+R resends it), and not
        # also in the box, where Enter would send it a second time.
        assert shown(app)[0].message.text == "keep me"
        assert screen.query_one(PromptInput).text == ""
        footer = reply.footer
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
            lambda: bool(replies(app)) and "word5" in replies(app)[-1].source,
            what="some streamed text",
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: last_reply_done(app), what="cancelled reply")
        view = replies(app)[-1]
        assert view.message.status == MessageStatus.CANCELLED
        assert "cancelled" in view.footer
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        user, reply = store.transcript(summary.id)
    assert user.text == "long please"
    assert reply.status == MessageStatus.CANCELLED
    assert reply.text.startswith("word0 word1 word2 word3 word4 word5")
    assert "word399" not in reply.text


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
        assert "gpt-4o-mini" in second.header
        assert "gpt-4o" in first.header
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
    notices = record_notifications(app)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await set_field(pilot, app, "#temperature-input", "3")
        error = screen.query_one("#temperature-error", Static)
        assert "0.0 to 2.0" in str(error.render())
        screen.query_one(PromptInput).focus()
        await pilot.press(*"hi", "enter")
        await wait_until(
            pilot, lambda: any("Fix the highlighted setting" in n for n in notices), what="refusal"
        )
        assert screen.query_one(PromptInput).text == "hi"  # not sent, not lost
        assert shown(app) == []
        assert server.created() == []
        await set_field(pilot, app, "#temperature-input", "")
        assert str(error.render()) == ""


async def test_reasoning_model_rejecting_temperature_is_explained(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url, deployments=("o4-mini",)))
    notices = record_notifications(app)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await set_field(pilot, app, "#temperature-input", "0.5")
        screen.query_one(PromptInput).focus()
        reply = await send(pilot, app, "think")
        assert reply.message.status == MessageStatus.FAILED
        assert "temperature" in (reply.message.error or "")
        assert any("temperature" in notice for notice in notices)
        # Clearing the field lets the next turn through.
        await set_field(pilot, app, "#temperature-input", "")
        screen.query_one(PromptInput).focus()
        screen.query_one(PromptInput).text = ""
        ok = await send(pilot, app, "again")
        assert ok.message.status == MessageStatus.COMPLETED
    assert "temperature" not in server.created()[-1]


def retrieve_calls(server: ResponsesServer) -> list[str]:
    return [
        r.path.rsplit("/", 1)[-1]
        for r in server.requests
        if r.method == "GET" and "/responses/" in r.path and not r.path.endswith("input_items")
    ]


async def first_session(config: object, server: ResponsesServer, prompts: list[str]) -> list[str]:
    """Runs the app once, sends `prompts`, quits; returns the reply response ids."""
    app = make_app(config)  # type: ignore[arg-type]
    ids: list[str] = []
    async with app.run_test(size=(160, 40)) as pilot:
        await start_chat(app, pilot)
        for prompt in prompts:
            reply = await send(pilot, app, prompt)
            assert reply.message.response_id
            ids.append(reply.message.response_id)
    return ids


async def open_first_history_entry(pilot: object, app: object) -> ChatScreen:
    from foundry_tui.ui.widgets.history import ConversationList

    screen = await start_chat(app, pilot)
    history = screen.query_one(ConversationList)
    await wait_until(
        pilot,  # type: ignore[arg-type]
        lambda: history.option_count > 0 and history.get_option_at_index(0).id is not None,
        what="history list",
    )
    history.focus()
    history.highlighted = 0
    await pilot.press("enter")  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: len(replies(app)) > 0, what="transcript")  # type: ignore[arg-type]
    return screen


async def test_reopen_from_history_checks_server_and_chains(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from foundry_tui.ui.widgets.status import StatusLine

    config = write_config(tmp_path, server.base_url)
    [_first_id, second_id] = await first_session(config, server, ["alpha", "beta"])
    app = make_app(config)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_first_history_entry(pilot, app)
        assert [block.message.text for block in shown(app)] == [
            "alpha",
            "You said: alpha",
            "beta",
            "You said: beta",
        ]
        await wait_until(pilot, lambda: second_id in retrieve_calls(server), what="retrieve")
        status = screen.query_one(StatusLine)
        await wait_until(pilot, lambda: "chained" in status.mode, what="chain mode shown")
        await send(pilot, app, "gamma")
    body = server.created()[-1]
    assert body["previous_response_id"] == second_id
    assert body["input"] == [{"type": "message", "role": "user", "content": "gamma"}]


async def test_expired_conversation_replays_transcript(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from foundry_tui.ui.widgets.status import StatusLine

    config = write_config(tmp_path, server.base_url)
    await first_session(config, server, ["alpha", "beta"])
    server.expire_all()
    app = make_app(config)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_first_history_entry(pilot, app)
        status = screen.query_one(StatusLine)
        await wait_until(pilot, lambda: "resends the transcript" in status.mode, what="replay")
        reply = await send(pilot, app, "gamma")
        assert reply.message.status == MessageStatus.COMPLETED
    body = server.created()[-1]
    assert "previous_response_id" not in body or body["previous_response_id"] is None
    assert [(item["role"], item["content"]) for item in body["input"]] == [
        ("user", "alpha"),
        ("assistant", "You said: alpha"),
        ("user", "beta"),
        ("assistant", "You said: beta"),
        ("user", "gamma"),
    ]
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        assert summary.server_state.value == "live"  # the replay started a new chain


async def test_chain_lost_while_unchecked_falls_back_to_replay(
    tmp_path: Path, server: ResponsesServer
) -> None:
    """The server forgets between the check and the send: the 400 triggers a replay."""
    config = write_config(tmp_path, server.base_url)
    app = make_app(config)
    async with app.run_test(size=(160, 40)) as pilot:
        await start_chat(app, pilot)
        await send(pilot, app, "alpha")
        server.expire_all()
        reply = await send(pilot, app, "beta")
        assert reply.message.status == MessageStatus.COMPLETED
        assert reply.message.text == "You said: beta"
    chained, replayed = server.created()[-2:]
    assert chained["previous_response_id"]
    assert [item["content"] for item in replayed["input"]] == ["alpha", "You said: alpha", "beta"]


@pytest.mark.parametrize("history_in_input_items", [True, False])
async def test_resume_rebuilds_conversation_from_response_id(
    tmp_path: Path, server: ResponsesServer, history_in_input_items: bool
) -> None:
    import openai

    server.input_items_history = history_in_input_items

    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=TEST_KEY, max_retries=0)
    first = await client.responses.create(
        model="gpt-4o", input="remote one", instructions="Be kind."
    )
    second = await client.responses.create(
        model="gpt-4o", input="remote two", previous_response_id=first.id, instructions="Be kind."
    )
    await client.close()
    config = write_config(tmp_path, server.base_url)
    app = make_app(config, resume=second.id)
    async with app.run_test(size=(160, 40)) as pilot:
        await start_chat(app, pilot)
        await wait_until(pilot, lambda: len(replies(app)) == 2, what="rebuilt transcript")
        assert [block.message.text for block in shown(app)] == [
            "remote one",
            "You said: remote one",
            "remote two",
            "You said: remote two",
        ]
        await send(pilot, app, "local three")
    assert server.created()[-1]["previous_response_id"] == second.id
    assert server.created()[-1]["instructions"] == "Be kind."
    with Store.open(config.db_path) as store:
        [summary] = store.list_conversations()
        assert len(store.transcript(summary.id)) == 6


async def test_prompt_sent_while_opening_goes_with_the_conversations_settings(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prompt takes keys as soon as a reopened conversation is on screen; a prompt sent
    then, before the rest of the opening has been read, goes with the conversation's
    instructions, not the sidebar's defaults."""
    import asyncio

    import openai

    from foundry_tui.core.workspace import Workspace

    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=TEST_KEY, max_retries=0)
    first = await client.responses.create(
        model="gpt-4o", input="remote one", instructions="Be kind."
    )
    await client.close()
    rest_of_opening = asyncio.Event()
    is_archived = Workspace.is_archived

    async def held_is_archived(self: Workspace, conversation_id: str) -> bool:
        await rest_of_opening.wait()
        return await is_archived(self, conversation_id)

    monkeypatch.setattr(Workspace, "is_archived", held_is_archived)
    config = write_config(tmp_path, server.base_url)
    app = make_app(config, resume=first.id)
    async with app.run_test(size=(160, 40)) as pilot:
        await start_chat(app, pilot)
        await wait_until(pilot, lambda: len(replies(app)) == 1, what="rebuilt transcript")
        await send(pilot, app, "local two")
        rest_of_opening.set()
        await pilot.pause()
    assert server.created()[-1]["previous_response_id"] == first.id
    assert server.created()[-1]["instructions"] == "Be kind."


async def test_focus_moved_as_a_conversation_opens_is_not_taken_back(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a conversation focuses the prompt after its first frame, unless the user
    has moved the focus by then (Ctrl+Up to the messages, a click): that move stands."""
    from foundry_tui.core.models import GenerationSettings
    from foundry_tui.ui.widgets.transcript import Transcript

    config = write_config(tmp_path, server.base_url)
    with Store.open(config.db_path) as store:
        conversation = store.create_conversation(
            profile="local", settings=GenerationSettings(model="gpt-4o")
        )
        store.add_message(
            conversation_id=conversation.id,
            role=MessageRole.USER,
            text="question",
            status=MessageStatus.COMPLETED,
        )
    show = Transcript.show

    async def shown_then_focused(self: Transcript, messages: list[object]) -> None:
        await show(self, messages)  # type: ignore[arg-type]
        if messages:
            self.focus()  # the user's move, before the frame is drawn

    monkeypatch.setattr(Transcript, "show", shown_then_focused)
    app = make_app(config, resume=conversation.id)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await wait_until(pilot, lambda: len(shown(app)) == 1, what="transcript")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        assert screen.focused is screen.query_one(Transcript)


async def test_delete_asks_for_confirmation(tmp_path: Path, server: ResponsesServer) -> None:
    from foundry_tui.ui.screens.dialogs import ConfirmScreen
    from foundry_tui.ui.widgets.history import ConversationList

    config = write_config(tmp_path, server.base_url)
    await first_session(config, server, ["doomed"])
    app = make_app(config)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        history = screen.query_one(ConversationList)
        await wait_until(
            pilot,
            lambda: history.option_count > 0 and history.get_option_at_index(0).id is not None,
        )
        history.focus()
        history.highlighted = 0
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("n")  # first: keep it
        await wait_until(pilot, lambda: app.screen is screen)
        with Store.open(config.db_path) as store:
            assert len(store.list_conversations()) == 1
        history.focus()
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("y")
        await wait_until(pilot, lambda: history.get_option_at_index(0).id is None, what="gone")
    with Store.open(config.db_path) as store:
        assert store.list_conversations() == []


async def test_new_conversation_key_and_rename(tmp_path: Path, server: ResponsesServer) -> None:
    from textual.widgets import Input

    from foundry_tui.ui.screens.dialogs import RenameScreen

    config = write_config(tmp_path, server.base_url)
    app = make_app(config)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await send(pilot, app, "first topic")
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, RenameScreen), what="rename")
        app.screen.query_one(Input).value = "Renamed chat"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen)
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: not shown(app), what="empty transcript")
        await send(pilot, app, "second topic")
    with Store.open(config.db_path) as store:
        titles = sorted(c.title for c in store.list_conversations())
    assert titles == ["Renamed chat", "second topic"]
    assert "previous_response_id" not in server.created()[-1]


async def test_setup_screen_writes_config_and_starts_chat(
    tmp_path: Path, server: ResponsesServer
) -> None:
    import stat

    from textual.widgets import Input, Select

    from foundry_tui.config import load_config
    from foundry_tui.core.models import AuthMethod, EndpointKind
    from foundry_tui.ui.screens.setup import SetupScreen

    config_path = tmp_path / "conf" / "config.toml"
    app = make_app(load_config(config_path))
    async with app.run_test(size=(120, 50)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen), what="setup")
        setup = app.screen
        setup.query_one("#setup-kind", Select).value = EndpointKind.COMPATIBLE
        await pilot.pause()
        setup.query_one("#setup-endpoint", Input).value = server.base_url
        setup.query_one("#setup-auth", Select).value = AuthMethod.API_KEY
        setup.query_one("#setup-key-env", Input).value = KEY_VARIABLE
        setup.query_one("#setup-deployments", Input).value = ""
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "deployment" in str(setup.query_one("#setup-error").render())
        assert not config_path.exists()
        setup.query_one("#setup-deployments", Input).value = "gpt-4o, gpt-4o-mini"
        await pilot.press("ctrl+s")
        await start_chat(app, pilot)
        reply = await send(pilot, app, "configured")
        assert reply.message.status == MessageStatus.COMPLETED
    text = config_path.read_text()
    assert server.base_url in text and KEY_VARIABLE in text and TEST_KEY not in text
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    reloaded = load_config(config_path).active_profile()
    assert reloaded is not None and reloaded.deployments == ("gpt-4o", "gpt-4o-mini")


def test_every_binding_has_a_unique_id_and_tooltip() -> None:
    from textual.binding import Binding

    from foundry_tui.ui.app import FoundryApp
    from foundry_tui.ui.screens.chat import ChatScreen
    from foundry_tui.ui.screens.dialogs import ConfirmScreen, RenameScreen
    from foundry_tui.ui.screens.problem import ProblemScreen
    from foundry_tui.ui.screens.setup import SetupScreen
    from foundry_tui.ui.widgets.history import ConversationList

    ids: list[str] = []
    for owner in (
        FoundryApp,
        ChatScreen,
        ConfirmScreen,
        RenameScreen,
        ProblemScreen,
        SetupScreen,
        ConversationList,
    ):
        for binding in owner.BINDINGS:
            assert isinstance(binding, Binding), (owner, binding)
            assert binding.id, (owner, binding.key)
            assert binding.tooltip, (owner, binding.key)
            ids.append(binding.id)
    assert len(ids) == len(set(ids))


async def test_keymap_from_config_rebinds_keys(tmp_path: Path, server: ResponsesServer) -> None:
    from foundry_tui.ui.widgets.sidebar import SettingsSidebar

    config = write_config(tmp_path, server.base_url)
    config = type(config)(**{**config.__dict__, "keymap": {"chat.toggle_sidebar": "f9"}})
    app = make_app(config)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        sidebar = screen.query_one(SettingsSidebar)
        assert sidebar.display
        await pilot.press("f9")  # shown, not focused: the key goes to it
        assert sidebar.display and sidebar.has_focus_within
        await pilot.press("f9")
        assert not sidebar.display


async def test_model_output_that_looks_like_markup_is_shown_as_text(
    tmp_path: Path, server: ResponsesServer
) -> None:
    hostile = "[bold red]not bold[/] [@click=app.quit]click[/] \x1b]0;title\x07 \x1b[31mred\u202e"
    server.queue_reply(hostile)
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(160, 40)) as pilot:
        await start_chat(app, pilot)
        reply = await send(pilot, app, "be hostile")
        rendered = reply.source
        assert "[bold red]not bold[/]" in rendered
        assert "[@click=app.quit]click[/]" in rendered
        assert "\x1b" not in rendered and "\u202e" not in rendered and "\x07" not in rendered
        await click_does_nothing(pilot, "click[/]")  # the would-be link's text
    assert reply.message.text == hostile  # the saved text is what the server sent


async def test_environment_alone_starts_straight_into_chat(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from foundry_tui.config import Overrides, load_config

    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("FOUNDRY_TUI_MODEL", "gpt-4o-mini")
    config = load_config(tmp_path / "absent.toml", overrides=Overrides(db=tmp_path / "h.db"))
    app = make_app(config)
    async with app.run_test(size=(140, 40)) as pilot:
        await start_chat(app, pilot)
        reply = await send(pilot, app, "from env")
        assert reply.message.status == MessageStatus.COMPLETED
    assert server.created()[0]["model"] == "gpt-4o-mini"
    assert server.requests[-1].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert not (tmp_path / "absent.toml").exists()


async def test_model_list_shows_deployments_then_endpoint_models(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from textual.widgets import OptionList

    app = make_app(write_config(tmp_path, server.base_url, deployments=("my-deployment",)))
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        model_list = screen.query_one("#model-list", OptionList)
        await wait_until(pilot, lambda: model_list.option_count == 4, what="endpoint models")
        labels = [str(model_list.get_option_at_index(i).prompt) for i in range(4)]
        assert labels == [
            "my-deployment",
            "gpt-4o (endpoint)",
            "gpt-4o-mini (endpoint)",
            "o4-mini (endpoint)",
        ]
        # A typed name that is in neither list is accepted as it is.
        await set_field(pilot, app, "#model-input", "typed-deployment")
        screen.query_one(PromptInput).focus()
        await send(pilot, app, "hi")
    assert server.created()[-1]["model"] == "typed-deployment"


async def test_view_follows_stream_until_user_scrolls_up(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from foundry_tui.ui.widgets.transcript import Transcript

    server.tokens_per_second = 150
    server.queue_reply("\n\n".join(f"Paragraph {i} of a long answer." for i in range(120)))
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start_chat(app, pilot)
        transcript = screen.query_one(Transcript)

        async def grown(lines: int = 1) -> None:
            since = transcript.max_scroll_y
            await wait_until(pilot, lambda: transcript.max_scroll_y >= since + lines, what="more")

        await pilot.press(*"long", "enter")
        await wait_until(pilot, lambda: transcript.max_scroll_y > 10, what="overflow")
        for _ in range(5):  # the newest line stays in view as the reply grows
            await grown()
            assert transcript.following and transcript.newest_line_in_view
        transcript.scroll_to(y=0, animate=False)  # the user scrolls up to read
        await wait_until(pilot, lambda: transcript.scroll_y == 0, what="the scroll up")
        assert not transcript.following
        await grown(5)
        assert transcript.scroll_y < 5 and not transcript.newest_line_in_view  # left there
        transcript.scroll_end(animate=False)  # back at the bottom: follows again
        await wait_until(pilot, lambda: transcript.following, what="following again")
        for _ in range(3):
            await grown()
            assert transcript.following and transcript.newest_line_in_view
        server.tokens_per_second = None  # the rest at once
        await wait_until(pilot, lambda: last_reply_done(app), what="end")
        assert transcript.following and transcript.newest_line_in_view


async def test_long_conversation_opens_at_the_newest_and_scrolls_to_the_first(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from foundry_tui.core.models import GenerationSettings
    from foundry_tui.ui.widgets.transcript import Transcript

    config = write_config(tmp_path, server.base_url)
    with Store.open(config.db_path) as store:
        conversation = store.create_conversation(
            profile="local", settings=GenerationSettings(model="gpt-4o")
        )
        for turn in range(100):
            store.add_message(
                conversation_id=conversation.id,
                role=MessageRole.USER,
                text=f"question {turn}",
                status=MessageStatus.COMPLETED,
            )
            store.add_message(
                conversation_id=conversation.id,
                role=MessageRole.ASSISTANT,
                text=f"answer {turn}\n\n" + "words " * 80,
                status=MessageStatus.COMPLETED,
                response_id=f"resp_{turn}",
            )
    app = make_app(config, resume=conversation.id)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        await wait_until(pilot, lambda: len(shown(app)) == 200, what="transcript")
        transcript = screen.query_one(Transcript)
        await wait_until(pilot, lambda: "answer 99" in visible_text(transcript), what="newest")
        assert "question 0" not in visible_text(transcript)
        # Only what is in view has been rendered; the rest waits until it is scrolled to.
        width = transcript.scrollable_content_region.width
        rendered = [block for block in shown(app) if block.rendered_at(width)]
        assert 0 < len(rendered) < 20
        await app.workers.wait_for_complete()  # the opening has read everything
        transcript.focus()
        await pilot.press("home")
        await wait_until(pilot, lambda: "question 0" in visible_text(transcript), what="oldest")
        assert transcript.scroll_y == 0
        await pilot.press("end")
        await wait_until(pilot, lambda: "answer 99" in visible_text(transcript), what="back")
