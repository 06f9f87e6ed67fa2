"""Lines drawn are freed as soon as they are dropped (foundry_tui.ui.strips).

Textual's Strip caches itself when ``divide`` or ``crop_extend`` has nothing to change:
each such line is a reference cycle, left for a full collection (110-150 ms after a
Compare). The patch must give exactly what Textual gives, without the cycle.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from foundry_tui.ui import strips
from foundry_tui.ui.app import make_app
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    chat_ready,
    last_reply_done,
    send,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer

RED = Style(color="red")


def sample_strips() -> list[Strip]:
    return [
        Strip([Segment("hello ", RED), Segment("world")], 11),
        Strip([Segment("日本語", RED), Segment(" x")], 8),
        Strip([], 0),
        Strip([Segment("a" * 40)], 40),
    ]


def shape(result: Strip | list[Strip]) -> object:
    if isinstance(result, Strip):
        return (result.text, result.cell_length, [tuple(s) for s in result])
    return [shape(part) for part in result]


def forget_garbage() -> None:
    """Frees what the collector kept: cleared from ``gc.garbage`` only, its cycles
    would be found again by the next collection."""
    gc.set_debug(0)
    gc.garbage.clear()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """What the collector finds unreachable while the test runs (kept, not freed)."""
    forget_garbage()
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()


def strips_in(garbage: list[object]) -> int:
    gc.collect()
    return sum(isinstance(item, Strip) for item in garbage)


def test_divide_and_crop_extend_give_what_textual_gives() -> None:
    cases_divide = [[11], [5, 11], [3], [11, 20], [0, 11], [8], [40], [10, 40]]
    cases_crop = [(0, 11), (0, 20), (2, 11), (-1, 8), (0, 8), (0, 0), (3, 5), (0, 40)]
    for strip in sample_strips():
        for cuts in cases_divide:
            expected = shape(strips._original_divide(Strip(list(strip), strip.cell_length), cuts))
            assert shape(strips._divide(strip, cuts)) == expected, (strip.text, cuts)
        for start, end in cases_crop:
            original = strips._original_crop_extend(
                Strip(list(strip), strip.cell_length), start, end, RED
            )
            assert shape(strips._crop_extend(strip, start, end, RED)) == shape(original)


def test_a_line_that_needs_no_change_is_not_kept_for_the_collector(
    saved_garbage: list[object],
) -> None:
    def draw(divide: object, crop_extend: object) -> None:
        line = Strip([Segment("hello ", RED), Segment("world")], 11)
        divide(line, [11])  # type: ignore[operator]
        crop_extend(line, 0, 11, None)  # type: ignore[operator]

    draw(strips._original_divide, strips._original_crop_extend)
    assert strips_in(saved_garbage) >= 1  # Textual's own: the line waits for a collection
    forget_garbage()
    draw(strips._divide, strips._crop_extend)
    assert strips_in(saved_garbage) == 0


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, tokens_per_second=4000) as running:
        yield running


async def test_a_streamed_reply_leaves_no_drawn_line_for_the_collector(
    tmp_path: Path, server: ResponsesServer, saved_garbage: list[object]
) -> None:
    reply = "\n\n".join(f"Paragraph {n}: " + "words and more words " * 12 for n in range(60))
    server.queue_reply(reply)
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        forget_garbage()
        await send(pilot, app, "a long one")
        await wait_until(pilot, lambda: last_reply_done(app), what="the reply", timeout=30)
        await pilot.pause(0.2)
        # Without the patch: several hundred (each line of each frame drawn).
        assert strips_in(saved_garbage) < 20
