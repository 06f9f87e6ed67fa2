"""The installed `foundry-tui` in a pseudo-terminal of our own, for tests that need the exact
bytes it wrote (``PtyApp.raw``) or that write exact bytes into it (a bracketed paste)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.ptyterm import PtyApp
from tests.helpers import terminal_env

EXECUTABLE = Path(sys.executable).parent / "foundry-tui"
PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"


@contextmanager
def foundry_in_pty(
    directory: Path,
    base_url: str,
    *,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    cols: int = 130,
    rows: int = 32,
) -> Iterator[PtyApp]:
    """`foundry-tui --db DIRECTORY/history.db ARGS` with a keyless profile for ``base_url``;
    killed at the end (its orderly quit takes a second, and is not what these tests check)."""
    assert EXECUTABLE.exists(), "foundry-tui must be installed (pip install -e .)"
    environment = {**os.environ, **terminal_env(directory, base_url), **(env or {})}
    argv = [str(EXECUTABLE), "--db", str(directory / "history.db"), *args]
    with PtyApp(argv, env=environment, cols=cols, rows=rows, keep_raw=True) as app:
        try:
            yield app
        finally:
            app.kill()


def write_all(app: PtyApp, data: bytes) -> None:
    """Writes ``data`` as the terminal would send it. The pty holds only a few KB: a big
    write waits for the app to read, so it runs in a thread while the caller watches."""

    def write() -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(app.master, view) :]

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(timeout=60)
    assert not writer.is_alive(), "the app stopped reading its input"


def paste(app: PtyApp, payload: bytes) -> None:
    """A bracketed paste of ``payload`` (the bytes between the markers are not checked)."""
    write_all(app, PASTE_START + payload + PASTE_END)
