"""Shared fixtures. Every test runs with its own HOME and XDG dirs, and no socket may
connect anywhere but the loopback interface."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("tests.helpers")  # its checks explain themselves too

from tests.helpers import KEY_VARIABLE, TEST_KEY  # noqa: E402
from tests.responses_server import ResponsesServer  # noqa: E402

# pytest-xdist's workers run with COLUMNS=80 and LINES=24 set for their own output; Textual
# takes those over the terminal's size, so an app started in a 130-column pty (or in tmux)
# would lay itself out for 80. A terminal's size is the terminal's to say.
for _size_variable in ("COLUMNS", "LINES"):
    os.environ.pop(_size_variable, None)

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX paths
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_loopback(address):
        raise AssertionError(f"test tried to connect off the loopback interface: {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _is_loopback(address):
        raise AssertionError(f"test tried to connect off the loopback interface: {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(variable, str(home / variable.lower()))
    for variable in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_DEPLOYMENT",
        "FOUNDRY_TUI_CONFIG",
        "FOUNDRY_TUI_PROFILE",
        "FOUNDRY_TUI_MODEL",
        "FOUNDRY_TUI_DB",
    ):
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What a process remembers once (the SDK's private streaming path found broken; the
    log file and --debug) starts afresh in each test: the log under that test's HOME."""
    from foundry_tui.backend import sdk_stream
    from foundry_tui.core import logs

    monkeypatch.setattr(sdk_stream, "_broken", None)
    monkeypatch.setattr(sdk_stream, "_checked", False)
    logs.reset()
    yield
    logs.reset()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    """The test Responses server in this process, asking for the test key, which the app
    finds in its environment. Modules that need another server define their own."""
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY) as running:
        yield running


@pytest.fixture
def server_process() -> Iterator[Callable[..., str]]:
    """Starts `python -m tests.responses_server` as its own process (for tests that drive
    the real app in a terminal); returns its base URL; stops it after the test."""
    root = Path(__file__).resolve().parents[1]
    processes: list[subprocess.Popen[str]] = []

    def start(*options: str) -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.responses_server", "--port", "0", *options],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("READY "), line
        return line.split(" ", 1)[1]

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
