"""Text the app did not write (model ids from /models, titles from the database, server
errors, paths from the config or the environment) is inert on every surface that shows it:
no escape sequence reaches the terminal, markup is shown as written, never acted on.

One test runs the real `foundry-tui` in a pseudo-terminal against a hostile test server and
reads every byte it wrote; the others look at each surface in a Pilot app.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, Static, TextArea

from foundry_tui.core.models import GenerationSettings, MessageRole, MessageStatus
from foundry_tui.core.text import one_line, sanitize
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.dialogs import ConfirmScreen, RenameScreen
from foundry_tui.ui.screens.problem import ProblemScreen
from foundry_tui.ui.screens.setup import SetupScreen
from foundry_tui.ui.widgets.history import ConversationList
from foundry_tui.ui.widgets.sidebar import LIST_CAP, SettingsSidebar
from foundry_tui.ui.widgets.status import StatusLine
from tests.helpers import KEY_VARIABLE, TEST_KEY, start_chat, wait_until, write_config
from tests.pty_terminal import foundry_in_pty
from tests.responses_server import ResponsesServer

CLIPBOARD = "\x1b]52;c;cHduZWQ=\x07"  # OSC 52: writes "pwned" to the user's clipboard
SET_TITLE = "\x1b]0;pwned-title\x07\x1b]2;pwned-too\x1b\\"  # OSC 0 and 2: window title
WIPE = "\x1b[2J\x1b[H"  # erase the screen, cursor home
LINK = "\x1b]8;;http://evil.example/\x1b\\"  # OSC 8: a hyperlink
# Bidi override, isolate and mark, NUL, DEL, a C1 CSI ("\x9b2J" erases the screen too).
ODD = "\u202e\u2066\u200f\x00\x7f\x9b2J"
SURROGATE = "\ud800"  # from a JSON "\\ud800": the terminal's UTF-8 encoder refuses it

# Each with its visible part: what must be shown, markup and all.
MODEL_A = f"clip{CLIPBOARD}{SET_TITLE}-[b]b[/b]"
MODEL_A_SHOWN = "clip-[b]b[/b]"
MODEL_B = f"link{LINK}L{WIPE}{ODD}-[@click=app.quit]q[/]"
MODEL_B_SHOWN = "linkL-[@click=app.quit]q[/]"
TITLE = f"title{SET_TITLE}{CLIPBOARD}-[b]t[/b]{WIPE}{ODD}-end"
TITLE_SHOWN = "title-[b]t[/b]-end"
ERROR = f"nope{CLIPBOARD}{LINK}-[b]n[/b]"
ERROR_SHOWN = "nope-[b]n[/b]"
MARKUP = "[bold red]loud[/] [@click=app.quit]quit[/] [link=http://evil.example]x[/link]"
HOSTILE = f"{MARKUP}{CLIPBOARD}{SET_TITLE}{WIPE}{LINK}{ODD}{SURROGATE}\ttab\r\nline two"
HOSTILE_SHOWN = f"{MARKUP}\ufffd\ttab\nline two"

# What none of that may put on the wire: the sequences' introducers with their payloads,
# the bidi controls, NUL, DEL and the C1 CSI (UTF-8 encoded).
FORBIDDEN = (
    b"\x1b]52;",
    b"\x1b]0;",
    b"\x1b]2;",
    b"\x1b[2J",
    b"\x1b]8;",
    "\u202e".encode(),
    "\u2066".encode(),
    "\u200f".encode(),
    b"\x00",
    b"\x7f",
    "\x9b".encode(),
)
UNSAFE_CHARACTERS = ("\x1b", "\x07", "\x00", "\x7f", "\x9b", "\u202e", "\u2066", "\u200f")


def inert(text: str) -> bool:
    return not any(character in text for character in UNSAFE_CHARACTERS)


def shown(widget: Static) -> str:
    return str(widget.render())


def store_with_hostile_conversation(db: Path) -> str:
    with Store.open(db) as store:
        conversation = store.create_conversation(
            profile="local", settings=GenerationSettings(model="gpt-4o"), title=TITLE
        )
        store.add_message(
            conversation_id=conversation.id,
            role=MessageRole.USER,
            text="hello there",
            status=MessageStatus.COMPLETED,
        )
        store.add_message(
            conversation_id=conversation.id,
            role=MessageRole.ASSISTANT,
            text="general kenobi",
            status=MessageStatus.COMPLETED,
            model="gpt-4o",
        )
        return conversation.id


# -- the one path ---------------------------------------------------------------------------


def test_sanitize_removes_the_whole_class_and_keeps_the_visible_text() -> None:
    assert sanitize(HOSTILE) == HOSTILE_SHOWN
    assert sanitize("\x1b[31mERROR\x1b[0m disk full") == "ERROR disk full"
    # Every C0 control but tab and newline (CR is a line break too), DEL, every C1 control.
    controls = "".join(chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)])
    assert sanitize(f"a{controls}b") == "a\t\n\nb"
    assert sanitize("a\rb\r\nc\u2028d") == "a\nb\nc\nd"
    # An unterminated string command keeps its body as text; only the introducer goes.
    assert sanitize("\x1b]0;no end") == "0;no end"
    assert sanitize("plain text, unchanged") == "plain text, unchanged"


def test_one_line_flattens_and_shortens() -> None:
    assert one_line(f"{TITLE}\n\tsecond line") == f"{TITLE_SHOWN} second line"
    assert one_line("x" * 100, 10) == "x" * 9 + "…"
    assert one_line("a\x1b[2Jb " * 10_000, None) == " ".join(["ab"] * 10_000)


# -- a real terminal ------------------------------------------------------------------------


def test_no_hostile_sequence_reaches_the_terminal_from_any_surface(
    tmp_path: Path, server_process: Callable[..., str]
) -> None:
    """Model ids in the sidebar, a title in the history, the delete and rename dialogs and
    the conversation title, a server's error in a notification: the raw bytes the app wrote
    carry none of the sequences, and the visible parts are on screen."""
    listing = tmp_path / "models.json"
    listing.write_text(json.dumps([MODEL_A, MODEL_B]), encoding="utf-8")
    url = server_process("--models-file", str(listing))
    store_with_hostile_conversation(tmp_path / "history.db")
    with foundry_in_pty(tmp_path, url) as app:
        app.wait_text("Enter to send", 20)
        app.send("\x0f")  # Ctrl+O: the history list
        app.wait_text(TITLE_SHOWN, 5)
        app.send("\x1b[3~")  # Delete: asks first, quoting the title
        app.wait_text(f"“{TITLE_SHOWN}”", 5)
        app.send("n")
        app.wait_for(lambda s: not s.contains("all its messages"), 5, "the dialog to close")
        app.send("\x1bOQ")  # F2: rename, the title in the field
        app.wait_text("Rename conversation", 5)
        assert app.text().contains(TITLE_SHOWN)
        app.send("\x1b")
        app.wait_for(lambda s: not s.contains("Rename conversation"), 5, "the rename to close")
        app.send("\r")  # open it: its title above the transcript
        app.wait_text("general kenobi", 5)
        inject = urllib.request.Request(
            url.rsplit("/v1", 1)[0] + "/_control/inject",
            data=json.dumps({"fault": "unauthorized", "message": ERROR}).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(inject, timeout=5).close()
        app.send("x\r")
        app.wait_text(ERROR_SHOWN, 10)  # the error's notification
        app.wait_text(MODEL_A_SHOWN, 10)  # the sidebar, once /models answered
        app.wait_text(MODEL_B_SHOWN, 5)
        raw = bytes(app.raw or b"")
    assert TITLE_SHOWN.encode() in raw and MODEL_B_SHOWN.encode() in raw
    for sequence in FORBIDDEN:
        assert sequence not in raw, sequence


def test_setup_and_problem_screens_write_no_hostile_sequence(
    tmp_path: Path, server_process: Callable[..., str]
) -> None:
    """A config path (FOUNDRY_TUI_CONFIG) on the setup screen, a database path (--db) on the
    problem screen: shown, and none of their sequences reach the terminal."""
    url = server_process()
    link = "\x1b]8;;evil.example\x1b\\"  # a file name holds no "/", so no closing tag
    hostile = tmp_path / f"dir{SET_TITLE}{CLIPBOARD}-[b]x{WIPE}{link}[@click=app.quit]q"
    hostile.mkdir()
    shown_dir = "dir-[b]x[@click=app.quit]q"
    config = {"FOUNDRY_TUI_CONFIG": str(hostile / "none.toml")}
    with foundry_in_pty(tmp_path, url, env=config, cols=160, rows=40) as app:
        app.wait_text("Welcome to foundry-tui", 20)
        joined = f"{shown_dir}/none.toml"  # wherever the form wraps the path
        app.wait_for(lambda s: joined in "".join(line.strip() for line in s.lines), 5, joined)
        setup_bytes = bytes(app.raw or b"")
    damaged = hostile / "history.db"
    damaged.write_bytes(b"not a database, " * 100)
    with foundry_in_pty(tmp_path, url, args=("--db", str(damaged)), cols=160, rows=40) as app:
        app.wait_text("The history database is damaged", 20)
        app.wait_for(lambda s: shown_dir in "".join(line.strip() for line in s.lines), 5, "path")
        problem_bytes = bytes(app.raw or b"")
    for raw in (setup_bytes, problem_bytes):
        for sequence in FORBIDDEN:
            assert sequence not in raw, sequence


# -- each surface ---------------------------------------------------------------------------


@pytest.fixture
def hostile_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, models=[MODEL_A, MODEL_B, "gpt-4o"]) as running:
        yield running


async def test_sidebar_lists_hostile_model_ids_literally(
    tmp_path: Path, hostile_server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, hostile_server.base_url, deployments=("gpt-4o",)))
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        app.load_endpoint_models()  # now, rather than after the warm-up
        model_list = screen.query_one("#model-list", OptionList)
        await wait_until(pilot, lambda: model_list.option_count == 3, what="endpoint models")
        await pilot.pause()
        labels = [str(model_list.get_option_at_index(i).prompt) for i in range(3)]
        assert labels == ["gpt-4o", f"{MODEL_A_SHOWN} (endpoint)", f"{MODEL_B_SHOWN} (endpoint)"]
        drawn = "\n".join(model_list.render_line(y).text for y in range(model_list.size.height))
        assert MODEL_A_SHOWN in drawn and "[@click=app.quit]q[/]" in drawn and inert(drawn)
        model_list.focus()
        model_list.highlighted = 1
        await pilot.press("enter")
        model_input = screen.query_one("#model-input", Input)
        await wait_until(pilot, lambda: model_input.value == MODEL_A_SHOWN, what="the pick")
        assert app.is_running


async def test_history_entry_and_dialogs_show_a_hostile_title_literally(
    tmp_path: Path, server: ResponsesServer
) -> None:
    conversation_id = store_with_hostile_conversation(tmp_path / "history.db")
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        history = screen.query_one(ConversationList)
        await wait_until(pilot, lambda: history.option_count == 1, what="the history")
        history.focus()
        history.highlighted = 0
        await pilot.pause()
        entry = history.render_line(0).text
        assert TITLE_SHOWN in entry and inert(entry)

        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        question = shown(app.screen.query_one(".dialog-question", Static))
        assert question == f"Delete “{TITLE_SHOWN}” and all its messages?"
        await pilot.press("n")

        await wait_until(pilot, lambda: app.screen is screen, what="the dialog to close")
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, RenameScreen), what="rename")
        field = app.screen.query_one("#rename-input", Input)
        assert field.value == TITLE_SHOWN
        await pilot.press("enter")  # unchanged: the stored title is kept as it was
        await wait_until(pilot, lambda: app.screen is screen, what="the rename to close")
        await pilot.press("enter")  # open it
        title = screen.query_one("#conversation-title", Static)
        await wait_until(pilot, lambda: TITLE_SHOWN in shown(title), what="the title")
        assert shown(title) == TITLE_SHOWN
    with Store.open(tmp_path / "history.db") as store:
        saved = store.get_conversation(conversation_id)
    assert saved is not None and saved.title == TITLE


async def test_notification_shows_markup_and_escapes_as_text(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(140, 40), notifications=True) as pilot:
        await start_chat(app, pilot)
        app.notify(HOSTILE, title=f"{ERROR} title")
        await wait_until(pilot, lambda: bool(app.screen.query("Toast")), what="the toast")
        toast = shown(app.screen.query_one("Toast", Static))
        assert f"{ERROR_SHOWN} title" in toast
        assert "[@click=app.quit]quit[/]" in toast and "line two" in toast
        assert inert(toast)
        await pilot.click("Toast")  # the would-be action link does nothing but dismiss it
        assert app.is_running


async def test_status_line_notice_is_inert(tmp_path: Path, server: ResponsesServer) -> None:
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        status = screen.query_one(StatusLine)
        status.notice = ERROR
        await pilot.pause()
        assert shown(status).endswith(ERROR_SHOWN)


async def test_problem_screen_shows_a_hostile_path_literally(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(140, 40)) as pilot:
        await start_chat(app, pilot)
        await app.push_screen(ProblemScreen(TITLE, f"The file {HOSTILE} is damaged."))
        detail = shown(app.screen.query_one("#problem-detail", Static))
        assert detail == f"The file {HOSTILE_SHOWN} is damaged."
        assert shown(app.screen.query_one("#problem-title", Static)) == TITLE_SHOWN


async def test_setup_screen_shows_paths_and_errors_literally(tmp_path: Path) -> None:
    from foundry_tui.config import Overrides, load_config

    config_path = tmp_path / f"conf{SET_TITLE}[b]x[/b].toml"
    app = make_app(load_config(config_path, overrides=Overrides(db=tmp_path / "h.db")))
    async with app.run_test(size=(140, 50)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen), what="setup")
        setup = app.screen
        assert isinstance(setup, SetupScreen)
        intro = shown(setup.query_one("#setup-intro", Static))
        assert f"\n{tmp_path}/conf[b]x[/b].toml\n" in intro
        setup.show_error(f"Could not save the config: {HOSTILE}")
        error = shown(setup.query_one("#setup-error", Static))
        assert error == f"Could not save the config: {HOSTILE_SHOWN}"


async def test_settings_from_a_rebuilt_conversation_are_shown_inert(
    tmp_path: Path, server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        sidebar = screen.query_one(SettingsSidebar)
        sidebar.show_settings(GenerationSettings(model=MODEL_A, instructions=HOSTILE))
        await pilot.pause()
        assert screen.query_one("#model-input", Input).value == MODEL_A_SHOWN
        assert screen.query_one("#instructions-input", TextArea).text == HOSTILE_SHOWN


# -- 100,000 models ---------------------------------------------------------------------------


@pytest.fixture
def crowded_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    models = [f"model-{i:06d}" for i in range(100_000)]
    with ResponsesServer(api_key=TEST_KEY, models=models, validate=False) as running:
        yield running


async def test_a_hundred_thousand_models_are_capped_and_filtered(
    tmp_path: Path, crowded_server: ResponsesServer
) -> None:
    app = make_app(write_config(tmp_path, crowded_server.base_url, deployments=("gpt-4o",)))
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await start_chat(app, pilot)
        app.load_endpoint_models()  # now, rather than after the warm-up
        model_list = screen.query_one("#model-list", OptionList)
        await wait_until(
            pilot, lambda: model_list.option_count > 1, timeout=30, what="the endpoint's models"
        )
        assert model_list.option_count == LIST_CAP + 1  # and a line saying how many more
        last = str(model_list.get_option_at_index(LIST_CAP).prompt)
        assert last == f"… {100_001 - LIST_CAP:,} more: type to narrow the list"
        # Typing filters among all of them, the last ones included.
        model_input = screen.query_one("#model-input", Input)
        model_input.focus()
        model_input.value = ""
        await pilot.press(*"model-09999")
        await wait_until(pilot, lambda: model_list.option_count == 10, what="the filter")
        assert str(model_list.get_option_at_index(9).prompt) == "model-099999 (endpoint)"
        await pilot.press("9")
        await wait_until(pilot, lambda: model_list.option_count == 1, what="one match")
        assert model_list.get_option_at_index(0).id == "model-099999"
