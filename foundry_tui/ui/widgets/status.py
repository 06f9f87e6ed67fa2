"""The status line under the transcript: last reply's status, usage, and send mode.

It is one line, and a narrow terminal has room for part of it: words go before figures
(the send mode's words, "conversation", "cached", "reasoning", "TTFT"), and a figure is
shown whole or not at all, never cut. The whole text is always the line's tooltip.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from rich.cells import cell_len
from textual.content import Content
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Static

from foundry_tui.core.models import Message, MessageStatus, Usage
from foundry_tui.core.text import one_line

if TYPE_CHECKING:
    from foundry_tui.core.usage import Speed

SEPARATOR = " · "
ELLIPSIS = "…"


def _tokens(value: int | None) -> str:
    # Imported once a reply has figures: not before the first frame.
    from foundry_tui.core.usage import compact_count

    return "?" if value is None else compact_count(value)


def _seconds(ms: int) -> str:
    return f"{ms} ms" if ms < 100 else f"{ms / 1000:.1f} s"


def _speed(speed: Speed) -> str:
    rate = speed.tokens_per_second
    figure = f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}"
    return f"{'~' if speed.estimated else ''}{figure} tok/s"


class StatusLine(Static):
    """Attributes down: the screen sets these reactives, the line redraws itself."""

    last_status: reactive[MessageStatus | None] = reactive(None)
    last_usage: reactive[Usage | None] = reactive(None)
    conversation_usage: reactive[Usage | None] = reactive(None)
    # The last reply's time to first token (ms) and speed; set with `show_timing`.
    last_first_token_ms: reactive[int | None] = reactive(None)
    last_speed: reactive[Speed | None] = reactive(None)
    mode: reactive[str] = reactive("")
    # What the mode says in a word or two, shown when the line is too narrow for `mode`.
    mode_short: reactive[str] = reactive("")
    notice: reactive[str] = reactive("")
    # A request being retried or kept waiting: counted here, on the UI's clock.
    waiting: reactive[str] = reactive("")
    _retry: tuple[str, float, int, int] | None = None  # reason, when, attempt, attempts
    _waiting_since: float | None = None
    _thinking_since: float | None = None
    _ticker: Timer | None = None

    def show_timing(self, reply: Message | None) -> None:
        """The reply's time to first token and speed (none while a reply streams)."""
        from foundry_tui.core.usage import speed_of

        self.last_first_token_ms = reply.first_token_ms if reply is not None else None
        self.last_speed = speed_of(reply) if reply is not None else None

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

    def show_thinking(self) -> None:
        """Counts up while the model reasons with nothing to show: "thinking… 12 s"."""
        self._retry = None
        self._waiting_since = None
        if self._thinking_since is None:
            self._thinking_since = time.monotonic()
        self._tick()

    def clear_wait(self) -> None:
        self._retry = None
        self._waiting_since = None
        self._thinking_since = None
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
        elif self._thinking_since is not None:
            self.waiting = f"thinking… {int(now - self._thinking_since)} s"
        if self._ticker is None:
            self._ticker = self.set_interval(0.25, self._tick)

    def validate_notice(self, notice: str) -> str:
        """A notice may quote a server (an error's title): one inert line."""
        return one_line(notice, 300)

    @property
    def full_text(self) -> str:
        """Everything the line has to say, however narrow it is."""
        return _fit(self._parts(), None)

    @property
    def text(self) -> str:
        """The line as drawn at its current width."""
        return _fit(self._parts(), self.content_size.width or None)

    def render(self) -> Content:
        # Every reactive above repaints the line, so the tooltip follows here, in one place
        # (setting it only tells a tooltip on screen to show the new text).
        full = self.full_text
        tooltip = full if full != "Ready" else None
        if self.tooltip != tooltip:
            self.tooltip = tooltip
        return Content(self.text)

    def _parts(self) -> _Parts:
        parts = _Parts()
        if self.last_status is not None:
            parts.status = f"● {self.last_status.value}"
        parts.waiting = self.waiting
        parts.mode = self.mode
        parts.mode_short = self.mode_short or self.mode
        if self.last_usage is not None:
            parts.usage = self.last_usage
        parts.first_token_ms = self.last_first_token_ms
        parts.speed = self.last_speed
        if self.conversation_usage is not None and self.conversation_usage.total_tokens:
            parts.conversation = self.conversation_usage.total_tokens
        parts.notice = self.notice
        return parts


