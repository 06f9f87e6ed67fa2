"""The first five minutes of a new user, at 80, 120 and 160 columns: the panel keys, the
status line, a failed turn, recalling prompts, a missing model, the theme."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, OptionList

from foundry_tui.config import AppConfig, Overrides, load_config
from foundry_tui.config.writer import write_ui_setting
from foundry_tui.core.models import MessageStatus, Usage
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.history import HistoryPanel
from foundry_tui.ui.widgets.prompt import PromptInput
from foundry_tui.ui.widgets.sidebar import SettingsSidebar
from foundry_tui.ui.widgets.status import StatusLine
from tests.helpers import (
    KEY_VARIABLE,
    replies,
    send,
    shown,
    start_chat,
    wait_until,
    write_config,
)
from tests.responses_server import Fault, ResponsesServer

SIZES = [(80, 24), (120, 30), (160, 40)]
SIZE_IDS = ["80", "120", "160"]


def width_default(config: AppConfig) -> AppConfig:
    """No [ui] sidebar setting: the panels shown depend on the terminal's width."""
    return replace(config, sidebar=None)


async def say(pilot: Any, app: Any, text: str) -> Any:
    """Sends ``text`` put in the prompt at once (typed key by key, a prompt takes 70 ms a
    character) and waits for the reply."""
    app.screen.query_one(PromptInput).text = text
    return await send(pilot, app, "")


def notes(app: Any) -> list[str]:
    """Records what the app notifies from now on (App.notify is public)."""
    seen: list[str] = []
    original = app.notify

    def recording(message: str, **kwargs: Any) -> None:
        seen.append(message)
        original(message, **kwargs)

    app.notify = recording
    return seen


# -- Ctrl+B and Ctrl+O ---------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_a_panel_key_goes_to_a_shown_panel_and_hides_it_only_from_inside(
    tmp_path: Path, server: ResponsesServer, size: tuple[int, int]
) -> None:
    app = make_app(width_default(write_config(tmp_path, server.base_url)))
    async with app.run_test(size=size) as pilot:
        screen = await start_chat(app, pilot)
        prompt = screen.query_one(PromptInput)
        for key, panel_type in (("ctrl+b", SettingsSidebar), ("ctrl+o", HistoryPanel)):
            panel = screen.query_one(panel_type)
            for _ in range(2):  # shown or not at first, then shown but left for the prompt
                assert prompt.has_focus
                await pilot.press(key)
                await wait_until(pilot, lambda p=panel: p.display and p.has_focus_within)
                await pilot.press("ctrl+l")
                assert prompt.has_focus and panel.display
            await pilot.press(key)
            await wait_until(pilot, lambda p=panel: p.has_focus_within)
            await pilot.press(key)  # from inside the panel: hides it
            await wait_until(pilot, lambda p=panel: not p.display and prompt.has_focus)


# -- the status line -----------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_the_status_line_drops_words_not_figures_and_has_the_whole_text(
    tmp_path: Path, server: ResponsesServer, size: tuple[int, int]
) -> None:
    app = make_app(width_default(write_config(tmp_path, server.base_url)))
    async with app.run_test(size=size) as pilot:
        screen = await start_chat(app, pilot)
        said = notes(app)
        status = screen.query_one(StatusLine)
        status.last_status = MessageStatus.INCOMPLETE
        status.mode = "not on the server: resends the transcript"
        status.mode_short = "resends"
        status.last_usage = Usage(1_234_567, 89_012, 1_323_579)
        status.conversation_usage = Usage(9_000_000, 876_543, 9_876_543)
        status.notice = "Older turns left out to keep the local model fast (12 messages)"
        await pilot.pause()
        drawn = status.render_line(0).text.strip()
        width = status.content_size.width
        full = status.full_text
        assert len(drawn) <= width
        assert drawn == status.text
        for figure in ("1.2M", "89k", "9.9M"):
            assert figure in full
            # Every figure on the line is whole: none is cut at the edge.
            assert re.search(rf"(?<![\d.]){re.escape(figure)}(?![\d.])", drawn), (figure, drawn)
        assert drawn == full or len(full) > width
        assert status.tooltip == full
        # The palette's "Show status" gives the whole text.
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: bool(app.screen.query("CommandInput")), what="palette")
        app.screen.query_one("CommandInput", Input).value = "Show status"
        await wait_until(
            pilot,
            lambda: any(
                "Show status" in str(option.prompt)
                for results in app.screen.query(OptionList)
                for option in results.options
            ),
            what="the command in the palette",
        )
        await pilot.press("enter")
        await wait_until(pilot, lambda: full in said, what="the whole status notified")


# -- a failed turn ---------------------------------------------------------------------


