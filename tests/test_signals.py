"""SIGTERM and SIGHUP while a reply streams: the real `foundry-tui` in a pseudo-terminal
saves the reply so far, restores the terminal and exits with 128 + the signal's number."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from foundry_tui.core.models import Message, MessageRole, MessageStatus
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.widgets.message_block import MessageBlock
from foundry_tui.ui.widgets.transcript import Transcript
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    last_reply_done,
    press_keys,
    replies,
    start_chat,
    terminal_env,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer

EXECUTABLE = Path(sys.executable).parent / "foundry-tui"
# One word a token, numbered, so that what reached the screen can be told from the rest.
REPLY = " ".join(f"w{n:03d}" for n in range(800))
# What the app must write when it leaves, whatever ended it (Textual's driver sends them).
RESTORE = {
    "alternate screen left": b"\x1b[?1049l",
    "mouse clicks off": b"\x1b[?1000l",
    "mouse motion off": b"\x1b[?1003l",
    "SGR mouse off": b"\x1b[?1006l",
    "cursor shown": b"\x1b[?25h",
    "bracketed paste off": b"\x1b[?2004l",
}

pytestmark = pytest.mark.skipif(not EXECUTABLE.exists(), reason="foundry-tui is not installed")


class RawTerminal:
    """A process in a pseudo-terminal of its own (its controlling terminal), with every byte
    it writes kept as written."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.output = bytearray()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))

        def controlling_terminal() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.master: int | None = master
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                close_fds=True,
                preexec_fn=controlling_terminal,
            )
        finally:
            os.close(slave)
        self._reader = threading.Thread(target=self._read, args=(master,), daemon=True)
        self._reader.start()

    def _read(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:  # the descriptor went non-blocking: wait until readable
                with contextlib.suppress(OSError, ValueError):  # closed: read says so
                    select.select([fd], [], [], 0.1)
                continue
            except OSError as exc:  # EIO: the process and its terminal are gone
                if exc.errno not in (errno.EIO, errno.EBADF):
                    raise
                data = b""
            with self._changed:
                if not data:
                    self._changed.notify_all()
                    return
                self.output.extend(data)
                self._changed.notify_all()

    def wait_for(self, text: bytes, timeout: float = 15.0) -> int:
        """Waits until ``text`` was written; returns how many bytes were written by then."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while text not in self.output:
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    raise AssertionError(
                        f"{text!r} never written; the last bytes: {bytes(self.output[-400:])!r}"
                    )
                self._changed.wait(min(left, 0.2))
            return len(self.output)

    def send(self, data: bytes) -> None:
        assert self.master is not None
        os.write(self.master, data)

    def hang_up(self) -> None:
        """Closes the terminal, as when its window is closed: the kernel sends SIGHUP."""
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def finish(self, timeout: float = 15.0) -> bytes:
        """Waits for the process to end and for its last bytes; returns all it wrote."""
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        with self._lock:
            return bytes(self.output)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None
        self._reader.join(timeout=5)


@pytest.fixture
def slow_server() -> Iterator[ResponsesServer]:
    with ResponsesServer(tokens_per_second=100, reply=lambda body: REPLY) as server:
        yield server


def start_streaming(tmp_path: Path, server: ResponsesServer) -> tuple[RawTerminal, Path]:
    """The app, mid-way through a slow reply: a few words of it are on the screen."""
    db = tmp_path / "history.db"
    terminal = RawTerminal(
        [str(EXECUTABLE), "--db", str(db)], terminal_env(tmp_path, server.base_url)
    )
    terminal.wait_for(b"Enter to send")
    terminal.send(b"tell me a long story\r")
    terminal.wait_for(b"w008")
    return terminal, db


def saved_reply(db: Path) -> tuple[str, MessageStatus]:
    with Store.open(db) as store:
        [summary] = store.list_conversations()
        prompt, reply = store.transcript(summary.id)
    assert prompt.role == MessageRole.USER and prompt.text == "tell me a long story"
    return reply.text, reply.status


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_mid_stream_saves_the_reply_and_restores_the_terminal(
    tmp_path: Path, slow_server: ResponsesServer, stop: signal.Signals
) -> None:
    terminal, db = start_streaming(tmp_path, slow_server)
    try:
        before_signal = terminal.wait_for(b"w008")
        os.kill(terminal.process.pid, stop)
        output = terminal.finish()
    finally:
        terminal.close()
    assert terminal.process.returncode == 128 + stop
    text, status = saved_reply(db)
    assert status == MessageStatus.CANCELLED
    # The text that had arrived, and no more than the server sent.
    assert text.startswith("w000 w001") and "w008" in text and REPLY.startswith(text)
    assert len(text) < len(REPLY)
    after = output[before_signal:]
    missing = [what for what, sequence in RESTORE.items() if sequence not in after]
    assert not missing, f"not restored: {missing}; the last bytes: {after[-300:]!r}"
    # Nothing switched the alternate screen or the mouse back on after that.
    assert output.rfind(b"\x1b[?1049l") > output.rfind(b"\x1b[?1049h")
    assert output.rfind(b"\x1b[?1000l") > output.rfind(b"\x1b[?1000h")


def test_closing_the_terminal_mid_stream_saves_the_reply(
    tmp_path: Path, slow_server: ResponsesServer
) -> None:
    terminal, db = start_streaming(tmp_path, slow_server)
    try:
        terminal.hang_up()
        terminal.finish()
    finally:
        terminal.close()
    # Its own status, not Python's 120 for output it could no longer write.
    assert terminal.process.returncode == 128 + signal.SIGHUP
    text, status = saved_reply(db)
    assert status == MessageStatus.CANCELLED
    assert "w008" in text and REPLY.startswith(text) and len(text) < len(REPLY)


async def test_a_cancel_that_lands_while_the_screen_draws_still_saves_the_reply(
    tmp_path: Path, slow_server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Escape, Ctrl+Q and a signal cancel the turn's worker wherever it waits. The screen
    draws the turn's events (turn messages) apart from the worker that runs it: a cancel
    that comes while the screen is still drawing the reply's start reaches the session all
    the same, which saves the reply, not leave it pending; the screen then shows it."""
    drawing = asyncio.Event()
    drawn = asyncio.Event()
    add = Transcript.add

    async def slow_add(self: Transcript, message: Message) -> MessageBlock:
        if message.role == MessageRole.ASSISTANT:
            drawing.set()
            await drawn.wait()  # the cancel comes while the screen is here
        return await add(self, message)

    monkeypatch.setattr(Transcript, "add", slow_add)
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    app = make_app(write_config(tmp_path, slow_server.base_url))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start_chat(app, pilot)
        await pilot.press(*"story")
        # Not pilot.press: it waits for the screen, which stays busy drawing.
        await press_keys(pilot, "enter")
        await wait_until(pilot, drawing.is_set, what="the reply being drawn")
        screen.action_cancel_reply()  # what Escape does
        await wait_until(
            pilot,
            lambda: not any(w.group == "turn" and not w.is_finished for w in app.workers),
            what="the turn to end",
        )
        assert app.store is not None
        [summary] = app.store.list_conversations()
        prompt, reply = app.store.transcript(summary.id)
        assert prompt.text == "story"
        assert reply.status == MessageStatus.CANCELLED
        drawn.set()
        await wait_until(pilot, lambda: last_reply_done(app), what="the reply shown cancelled")
        assert replies(app)[-1].message.status == MessageStatus.CANCELLED
