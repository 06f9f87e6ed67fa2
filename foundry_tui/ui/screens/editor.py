"""Ctrl+E: the prompt written in the user's own editor.

The command is ``$VISUAL``, else ``$EDITOR``, split as a shell would (``code --wait``,
``vim -u NONE``), with the path of a temporary file holding the prompt appended. The file
is ``prompt.md`` (editors pick Markdown highlighting from the suffix) in a directory of its
own, both readable only by the user, and removed afterwards.

The app hands the terminal over (``App.suspend``) and waits for the editor to exit: the
editor owns the terminal, so nothing may be drawn meanwhile, and the UI loop is blocked
until it returns. Where the app has no terminal at all (headless: tests, automation) there
is nothing to hand over, and the editor simply runs, in a thread. Where there is a
terminal the app cannot let go of (Textual's web driver), it says so and runs nothing.

The edited text replaces the prompt, cursor at its end; an editor that failed (non-zero
exit) or a file left as it was changes nothing, and a notice says which.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import SuspendNotSupported

from foundry_tui.ui.widgets.prompt import PromptInput

if TYPE_CHECKING:
    from foundry_tui.ui.screens.chat import ChatScreen

EDITOR_VARIABLES = ("VISUAL", "EDITOR")
NO_EDITOR = (
    "Neither $VISUAL nor $EDITOR is set. Set one to your editor before starting "
    "foundry-tui, e.g. export EDITOR=nano (or VISUAL='code --wait' for an editor that "
    "opens a window), then press Ctrl+E again."
)
STREAMING = (
    "A reply is still streaming: the editor takes the whole terminal, which would hold the "
    "reply up. Wait for it, or press Escape to stop it, then press Ctrl+E."
)


class EditorProblem(Exception):
    """The editor cannot be run; ``str()`` says why, in a sentence for the user."""


@dataclass(frozen=True)
class Edited:
    """What came of an editing session: the file's text, or None when the editor failed
    (``exit_status`` non-zero)."""

    text: str | None
    exit_status: int


def editor_command(env: Mapping[str, str]) -> tuple[str, list[str]]:
    """The variable that names the editor, and its command split into words."""
    for variable in EDITOR_VARIABLES:
        value = env.get(variable, "").strip()
        if not value:
            continue
        try:
            words = shlex.split(value)
        except ValueError as error:
            raise EditorProblem(
                f"${variable} ({value}) cannot be read as a command: {error}."
            ) from None
        if words:
            return variable, words
    raise EditorProblem(NO_EDITOR)


def run_editor(
    command: Sequence[str], text: str, run: Callable[[list[str]], int] | None = None
) -> Edited:
    """Writes ``text`` to a private temporary file, runs ``command`` on it (through
    ``run``, which returns the exit status) and reads the file back. FileNotFoundError
    or another OSError when the command cannot be started."""
    with tempfile.TemporaryDirectory(prefix="foundry-tui-") as folder:  # mode 0700
        path = Path(folder) / "prompt.md"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        status = (run or _run)([*command, str(path)])
        if status != 0:
            return Edited(None, status)
        # Read by name: some editors save by writing a new file and renaming it over.
        return Edited(path.read_text(encoding="utf-8", errors="replace"), status)


def _run(argv: list[str]) -> int:
    return subprocess.run(argv, check=False).returncode


def edit_prompt(screen: ChatScreen) -> None:
    """Ctrl+E on the chat screen."""
    if screen.streaming:
        screen.notify(STREAMING, title="Editor", severity="warning")
        return
    try:
        variable, command = editor_command(os.environ)
    except EditorProblem as problem:
        screen.notify(str(problem), title="No editor", severity="warning", timeout=15)
        return
    prompt = screen.query_one(PromptInput)
    text = prompt.full_text
    app = screen.app
    if app.is_headless:
        # No terminal to hand over or to restore: the editor runs beside the app.
        screen.run_worker(
            _edit_beside(screen, variable, command, text), group="editor", exit_on_error=False
        )
        return
    try:
        with app.suspend():
            edited = _attempt(variable, command, text)
    except SuspendNotSupported:
        screen.notify(
            "This terminal cannot be handed over to an editor (the app cannot suspend "
            "here); write the prompt in the box instead.",
            title="Editor",
            severity="warning",
        )
        return
    _finish(screen, command, text, edited)


async def _edit_beside(screen: ChatScreen, variable: str, command: list[str], text: str) -> None:
    edited = await asyncio.to_thread(_attempt, variable, command, text)
    _finish(screen, command, text, edited)


def _attempt(variable: str, command: list[str], text: str) -> Edited | EditorProblem:
    try:
        return run_editor(command, text)
    except FileNotFoundError:
        return EditorProblem(
            f"The editor {command[0]} (from ${variable}) was not found: set ${variable} to "
            "an editor installed here (a name on your PATH, or its full path)."
        )
    except OSError as error:
        return EditorProblem(
            f"The editor {command[0]} (from ${variable}) could not be started: "
            f"{error.strerror or error}."
        )


def _finish(
    screen: ChatScreen, command: list[str], text: str, edited: Edited | EditorProblem
) -> None:
    prompt = screen.query_one(PromptInput)
    if isinstance(edited, EditorProblem):
        screen.notify(str(edited), title="Editor", severity="error", timeout=15)
    elif edited.text is None:
        screen.notify(
            f"{command[0]} exited with status {edited.exit_status}: the prompt is as it was.",
            title="Editor",
            severity="warning",
        )
    else:
        # Editors end a file with a newline the prompt did not have: not part of it.
        new_text = edited.text if text.endswith("\n") else edited.text.removesuffix("\n")
        if new_text == text:
            screen.notify("The file was left unchanged: the prompt is as it was.", title="Editor")
        else:
            prompt.load_text(new_text)
            prompt.move_cursor(prompt.document.end)
    prompt.focus()