async def test_after_a_failed_turn_the_status_says_how_the_next_send_goes_and_it_does(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(width_default(write_config(tmp_path, server.base_url)))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start_chat(app, pilot)
        first = await say(pilot, app, "one")
        server.inject(Fault.CONTENT_FILTER)
        failed = await say(pilot, app, "two")
        assert failed.message.status == MessageStatus.FAILED
        status = screen.query_one(StatusLine)
        assert "chained on the server" in status.full_text, status.full_text
        # The blocked prompt is in the transcript, once, and not back in the box.
        assert screen.query_one(PromptInput).text == ""
        assert [block.message.text for block in shown(app)].count("two") == 1
        await say(pilot, app, "three")
    body = server.created()[-1]
    assert body["previous_response_id"] == first.message.response_id
    # The blocked turn is not sent again as context.
    assert body["input"] == [{"type": "message", "role": "user", "content": "three"}]


async def test_a_failed_turn_is_left_out_of_a_replayed_transcript_until_resent(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(width_default(write_config(tmp_path, server.base_url)))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await start_chat(app, pilot)
        server.inject(Fault.CONTENT_FILTER)
        await say(pilot, app, "lost")
        # Nothing the server kept and nothing to replay: the next send starts afresh.
        assert "new conversation" in screen.query_one(StatusLine).full_text
        await say(pilot, app, "alpha")
        server.expire_all()
        await say(pilot, app, "beta")
        replayed = server.created()[-1]
        assert [item["content"] for item in replayed["input"]] == [
            "alpha",
            "You said: alpha",
            "beta",
        ]
        # Resent, it is part of the conversation.
        server.inject(Fault.CONTENT_FILTER)
        failed = await say(pilot, app, "gamma")
        await pilot.press("ctrl+r")
        await wait_until(
            pilot,
            lambda: replies(app)[-1].message.status == MessageStatus.COMPLETED,
            what="the resent reply",
        )
        assert failed.message.status == MessageStatus.FAILED
        server.expire_all()
        await say(pilot, app, "delta")
    contents = [item["content"] for item in server.created()[-1]["input"]]
    assert contents == [
        "alpha",
        "You said: alpha",
        "beta",
        "You said: beta",
        "gamma",
        "You said: gamma",
        "delta",
    ]


def test_which_turns_a_replay_sends_again() -> None:
    from foundry_tui.core.models import Message, MessageRole
    from foundry_tui.core.session import SendMode, _request_context

    def turn(number: int, status: MessageStatus, reply: str) -> list[Message]:
        def message(role: MessageRole, text: str, state: MessageStatus) -> Message:
            return Message(f"m{number}{role.value}", "c", None, role, text, state, "")

        return [
            message(MessageRole.USER, f"prompt {number}", MessageStatus.COMPLETED),
            message(MessageRole.ASSISTANT, reply, status),
        ]

    history = [
        *turn(1, MessageStatus.COMPLETED, "answer 1"),
        *turn(2, MessageStatus.FAILED, "half an answer, then a content filter"),
        *turn(3, MessageStatus.CANCELLED, "stopped by the user"),
        *turn(4, MessageStatus.CANCELLED, ""),
        *turn(5, MessageStatus.INCOMPLETE, "cut off at the limit"),
        *turn(6, MessageStatus.INTERRUPTED, "the app closed"),
    ]
    previous, context = _request_context(history, SendMode.REPLAY)
    assert previous is None
    assert [message.text for message in context] == [
        "prompt 1",
        "answer 1",
        "prompt 3",
        "stopped by the user",
        "prompt 5",
        "cut off at the limit",
        "prompt 6",
        "the app closed",
    ]


async def test_the_status_line_forgets_the_last_turn_when_a_turn_starts_or_it_is_deleted(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from foundry_tui.ui.screens.dialogs import ConfirmScreen

    server.tokens_per_second = 40
    app = make_app(width_default(write_config(tmp_path, server.base_url)))
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        status = screen.query_one(StatusLine)
        server.queue_reply("short")
        await say(pilot, app, "first")
        assert " in" in status.full_text and " out" in status.full_text
        server.queue_reply(" ".join(["word"] * 200))
        await pilot.press(*"second", "enter")
        await wait_until(
            pilot, lambda: status.last_status == MessageStatus.PENDING, what="the reply streaming"
        )
        # While the reply streams, the figures of the last one are not shown as its.
        assert " out" not in status.full_text, status.full_text
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.streaming, what="cancelled")
        assert status.last_status == MessageStatus.CANCELLED
        status.notice = "could not check the server: timed out"
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: screen.query_one("#history-list").has_focus)
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.session is None, what="deleted")
        await wait_until(pilot, lambda: status.full_text == "new conversation")
        assert not screen.check_action("retry", ())


# -- recalling prompts -------------------------------------------------------------------


