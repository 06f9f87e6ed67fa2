"""Full garbage collections run when the app is idle (foundry_tui.ui.idle_gc)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from foundry_tui.ui import idle_gc
from foundry_tui.ui.app import make_app
from foundry_tui.ui.idle_gc import IdleCollector
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    chat_ready,
    last_reply_done,
    press_keys,
    wait_until,
    write_config,
)
from tests.responses_server import ResponsesServer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def collections_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Each full collection the collector runs, counted (the real one still runs)."""
    runs: list[int] = []
    real = gc.collect

    def counted(generation: int = 2) -> int:
        runs.append(generation)
        return real(generation)

    monkeypatch.setattr(idle_gc.gc, "collect", counted)
    yield runs


def test_a_due_collection_waits_for_quiet_and_for_the_streams_to_end(
    monkeypatch: pytest.MonkeyPatch, collections_run: list[int]
) -> None:
    monkeypatch.setattr(idle_gc, "DUE_AFTER", 0)
    clock, streaming = Clock(), [True]
    collector = IdleCollector(busy=lambda: streaming[0], clock=clock)
    clock.now += idle_gc.QUIET_SECONDS - 0.1
    assert not collector.tick()  # a key a moment ago
    clock.now += 0.2
    assert not collector.tick()  # quiet, but a reply streams
    streaming[0] = False
    collector.input_seen()
    clock.now += 1.0
    assert not collector.tick()  # the user typed again
    clock.now += idle_gc.QUIET_SECONDS
    assert collector.tick() and collections_run == [2]


def test_nothing_runs_before_it_is_due_or_while_the_collector_is_off(
    monkeypatch: pytest.MonkeyPatch, collections_run: list[int]
) -> None:
    clock = Clock()
    collector = IdleCollector(busy=lambda: False, clock=clock)
    clock.now += 60
    monkeypatch.setattr(idle_gc, "DUE_AFTER", 10**9)
    assert not collector.tick()
    monkeypatch.setattr(idle_gc, "DUE_AFTER", 0)
    gc.disable()
    try:
        assert not collector.tick()
    finally:
        gc.enable()
    assert collector.tick() and collections_run == [2]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponsesServer]:
    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    with ResponsesServer(api_key=TEST_KEY, tokens_per_second=100) as running:
        yield running


async def test_the_app_collects_only_once_the_reply_is_done_and_the_keys_stop(
    tmp_path: Path,
    server: ResponsesServer,
    monkeypatch: pytest.MonkeyPatch,
    collections_run: list[int],
) -> None:
    monkeypatch.setattr(idle_gc, "DUE_AFTER", 0)
    monkeypatch.setattr(idle_gc, "QUIET_SECONDS", 0.6)
    server.queue_reply("word " * 600)  # seconds at 100 tokens/s
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        await press_keys(pilot, *"hello", "enter")
        await wait_until(pilot, lambda: app.screen.streaming, what="the reply streaming")  # type: ignore[attr-defined]
        collections_run.clear()  # any run before the send
        for _ in range(6):  # the user types while it streams
            await pilot.press("x")
            await pilot.pause(0.3)
        assert app.screen.streaming  # type: ignore[attr-defined]
        assert collections_run == []
        server.tokens_per_second = None  # the rest at once
        await wait_until(pilot, lambda: last_reply_done(app), what="the reply")
        for _ in range(6):  # and goes on typing once it is done
            await pilot.press("y")
            await pilot.pause(0.3)
        assert collections_run == []
        await wait_until(pilot, lambda: collections_run != [], what="an idle collection")
