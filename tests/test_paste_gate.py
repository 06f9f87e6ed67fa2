"""The warm-up's imports step aside while a paste is read (foundry_tui/ui/paste_gate.py):
the thread that imports the client library after the first frame waits at its next module
import until the paste's end has been read, and only that thread waits."""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from foundry_tui.ui import paste_gate
from foundry_tui.ui.paste_gate import imports_yield_to_pastes, paste_ended, paste_started
from foundry_tui.ui.terminal import PasteParser
from tests.pty_terminal import PASTE_END, PASTE_START

_counter = iter(range(1_000_000))


@pytest.fixture
def fresh_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of a module no one has imported yet (its file in a temp dir on the path)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def make() -> str:
        name = f"gate_probe_{next(_counter)}"
        (tmp_path / f"{name}.py").write_text("VALUE = 1\n", encoding="utf-8")
        names.append(name)
        return name

    importlib.invalidate_caches()
    yield make  # type: ignore[misc]
    for name in names:
        sys.modules.pop(name, None)
    paste_ended()


def import_in_thread(name: str, *, gated: bool) -> threading.Thread:
    # __import__ is what an import statement runs (importlib.import_module raises no
    # "import" audit event, and the app's imports are statements).
    def run() -> None:
        if gated:
            with imports_yield_to_pastes():
                __import__(name)
        else:
            __import__(name)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_warm_up_thread_waits_for_the_paste_to_end(fresh_module) -> None:  # type: ignore[no-untyped-def]
    name = fresh_module()
    paste_started()
    thread = import_in_thread(name, gated=True)
    thread.join(0.3)
    assert thread.is_alive() and name not in sys.modules  # held while the paste is read
    paste_ended()
    thread.join(5)
    assert not thread.is_alive() and name in sys.modules


def test_other_threads_import_during_a_paste(
    fresh_module,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(paste_gate, "LONGEST_PAUSE", 60.0)
    held = fresh_module()
    free = fresh_module()
    paste_started()
    warm_up = import_in_thread(held, gated=True)  # its gate is on sys.meta_path meanwhile
    other = import_in_thread(free, gated=False)
    other.join(5)
    assert not other.is_alive() and free in sys.modules
    assert warm_up.is_alive()
    paste_ended()
    warm_up.join(5)
    assert not warm_up.is_alive()


def test_a_paste_that_never_ends_holds_the_warm_up_for_a_bounded_time(
    fresh_module,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(paste_gate, "LONGEST_PAUSE", 0.2)
    first, second = fresh_module(), fresh_module()
    paste_started()

    def run() -> None:
        with imports_yield_to_pastes():
            __import__(first)
            __import__(second)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)  # 0.2 s in all, not 0.2 s per import
    assert not thread.is_alive() and first in sys.modules and second in sys.modules


def test_after_the_warm_up_no_thread_waits(fresh_module) -> None:  # type: ignore[no-untyped-def]
    with imports_yield_to_pastes():
        pass
    name = fresh_module()
    paste_started()
    thread = import_in_thread(name, gated=False)
    thread.join(5)
    assert not thread.is_alive() and name in sys.modules


def test_the_input_parser_marks_a_pastes_start_and_end() -> None:
    parser = PasteParser()
    list(parser.feed("a" + PASTE_START.decode() + "some text"))
    assert not paste_gate._not_pasting.is_set()
    list(parser.feed(" more" + PASTE_END.decode() + "b"))
    assert paste_gate._not_pasting.is_set()
    list(parser.feed(PASTE_START.decode() + "cut short"))
    assert not paste_gate._not_pasting.is_set()
    list(parser.feed(""))  # the terminal closed mid-paste
    assert paste_gate._not_pasting.is_set()
