"""End to end: the installed `foundry-tui` in a real terminal (tmux), against the local
Responses API server running as its own process. Types with send-keys, reads capture-pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from foundry_tui.core.models import MessageRole
from foundry_tui.store import Store

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-e2e-not-a-real-key"


@pytest.fixture
def server_url(server_process: Callable[..., str]) -> str:
    return server_process("--api-key", KEY, "--tps", "300")


class Terminal:
    """One tmux server of our own (its own socket), 110x32."""

    def __init__(self, directory: Path) -> None:
        self.launches = 0
        self.socket = ""
        self.directory = directory

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        return result.stdout

    def launch(self, command: str, env: dict[str, str]) -> None:
        self.launches += 1  # a fresh tmux server per launch: no wait for the old one to go
        self.socket = f"ftui-e2e-{os.getpid()}-{self.launches}"
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        self.tmux(
            "new-session",
            "-d",
            "-s",
            "app",
            "-x",
            "110",
            "-y",
            "32",
            f"env {exports} {command}; echo EXITED-$?; sleep 30",
        )

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "app")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "app", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "app", "-l", text)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared on screen:\n{self.screen()}")

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    assert shutil.which("tmux"), "tmux is needed for the end-to-end test (.ci/run installs it)"
    term = Terminal(tmp_path)
    yield term
    term.close()


def test_chat_quit_relaunch_reopen_continue(
    tmp_path: Path, server_url: str, terminal: Terminal
) -> None:
    executable = Path(sys.executable).parent / "foundry-tui"
    assert executable.exists(), "foundry-tui must be installed (pip install -e .)"
    config = tmp_path / "config.toml"
    config.write_text(
        f"""[profiles.local]
kind = "compatible"
endpoint = "{server_url}"
api_key_env = "E2E_KEY"
deployments = ["gpt-4o"]
""",
        encoding="utf-8",
    )
    db = tmp_path / "history.db"
    env = {
        "HOME": str(tmp_path),
        "FOUNDRY_TUI_CONFIG": str(config),
        "E2E_KEY": KEY,
        "TERM": "xterm-256color",
    }
    command = f"{executable} --db {db}"

    terminal.launch(command, env)
    terminal.wait_for("Enter to send")
    terminal.type("hello from tmux")
    terminal.keys("Enter")
    terminal.wait_for("You said: hello from tmux")
    terminal.wait_for("completed")
    terminal.keys("C-q")
    terminal.wait_for("EXITED-0")
    terminal.close()

    terminal.launch(command, env)
    terminal.wait_for("Enter to send")
    terminal.keys("C-o")  # history
    terminal.wait_for("hello from tmux")
    terminal.keys("Enter")  # open the highlighted (newest) conversation
    terminal.wait_for("You said: hello from tmux")
    terminal.wait_for("· chained")  # the short form: the history takes a third of the width
    terminal.type("and a second turn")
    terminal.keys("Enter")
    terminal.wait_for("You said: and a second turn")
    terminal.keys("C-q")
    terminal.wait_for("EXITED-0")

    with Store.open(db) as store:
        [summary] = store.list_conversations()
        first_reply, second_reply = [
            m for m in store.transcript(summary.id) if m.role == MessageRole.ASSISTANT
        ]
    assert second_reply.previous_response_id == first_reply.response_id
    assert KEY not in db.read_bytes().decode("latin-1")
