"""The status line under the transcript: last reply's status, usage, and send mode."""

from __future__ import annotations

import math
import time

from textual.content import Content
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Static

from foundry_tui.models import MessageStatus, Usage
from foundry_tui.text import one_line


def _tokens(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


class StatusLine(Static):
    """Attributes down: the screen sets these reactives, the line redraws itself."""

    last_status: reactive[MessageStatus | None] = reactive(None)
    last_usage: reactive[Usage | None] = reactive(None)
    conversation_usage: reactive[Usage | None] = reactive(None)
    mode: reactive[str] = reactive("")
    notice: reactive[str] = reactive("")
    # A request being retried or kept waiting: counted here, on the UI's clock.
    waiting: reactive[str] = reactive("")
    _retry: tuple[str, float, int, int] | None = None  # reason, when, attempt, attempts
    _waiting_since: float | None = None
    _ticker: Timer | None = None

    def show_retry(self, reason: str, seconds: float, attempt: int, attempts: int) -> None:
        """Counts down to the next attempt: "rate limited · retrying in 7 s (2 of 3)"."""
        self._retry = (reason, time.monotonic() + seconds, attempt, attempts)
        self._waiting_since = None
        self._tick()

    def show_waiting(self, seconds: float) -> None:
        """Counts up while the server holds the request: "waiting for the server · 25 s"."""
        self._retry = None
        self._waiting_since = time.monotonic() - seconds
        self._tick()

    def clear_wait(self) -> None:
        self._retry = None
        self._waiting_since = None
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self.waiting = ""

    def _tick(self) -> None:
        now = time.monotonic()
        if self._retry is not None:
            reason, when, attempt, attempts = self._retry
            left = math.ceil(when - now)
            retry = f"retrying in {left} s" if left > 0 else "retrying now"
            self.waiting = f"{reason} · {retry} ({attempt} of {attempts})"
        elif self._waiting_since is not None:
            self.waiting = f"waiting for the server · {int(now - self._waiting_since)} s"
        if self._ticker is None:
            self._ticker = self.set_interval(0.25, self._tick)

    def validate_notice(self, notice: str) -> str:
        """A notice may quote a server (an error's title): one inert line."""
        return one_line(notice, 300)

    def render(self) -> Content:
        parts: list[str] = []
        if self.last_status is not None:
            parts.append(f"● {self.last_status.value}")
        if self.waiting:
            parts.append(self.waiting)
        if self.mode:
            parts.append(self.mode)
        if self.last_usage is not None:
            usage = self.last_usage
            parts.append(
                f"in {_tokens(usage.input_tokens)} / out {_tokens(usage.output_tokens)}"
                f" / total {_tokens(usage.total_tokens)}"
            )
        if self.conversation_usage is not None and self.conversation_usage.total_tokens:
            parts.append(f"conversation {_tokens(self.conversation_usage.total_tokens)} tokens")
        if self.notice:
            parts.append(self.notice)
        return Content(" · ".join(parts) if parts else "Ready")
