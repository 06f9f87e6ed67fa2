"""A paste in progress pauses the warm-up's imports.

A moment after the first frame a thread imports the client library: about 0.5 s of Python
bytecode holding the GIL. A big paste arriving then is read by the input thread 4 kB at a
time (what the terminal hands over per read), and after each read that thread waits for
the GIL again: a 5 MB paste took 0.45-0.75 s to show, against 0.1 s once the warm-up was
over. The warm-up thread now steps aside at its next module import while a paste is being
read (the input thread marks its start and end), and carries on after it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# A paste whose end never comes (the terminal closed mid-paste) holds the warm-up up for
# this long in all, no longer.
LONGEST_PAUSE = 3.0

_not_pasting = threading.Event()
_not_pasting.set()
_gated_thread: int | None = None
_paused = 0.0
_hook_added = False


def paste_started() -> None:
    _not_pasting.clear()


def paste_ended() -> None:
    _not_pasting.set()


def _step_aside(event: str, args: tuple[object, ...]) -> None:
    """An audit hook. Python raises "import" before it looks for a module not yet loaded,
    holding no import lock (a finder on sys.meta_path runs under the global one: waiting
    there held every other thread's imports too)."""
    global _paused
    if (
        _gated_thread is None
        or event != "import"
        or threading.get_ident() != _gated_thread
        or _not_pasting.is_set()
        or _paused >= LONGEST_PAUSE
    ):
        return
    started = time.monotonic()
    _not_pasting.wait(LONGEST_PAUSE - _paused)
    _paused += time.monotonic() - started


@contextmanager
def imports_yield_to_pastes() -> Iterator[None]:
    """Within it, this thread's imports of modules not yet loaded wait for a paste being
    read to end. (An audit hook cannot be taken off: outside this block it returns at its
    first test.)"""
    global _gated_thread, _paused, _hook_added
    if not _hook_added:
        sys.addaudithook(_step_aside)
        _hook_added = True
    _gated_thread = threading.get_ident()
    _paused = 0.0
    try:
        yield
    finally:
        _gated_thread = None
