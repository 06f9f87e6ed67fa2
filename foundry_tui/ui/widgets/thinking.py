"""A reply's "Thinking" part: the model's reasoning summary above its answer.

It streams like the answer (kept as Markdown segments; a delta re-renders only the open
one), then folds to one line, "▸ Thinking · 12 s · 340 words", once the answer's first
text arrives. A key or a click on that line unfolds it. The text is the model's:
sanitized, and rendered as Markdown, never as console markup.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.text import Text
from textual.strip import Strip

from foundry_tui.core.text import sanitize
from foundry_tui.ui.markdown_split import last_cut, split_segments

if TYPE_CHECKING:
    from foundry_tui.ui.widgets.message_block import LineRenderer

# An open segment is closed at the next safe cut past this length (as the answer's are).
STREAMING_SEGMENT_CHARS = 300
# Columns before the thinking's text: a thin rule and a space.
_RULE = "┆ "


class ThinkingPart:
    """The reasoning shown with one reply, and whether it is folded."""

    def __init__(self, text: str = "", *, folded: bool = False) -> None:
        # A saved reasoning is split when first drawn: most replies of a long
        # conversation are never scrolled to.
        self._saved = text
        self._split: list[str] | None = None
        self._segment_lines: list[list[Strip] | None] = []
        self.folded = folded
        self.streaming = False
        self.started_at: float | None = None  # time.monotonic() when thinking began
        self.seconds: float | None = None  # how long it thought, once known
        self._width = 0
        self._title: tuple[str, list[Strip]] | None = None
        self._words: tuple[tuple[int, int], int] | None = None  # (text's shape, words)

    @property
    def _segments(self) -> list[str]:
        if self._split is None:
            clean = sanitize(self._saved)
            self._split = split_segments(clean) if clean else [""]
            self._segment_lines = [None] * len(self._split)
        return self._split

    @property
    def text(self) -> str:
        return "".join(self._segments)

    @property
    def empty(self) -> bool:
        if self._split is None:
            return not self._saved.strip()
        return not any(segment.strip() for segment in self._split)

    def start(self, at: float | None = None) -> None:
        """Thinking began (before any of its text, maybe)."""
        self.streaming = True
        if self.started_at is None:
            self.started_at = time.monotonic() if at is None else at

    def append(self, text: str) -> None:
        self.streaming = True
        if self.started_at is None:
            self.started_at = time.monotonic()
        segments = self._segments
        written = len(segments[-1])
        open_segment = segments[-1] + sanitize(text)
        cut = last_cut(open_segment, not_before=written, min_length=STREAMING_SEGMENT_CHARS)
        if cut is None:
            segments[-1] = open_segment
            self._segment_lines[-1] = None
        else:
            segments[-1:] = [open_segment[:cut], open_segment[cut:]]
            self._segment_lines[-1:] = [None, None]

    def finish(self, *, fold: bool) -> None:
        """Thinking is over (the answer began, or the reply ended): its time is known."""
        if self.streaming and self.started_at is not None and self.seconds is None:
            self.seconds = time.monotonic() - self.started_at
        self.streaming = False
        if fold:
            self.folded = True
            # Rendered again if unfolded: not kept alive while the answer streams.
            self._segment_lines = [None] * len(self._segments)

    def toggle(self) -> None:
        self.folded = not self.folded

    @property
    def title(self) -> str:
        """The part's first line: "▸ Thinking · 12 s · 340 words" (▾ when unfolded)."""
        mark = "▸" if self.folded else "▾"
        if self.streaming:
            return f"{mark} Thinking…"
        facts = ["Thinking"]
        if self.seconds is not None:
            facts.append(f"{max(1, round(self.seconds))} s")
        segments = self._segments
        key = (len(segments), len(segments[-1]))  # the text only grows at its end
        if self._words is None or self._words[0] != key:
            self._words = (key, len(self.text.split()))
        words = self._words[1]
        facts.append(f"{words:,} word" + ("" if words == 1 else "s"))
        return f"{mark} {' · '.join(facts)}"

    def estimate(self, width: int) -> int:
        if self.folded:
            return 1
        text = self._saved if self._split is None else self.text
        return 2 + len(text) // max(1, width - len(_RULE)) + text.count("\n")

    def lines(self, width: int, renderer: LineRenderer) -> list[Strip]:
        """The title line, then (unfolded) the text and a blank line, ``width`` wide."""
        palette = renderer.palette
        segments = self._segments
        if width != self._width:
            self._segment_lines = [None] * len(segments)
            self._title = None
            self._width = width
        title = self.title
        if self._title is None or self._title[0] != title:
            shown = Text(title, no_wrap=True, overflow="ellipsis")
            self._title = (title, renderer.lines(shown, width, palette.thinking_title))
        lines = list(self._title[1])
        if self.folded:
            return lines
        inner = max(1, width - len(_RULE))
        rule = Segment(_RULE, palette.thinking_title)
        for index, segment in enumerate(segments):
            if not segment.strip():
                continue
            cached = self._segment_lines[index]
            if cached is None:
                body = renderer.markdown(segment, inner, palette.thinking)
                cached = self._segment_lines[index] = [Strip([rule, *line], width) for line in body]
            lines.extend(cached)
        lines.append(Strip.blank(width, palette.base))
        return lines