async def test_up_on_an_empty_prompt_recalls_this_conversation_then_older_ones(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(width_default(write_config(tmp_path, server.base_url)))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await start_chat(app, pilot)
        prompt = screen.query_one(PromptInput)
        await say(pilot, app, "older topic")
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: not shown(app), what="a new conversation")
        await say(pilot, app, "first")
        await say(pilot, app, "second")
        recalled = []
        for key in ("up", "up", "up", "up", "down", "down", "down"):
            await pilot.press(key)
            await pilot.pause()
            recalled.append(prompt.text)
        assert recalled == [
            "second",
            "first",
            "older topic",
            "older topic",  # nothing older: it stays
            "first",
            "second",
            "",
        ]
        # In a prompt being written, the arrows move the cursor and recall nothing.
        await pilot.press(*"draft", "up")
        await pilot.pause()
        assert prompt.text == "draft"
        # A recalled prompt, edited and sent, is sent as edited.
        await pilot.press("end", *["backspace"] * 5, "up", *" again")
        reply = await send(pilot, app, "")
        assert reply.message.text == "You said: second again"


def test_recall_steps_through_this_conversation_then_the_older_prompts_once_read() -> None:
    from foundry_tui.ui.screens.recall import PromptRecall

    recall = PromptRecall(["b", "a", "b", "Continue"], skip=frozenset({"Continue"}))
    assert [recall.older(), recall.older()] == ["b", "a"]
    assert recall.older() is None  # the older ones are still being read: Up waits for them
    assert recall.add_older(["a", "z", "y"]) == "z"  # and shows the next when they come
    assert [recall.older(), recall.older()] == ["y", None]
    assert [recall.newer(), recall.newer(), recall.newer(), recall.newer()] == ["z", "a", "b", ""]
    assert recall.newer() == ""
    assert recall.add_older([]) is None  # not waiting: nothing to show


# -- no model ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (160, 40)], ids=["80", "160"])
async def test_with_no_model_set_the_model_list_gets_the_cursor_with_a_hint(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[profiles.gateway]\nkind = "compatible"\nendpoint = "{server.base_url}"\n'
        f'auth = "api_key"\napi_key_env = "{KEY_VARIABLE}"\n',
        encoding="utf-8",
    )
    app = make_app(load_config(path, overrides=Overrides(db=tmp_path / "history.db")))
    said = notes(app)
    async with app.run_test(size=size) as pilot:
        screen = await start_chat(app, pilot)
        models = screen.query_one("#model-list", OptionList)
        await wait_until(pilot, lambda: models.option_count > 0, what="the endpoint's models")
        await wait_until(pilot, lambda: models.has_focus, what="the model list focused")
        assert screen.query_one(SettingsSidebar).display
        assert models.highlighted == 0
        assert any("Pick one in the list" in note for note in said), said
        await pilot.press("down", "enter", "ctrl+l")
        reply = await say(pilot, app, "hello")
        assert reply.message.status == MessageStatus.COMPLETED
    assert server.created()[-1]["model"] == models.get_option_at_index(1).id


# -- the theme -----------------------------------------------------------------------------


async def test_the_chosen_theme_is_kept_in_the_config_with_its_comments(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    text = config.path.read_text(encoding="utf-8")
    config.path.write_text(
        text.replace("[ui]\n", "[ui]\n# my own note\n") + "# the end\n", encoding="utf-8"
    )
    config = load_config(config.path, overrides=Overrides(db=tmp_path / "history.db"))
    original = config.path.read_text(encoding="utf-8")
    app = make_app(config)
    async with app.run_test(size=(120, 30)) as pilot:
        await start_chat(app, pilot)
        assert app.theme != "nord"
        app.theme = "nord"  # what the palette's "Change theme" does
        await wait_until(
            pilot,
            lambda: 'theme = "nord"' in config.path.read_text(encoding="utf-8"),
            what="the theme saved",
        )
    saved = config.path.read_text(encoding="utf-8")
    assert "# my own note" in saved and "# the end" in saved
    assert saved.replace('theme = "nord"\n', "") == original
    again = make_app(load_config(config.path, overrides=Overrides(db=tmp_path / "history.db")))
    async with again.run_test(size=(120, 30)) as pilot:
        await start_chat(again, pilot)
        assert again.theme == "nord"


def test_a_ui_setting_is_written_in_place_keeping_every_comment(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '# mine\ndefault_profile = "a"  # keep\n\n[profiles.a]\nkind = "openai"\n\n'
        '[ui]\ntheme = "nord"   # picked in May #1\nsidebar = false\n\n# last words\n',
        encoding="utf-8",
    )
    write_ui_setting(path, "theme", "gruvbox")
    assert path.read_text(encoding="utf-8") == (
        '# mine\ndefault_profile = "a"  # keep\n\n[profiles.a]\nkind = "openai"\n\n'
        '[ui]\ntheme = "gruvbox"   # picked in May #1\nsidebar = false\n\n# last words\n'
    )
    bare = tmp_path / "bare.toml"
    bare.write_text('[profiles.a]\nkind = "openai"  # x\n', encoding="utf-8")
    write_ui_setting(bare, "theme", "nord")
    assert bare.read_text(encoding="utf-8") == (
        '[profiles.a]\nkind = "openai"  # x\n\n[ui]\ntheme = "nord"\n'
    )
