"""When the screen draws (foundry_tui.ui.frames).

A frame is drawn at most once per interval, counted from the last frame; after a key or a
paste, the first frame that shows it in the focused widget is drawn at once. The Pilot
tests give the pace a 30 s interval, so that "at once" and "waits" cannot be confused by
a slow machine: a frame that waits never comes within the test.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual import events
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, Static

from foundry_tui.ui import frames
from foundry_tui.ui.app import make_app
from foundry_tui.ui.frames import FramePacer, frame_delay, pace_frames
from foundry_tui.ui.widgets.prompt import PromptInput
from tests.helpers import chat_ready, press_keys, wait_until, write_config
from tests.responses_server import ResponsesServer

LONG_PACE = 30.0


def test_a_frame_waits_for_what_is_left_of_the_interval() -> None:
    assert frame_delay(10.0, 9.99, 0.05, input_shows=False) == pytest.approx(0.04)


def test_a_frame_after_the_interval_is_drawn_at_once() -> None:
    assert frame_delay(10.0, 9.0, 0.05, input_shows=False) == 0.0
    assert frame_delay(10.0, -math.inf, 0.05, input_shows=False) == 0.0


def test_a_frame_that_shows_input_never_waits() -> None:
    assert frame_delay(10.0, 9.999, 0.05, input_shows=True) == 0.0


def test_a_due_frame_waits_a_little_for_a_key_on_its_way_to_its_widget() -> None:
    arrived = 9.998  # 2 ms ago, not yet in the prompt
    assert frame_delay(10.0, 9.0, 0.05, input_shows=False, input_in_flight_since=arrived) == (
        pytest.approx(arrived + frames.INPUT_GRACE - 10.0)
    )
    # Never longer than the grace: a key that changes nothing focused holds nothing back.
    long_ago = 10.0 - 2 * frames.INPUT_GRACE
    assert frame_delay(10.0, 9.0, 0.05, input_shows=False, input_in_flight_since=long_ago) == 0
    # Nor shorter than the pace.
    assert frame_delay(10.0, 9.99, 0.05, input_shows=False, input_in_flight_since=arrived) == (
        pytest.approx(0.04)
    )


@pytest.fixture
def long_pace(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every screen paced by a FramePacer with a 30 s interval, for this test only."""
    original = Screen._update_timer
    monkeypatch.setattr(frames, "UPDATE_PERIOD", LONG_PACE)
    monkeypatch.setattr(frames._Input, "waiting", False)
    pace_frames()
    yield
    Screen._update_timer = original  # type: ignore[method-assign]


class TypingApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Input(id="field")
        yield Static("0", id="ticker")

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.Paste)):
            frames.input_arrived()
        await super().on_event(event)


def pacer_of(app: App[None]) -> FramePacer:
    timer = app.screen._update_timer
    assert isinstance(timer, FramePacer)
    return timer


async def first_paced_frame(app: App[None], pilot: Pilot[None]) -> float:
    """Has the pacer draw its first frame (it never waits for one) and returns its time."""
    pacer = pacer_of(app)
    app.query_one("#ticker", Static).update("1")
    await wait_until(pilot, lambda: pacer.last_frame > -math.inf, what="a first frame")
    return pacer.last_frame


async def no_frame_since(app: App[None], pilot: Pilot[None], frame: float) -> None:
    """Asserts that no frame comes for a while (the pace is 30 s)."""
    await pilot.pause(0.3)
    assert pacer_of(app).last_frame == frame


async def a_frame_since(app: App[None], pilot: Pilot[None], frame: float) -> float:
    """Waits for a frame after ``frame`` (it comes at once or never) and returns its time."""
    pacer = pacer_of(app)
    await wait_until(pilot, lambda: pacer.last_frame > frame, what="a frame at once")
    return pacer.last_frame


@pytest.mark.usefixtures("long_pace")
async def test_a_change_not_from_input_waits_for_the_pace() -> None:
    app = TypingApp()
    async with app.run_test() as pilot:
        first = await first_paced_frame(app, pilot)
        app.query_one("#ticker", Static).update("2")
        await no_frame_since(app, pilot, first)


@pytest.mark.usefixtures("long_pace")
async def test_a_key_typed_is_drawn_at_once_and_only_that_frame_skips_the_pace() -> None:
    app = TypingApp()
    async with app.run_test() as pilot:
        first = await first_paced_frame(app, pilot)
        await pilot.press("x")
        shown = await a_frame_since(app, pilot, first)
        assert app.query_one("#field", Input).value == "x"
        # What follows goes back to the pace: a stream's change, and the focused field
        # changed by the app rather than by a key.
        app.query_one("#ticker", Static).update("3")
        app.query_one("#field", Input).value = "set by the app"
        await no_frame_since(app, pilot, shown)


@pytest.mark.usefixtures("long_pace")
async def test_a_key_that_changes_nothing_focused_waits_for_the_pace() -> None:
    app = TypingApp()
    async with app.run_test() as pilot:
        first = await first_paced_frame(app, pilot)
        await pilot.press("f9")  # bound to nothing: the field does not change
        app.query_one("#ticker", Static).update("4")
        await no_frame_since(app, pilot, first)


@pytest.mark.usefixtures("long_pace")
async def test_a_paste_is_drawn_at_once() -> None:
    app = TypingApp()
    async with app.run_test() as pilot:
        first = await first_paced_frame(app, pilot)
        app.post_message(events.Paste("pasted"))
        await a_frame_since(app, pilot, first)
        assert app.query_one("#field", Input).value == "pasted"


@pytest.mark.usefixtures("long_pace")
async def test_while_a_reply_streams_each_key_typed_is_drawn_at_once(
    tmp_path: Path, server: ResponsesServer
) -> None:
    """The chat itself: the reply's frames wait for the (long) pace, the keys do not."""
    server.tokens_per_second = 200
    server.queue_reply("word " * 2000)
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        await press_keys(pilot, *"hello", "enter")
        await wait_until(pilot, lambda: app.screen.streaming, what="the reply streaming")  # type: ignore[attr-defined]
        pacer = pacer_of(app)
        prompt = app.screen.query_one(PromptInput)
        for typed in ("a", "ab", "abc"):
            before = pacer.last_frame
            await pilot.press(typed[-1])
            await wait_until(pilot, lambda b=before: pacer.last_frame > b, what=f"{typed!r} drawn")
            assert prompt.text == typed
        assert app.screen.streaming  # type: ignore[attr-defined]
        await pilot.press("escape")


async def test_the_app_paces_its_screens(
    tmp_path: Path, server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Screen, "_update_timer", frames.TEXTUAL_UPDATE_TIMER)
    app = make_app(write_config(tmp_path, server.base_url))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: chat_ready(app), what="chat")
        assert isinstance(app.screen._update_timer, FramePacer)
