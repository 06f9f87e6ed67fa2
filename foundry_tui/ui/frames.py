"""When the screen draws its next frame: paced from the last one, and at once for input.

Textual draws a screen's changes on a timer that ticks on a fixed grid (TEXTUAL_FPS a
second; the CLI sets 120). A key that arrives just after a frame waits for the grid's next
tick; and after a frame that overran its slot, the timer skips to the tick after next.
While a reply streams, a character typed just after one of its frames waited 13-16 ms
for the frame that showed it, with the UI loop idle (traced).

``FramePacer`` replaces that timer on every screen:

* a frame is drawn at most once per interval, counted from the start of the last frame
  (not from a grid, so nothing is skipped after a long frame);
* after a key or a paste, the first frame in which the focused widget has changed is
  drawn at once: typing shows at the speed of one frame's drawing, and a stream never
  gets more than one extra frame per key;
* a frame that is due waits a little (INPUT_GRACE) for a key that has arrived but is not
  yet in its widget, so that the key is not held back behind a frame without it.

Applied once, when the app starts (``pace_frames``).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Any

from textual.screen import UPDATE_PERIOD, Screen
from textual.timer import Timer

if TYPE_CHECKING:
    from textual.widget import Widget

__all__ = [
    "INPUT_GRACE",
    "FramePacer",
    "frame_delay",
    "input_arrived",
    "pace_frames",
]

# A frame that is due waits this long at most for a key that arrived and is not yet in its
# widget: drawn first, the frame (10-15 ms while a reply streams) would hold the key back.
INPUT_GRACE = 0.010


class _Input:
    """Input as the frames see it (one app per process)."""

    waiting = False  # arrived, and no frame has shown it yet
    last = -math.inf  # when the last key or paste arrived (time.monotonic)


def input_arrived() -> None:
    """A key or a paste came in: its effect is drawn without waiting for the pace."""
    _Input.waiting = True
    _Input.last = time.monotonic()


def frame_delay(
    now: float,
    last_frame: float,
    interval: float,
    *,
    input_shows: bool,
    input_in_flight_since: float | None = None,
) -> float:
    """How long a frame wanted at ``now`` waits: none for input to show; else what is
    left of the interval since the last frame started, and at least until a key on its
    way to its widget (``input_in_flight_since``) has had INPUT_GRACE to get there, so
    that one frame shows both."""
    if input_shows:
        return 0.0
    delay = max(0.0, last_frame + interval - now)
    if input_in_flight_since is not None:
        delay = max(delay, input_in_flight_since + INPUT_GRACE - now)
    return delay


class FramePacer(Timer):
    """The screen's update timer: ``resume`` asks for a frame, ``pause`` withdraws it.

    Textual's own timer keeps its interface (pause, resume, stop and its task), so the
    screen and the app start, pause and stop this one as they do theirs.
    """

    def __init__(self, screen: Screen[Any], interval: float, callback: Any) -> None:
        super().__init__(screen, interval, name="screen_update", callback=callback, pause=True)
        self._screen = screen
        self._last_frame = -math.inf
        self._wake: asyncio.Future[None] | None = None

    @property
    def last_frame(self) -> float:
        """When the last frame drawn by this timer started (``time.monotonic``)."""
        return self._last_frame

    def resume(self) -> None:
        super().resume()
        if self._wake is not None and not self._wake.done() and self._input_shows():
            self._wake.set_result(None)

    def _input_shows(self) -> bool:
        """Whether the next frame shows input not yet drawn: the focused widget changed."""
        if not _Input.waiting:
            return False
        focused: Widget | None = self._screen.focused
        return focused is not None and focused in self._screen._dirty_widgets

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        count = 0
        while True:
            await self._active.wait()
            now = time.monotonic()
            shows = self._input_shows()
            delay = frame_delay(
                now,
                self._last_frame,
                self._interval,
                input_shows=shows,
                input_in_flight_since=_Input.last if _Input.waiting else None,
            )
            if delay > 0:
                self._wake = loop.create_future()
                timer = loop.call_later(delay, _wake_up, self._wake)
                try:
                    await self._wake
                finally:
                    timer.cancel()
                    self._wake = None
                continue  # paused meanwhile, or input to show: look again
            if shows:
                _Input.waiting = False
            self._last_frame = now
            count += 1
            await self._tick(next_timer=now, count=count)


def _wake_up(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _paced_update_timer(screen: Screen[Any]) -> Timer:
    timer: Timer | None = screen._Screen__update_timer  # type: ignore[attr-defined]
    if timer is None:
        timer = FramePacer(screen, UPDATE_PERIOD, screen._on_timer_update)
        timer._start()
        screen._timers.add(timer)
        screen._Screen__update_timer = timer  # type: ignore[attr-defined]
    return timer


# Textual's own, kept for the tests that check the app puts the pacer in its place.
TEXTUAL_UPDATE_TIMER = Screen.__dict__["_update_timer"]


def pace_frames() -> None:
    """Gives every screen a ``FramePacer`` for its update timer (idempotent)."""
    Screen._update_timer = property(_paced_update_timer)  # type: ignore[assignment,method-assign]
