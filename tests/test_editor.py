"""Ctrl+E: the prompt in $VISUAL or $EDITOR, with a fake editor script (a small Python
program written into tmp_path) that rewrites the file it is given. The real hand-over of
the terminal (App.suspend) is the tmux test's: test_e2e_editor.py."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.editor import NO_EDITOR, EditorProblem, editor_command
from foundry_tui.ui.widgets.prompt import PromptInput
from tests.helpers import record_notifications, start_chat, wait_until, write_config
from tests.responses_server import ResponsesServer


def fake_editor(tmp_path: Path, body: str, *, name: str = "editor.py") -> Path:
    """An executable editor: ``body`` runs with ``path`` (the file to edit, the last
    argument), ``args`` (the arguments before it) and ``log`` (a JSON file beside it)."""
    script = tmp_path / name
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, stat, sys\n"
        "path = sys.argv[-1]\n"
        "args = sys.argv[1:-1]\n"
        f"log = {str(tmp_path / 'editor-log.json')!r}\n"
        "info = os.stat(path)\n"
        "folder = os.stat(os.path.dirname(path))\n"
        "seen = {'path': path, 'args': args, 'text': open(path, encoding='utf-8').read(),\n"
        "        'mode': stat.S_IMODE(info.st_mode), 'folder_mode': stat.S_IMODE(folder.st_mode)}\n"
        "json.dump(seen, open(log, 'w'))\n" + body,
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def seen_by_editor(tmp_path: Path) -> dict[str, object]:
    return json.loads((tmp_path / "editor-log.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def no_editor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)


async def run_editor_on(
    tmp_path: Path, server: ResponsesServer, typed: str
) -> tuple[PromptInput, list[str]]:
    """Types ``typed``, presses Ctrl+E and waits for the editor to be done with."""
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start_chat(app, pilot)
        prompt = screen.query_one(PromptInput)
        notices = record_notifications(app)
        prompt.focus()
        await pilot.press(*typed)
        await wait_until(pilot, lambda: prompt.text == typed, what="typed")
        before = prompt.text
        await pilot.press("ctrl+e")
        await wait_until(
            pilot, lambda: prompt.text != before or bool(notices), what="the editor's outcome"
        )
        await wait_until(pilot, lambda: prompt.has_focus, what="the prompt focused again")
        return prompt, notices


def test_the_command_is_visual_then_editor_split_as_a_shell_would() -> None:
    assert editor_command({"VISUAL": "code --wait", "EDITOR": "vi"}) == (
        "VISUAL",
        ["code", "--wait"],
    )
    assert editor_command({"VISUAL": "  ", "EDITOR": "vim -u NONE"}) == (
        "EDITOR",
        ["vim", "-u", "NONE"],
    )
    assert editor_command({"EDITOR": "'/opt/my editor/ed' -n"}) == (
        "EDITOR",
        ["/opt/my editor/ed", "-n"],
    )
    with pytest.raises(EditorProblem) as unset:
        editor_command({})
    assert str(unset.value) == NO_EDITOR
    with pytest.raises(EditorProblem) as broken:
        editor_command({"EDITOR": "vim 'unclosed"})
    assert "$EDITOR" in str(broken.value)


async def test_ctrl_e_replaces_the_prompt_with_the_edited_text(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor = fake_editor(
        tmp_path,
        "open(path, 'w', encoding='utf-8').write(seen['text'].upper() + '\\nsecond line\\n')\n",
    )
    monkeypatch.setenv("EDITOR", "vi")  # VISUAL comes first
    monkeypatch.setenv("VISUAL", f"{editor} --wait -n")
    prompt, notices = await run_editor_on(tmp_path, server, "draft")
    assert prompt.text == "DRAFT\nsecond line"  # the editor's final newline is not kept
    assert prompt.cursor_location == prompt.document.end
    assert notices == []
    seen = seen_by_editor(tmp_path)
    assert seen["args"] == ["--wait", "-n"] and seen["text"] == "draft"
    path = Path(str(seen["path"]))
    assert path.name == "prompt.md" and seen["mode"] == 0o600 and seen["folder_mode"] == 0o700
    assert not path.exists() and not path.parent.exists()  # removed after


async def test_an_editor_that_fails_leaves_the_prompt_as_it_was(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor = fake_editor(
        tmp_path, "open(path, 'w').write('half-written')\nsys.exit(3)\n", name="bad.py"
    )
    monkeypatch.setenv("EDITOR", str(editor))
    prompt, notices = await run_editor_on(tmp_path, server, "keep me")
    assert prompt.text == "keep me"
    assert notices == [f"Editor: {editor} exited with status 3: the prompt is as it was."]


async def test_a_file_left_unchanged_leaves_the_prompt_as_it_was(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Saved as it was, with the final newline editors add.
    editor = fake_editor(tmp_path, "open(path, 'w').write(seen['text'] + '\\n')\n")
    monkeypatch.setenv("EDITOR", str(editor))
    prompt, notices = await run_editor_on(tmp_path, server, "same")
    assert prompt.text == "same"
    assert notices == ["Editor: The file was left unchanged: the prompt is as it was."]


async def test_neither_variable_set_says_how_to_set_one(
    tmp_path: Path, server: ResponsesServer
) -> None:
    prompt, notices = await run_editor_on(tmp_path, server, "text")
    assert prompt.text == "text"
    assert notices == [f"No editor: {NO_EDITOR}"]
    assert "$VISUAL" in NO_EDITOR and "$EDITOR" in NO_EDITOR and "export EDITOR=" in NO_EDITOR


async def test_an_editor_not_found_is_named_inert(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from foundry_tui.core.text import sanitize

    name = "/no/such/[b]ed[/b]\x1b[31m"
    monkeypatch.setenv("EDITOR", f"'{name}' --flag")
    prompt, notices = await run_editor_on(tmp_path, server, "text")
    assert prompt.text == "text"
    [notice] = notices
    assert "was not found" in notice and "$EDITOR" in notice
    # Shown as the text it is (markup not read, the escape sequence left out).
    assert notices == [notice] and sanitize(name) in notice


async def test_ctrl_e_is_in_the_key_bar_and_the_palette(
    tmp_path: Path, server: ResponsesServer
) -> None:
    from foundry_tui.ui.widgets.footer import KeyFooter

    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(200, 30)) as pilot:
        screen = await start_chat(app, pilot)
        footer = screen.query_one(KeyFooter)
        await wait_until(pilot, lambda: "^e Editor" in footer.text, what="in the key bar")
        [command] = [c for c in app.get_system_commands(screen) if c.title == "Editor"]
        assert "$VISUAL or $EDITOR" in command.help
        # In its place among the screen's keys (before Quit), wherever the focus is: the
        # prompt and the one-line fields have a Ctrl+E of their own that it overrides.
        bar = footer.text
        assert bar.index("^n New") < bar.index("^e Editor") < bar.index("^q Quit")
        screen.query_one("#temperature-input").focus()
        await pilot.pause(0)
        await footer.wait_for_refresh()
        assert footer.text == bar


async def test_ctrl_e_waits_for_a_streaming_reply(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from foundry_tui.ui.screens.editor import STREAMING

    monkeypatch.setenv("EDITOR", str(fake_editor(tmp_path, "")))
    server.tokens_per_second = 40
    server.queue_reply(" ".join(["word"] * 300))
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start_chat(app, pilot)
        notices = record_notifications(app)
        await pilot.press(*"go", "enter")
        await wait_until(pilot, lambda: screen.streaming, what="the reply streaming")
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: bool(notices), what="the notice")
        assert notices == [f"Editor: {STREAMING}"]
        assert not (tmp_path / "editor-log.json").exists()  # the editor never ran
        await pilot.press("escape")


async def test_a_terminal_that_cannot_be_handed_over_runs_no_editor(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import PaintedScreen

    # A terminal (not headless) whose driver cannot suspend, as Textual's web driver.
    monkeypatch.setenv("EDITOR", str(fake_editor(tmp_path, "open(path, 'w').write('x')\n")))
    painted = PaintedScreen(120, 30)
    app = make_app(write_config(tmp_path, server.base_url))
    app.driver_class = painted.driver
    async with app.run_test(size=(120, 30), headless=False) as pilot:
        screen = await start_chat(app, pilot)
        notices = record_notifications(app)
        prompt = screen.query_one(PromptInput)
        prompt.focus()
        await pilot.press(*"stay", "ctrl+e")
        await wait_until(pilot, lambda: bool(notices), what="the notice")
        assert notices == [
            "Editor: This terminal cannot be handed over to an editor (the app cannot "
            "suspend here); write the prompt in the box instead."
        ]
        assert prompt.text == "stay" and not (tmp_path / "editor-log.json").exists()