class _Parts:
    """The line's parts, each as long or as short as the width allows."""

    def __init__(self) -> None:
        self.status = ""
        # A retry's countdown or a long wait: its figures are never dropped.
        self.waiting = ""
        self.mode = ""
        self.mode_short = ""
        self.usage: Usage | None = None
        self.usage_compact = False
        self.first_token_ms: int | None = None
        self.speed: Speed | None = None
        self.conversation: int | None = None
        self.conversation_compact = False
        self.notice = ""

    def text(self) -> str:
        parts = [self.status, self.waiting, self.mode]
        if self.usage is not None:
            parts += self._usage(self.usage)
        if self.first_token_ms is not None:
            ttft = _seconds(self.first_token_ms)
            parts.append(ttft if self.usage_compact else f"TTFT {ttft}")
        if self.speed is not None:
            parts.append(_speed(self.speed))
        if self.conversation is not None:
            figure = _tokens(self.conversation)
            parts.append(
                f"all {figure}" if self.conversation_compact else f"conversation {figure} tokens"
            )
        parts.append(self.notice)
        return SEPARATOR.join(part for part in parts if part) or "Ready"

    def _usage(self, usage: Usage) -> list[str]:
        """The counts in and out: "1.2k in (80% cached)", "340 out (120 reasoning)"; when
        compact, one part without the words: "1.2k (80%)+340 (120)". None for a reply
        without counts."""
        given, made = usage.input_tokens, usage.output_tokens
        if given is None and made is None:
            return []
        compact = self.usage_compact
        tokens_in, tokens_out = _tokens(given), _tokens(made)
        cached, reasoning = usage.cached_input_tokens, usage.reasoning_tokens
        if cached and given:
            share = f"{min(100, round(100 * cached / given))}%"
            tokens_in += f" ({share})" if compact else f" in ({share} cached)"
        elif not compact:
            tokens_in += " in"
        if reasoning:
            figure = _tokens(reasoning)
            tokens_out += f" ({figure})" if compact else f" out ({figure} reasoning)"
        elif not compact:
            tokens_out += " out"
        return [f"{tokens_in}+{tokens_out}"] if compact else [tokens_in, tokens_out]


def _fit(parts: _Parts, width: int | None) -> str:
    """``parts`` as text no wider than ``width``: words go first (the mode's; the
    timing, before the notice's words from its end), then whole figures, the least
    useful first; a figure is never cut."""
    text = parts.text()
    if width is None or cell_len(text) <= width:
        return text

    def short_mode() -> None:
        parts.mode = parts.mode_short

    def compact_conversation() -> None:
        parts.conversation_compact = True

    def compact_usage() -> None:
        parts.usage_compact = True

    def no_mode() -> None:
        parts.mode = ""

    for step in (short_mode, compact_conversation, compact_usage, no_mode):
        step()
        text = parts.text()
        if cell_len(text) <= width:
            return text

    def no_conversation() -> None:
        parts.conversation = None

    def no_speed() -> None:
        parts.first_token_ms = None
        parts.speed = None

    def no_usage() -> None:
        parts.usage = None

    # A notice says what just happened: the turn's timing goes before its words do.
    if parts.notice:
        no_speed()
        text = parts.text()
        if cell_len(text) <= width:
            return text
    notice = parts.notice
    for step in (lambda: None, no_conversation, no_speed, no_usage):
        step()
        fitted = _cut_notice(parts, notice, width)
        if fitted is not None:
            return fitted
    parts.notice = ""
    return parts.text()


def _cut_notice(parts: _Parts, notice: str, width: int) -> str | None:
    """The line with as many of the notice's first words as fit (a cut word could be a
    cut figure), or None when not even the first one does."""
    words = notice.split(" ")
    for keep in range(len(words), 0, -1):
        parts.notice = notice if keep == len(words) else " ".join(words[:keep]) + ELLIPSIS
        text = parts.text()
        if cell_len(text) <= width:
            return text
    return None
