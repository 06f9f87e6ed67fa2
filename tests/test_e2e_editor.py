"""Ctrl+E in a real terminal (tmux): the app hands the terminal to $EDITOR (App.suspend),
the editor runs in it and reads what is typed there, and the app comes back with the
editor's text in the prompt."""

from __future__ import annotations

import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import terminal_env
from tests.test_e2e_tmux import Terminal


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    assert shutil.which("tmux"), "tmux is needed for the end-to-end test (.ci/run installs it)"
    term = Terminal(tmp_path)
    yield term
    term.close()


def test_ctrl_e_suspends_runs_the_editor_in_the_terminal_and_resumes_with_its_text(
    tmp_path: Path, server_process: Callable[..., str], terminal: Terminal
) -> None:
    executable = Path(sys.executable).parent / "foundry-tui"
    assert executable.exists(), "foundry-tui must be installed (pip install -e .)"
    editor = tmp_path / "editor.py"
    # An editor that owns the terminal: it says so, reads a line typed there, and writes
    # it after what the file held.
    editor.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "path = sys.argv[-1]\n"
        "old = open(path, encoding='utf-8').read()\n"
        "print('FAKE-EDITOR-OPEN on ' + old, flush=True)\n"
        "line = sys.stdin.readline().strip()\n"
        "open(path, 'w', encoding='utf-8').write(old + ' ' + line + '\\n')\n",
        encoding="utf-8",
    )
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    env = terminal_env(tmp_path, server_process("--tps", "300"))
    env["EDITOR"] = f"{editor}"
    terminal.launch(f"{executable} --db {tmp_path / 'history.db'}", env)
    terminal.wait_for("Enter to send")
    terminal.type("draft")
    terminal.wait_for("▊ draft")  # in the prompt before the editor is asked for
    terminal.keys("C-e")
    screen = terminal.wait_for("FAKE-EDITOR-OPEN on draft")
    assert "New conversation" not in screen  # the app let go of the terminal
    terminal.type("from the editor")
    terminal.keys("Enter")
    # Back, with the editor's text in the prompt (the line typed was "from the editor").
    screen = terminal.wait_for("draft from the editor")
    assert "New conversation" in screen and "FAKE-EDITOR-OPEN" not in screen
    terminal.keys("C-q")
    terminal.wait_for("EXITED-0")
