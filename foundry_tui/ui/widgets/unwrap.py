"""Copying a selection as the text was written, not as the view wrapped it.

The transcript shows a message wrapped to the view's width. To copy part of it, each
wrapped line is found in the same message rendered wide enough not to wrap: a selection
over several wrapped lines of one paragraph then copies as that paragraph's one line,
and the indentation the view adds (the frame, a code block's margin) is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Characters the rendering puts before a wrapped line of a quote (Rich's "▌ " bar).
_DECORATION = "▌│┃ "
# Wide lines searched past the current one for the next wrapped line (blank lines, the
# rendering's padding); a line not found there is copied as it is shown.
_LOOKAHEAD = 3


@dataclass(frozen=True)
class Place:
    """Where a wrapped line's text is in the wide rendering."""

    line: int  # index of the wide line
    column: int  # where the wrapped line's text starts in it
    lead: int  # columns of the wrapped line before its text
    length: int  # the text's length


def locate(wrapped: Sequence[str], wide: Sequence[str]) -> list[Place | None]:
    """Each wrapped line's place in the wide lines (None: blank, or not found)."""
    places: list[Place | None] = []
    line, column = 0, 0
    for shown in wrapped:
        text = shown.strip()
        place = None
        if text:
            lead = len(shown) - len(shown.lstrip())
            place = _find(text, lead, wide, line, column)
            if place is None:
                bare = text.lstrip(_DECORATION)
                if bare and bare != text:
                    place = _find(bare, lead + len(text) - len(bare), wide, line, column)
        if place is not None:
            line, column = place.line, place.column + place.length
        places.append(place)
    return places


def _find(text: str, lead: int, wide: Sequence[str], line: int, column: int) -> Place | None:
    non_blank = 0
    for index in range(line, len(wide)):
        found = wide[index].find(text, column if index == line else 0)
        if found >= 0:
            return Place(index, found, lead, len(text))
        if index > line and wide[index].strip():
            non_blank += 1
            if non_blank >= _LOOKAHEAD:
                break
    return None


def block_indents(wide: Sequence[str]) -> list[int]:
    """For each wide line, the indentation common to its block (the lines between blank
    lines): what the rendering added, such as a code block's margin. What is indented
    beyond it (code, nested items) was written so and is copied."""
    indents = [0] * len(wide)
    start = 0
    for end in range(len(wide) + 1):
        if end < len(wide) and wide[end].strip():
            continue
        block = range(start, end)
        common = min((len(wide[i]) - len(wide[i].lstrip()) for i in block), default=0)
        for i in block:
            indents[i] = common
        start = end + 1
    return indents


class Copied:
    """Collects the selected parts of lines, joining those of one written line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._open: tuple[int, Sequence[str], int, int, int] | None = None

    def add_shown(self, text: str) -> None:
        """A line copied as it is shown (a header, a line not found)."""
        self._close()
        self.lines.append(text.rstrip())

    def add_placed(
        self,
        key: int,
        wide: Sequence[str],
        place: Place,
        start: int,
        end: int | None,
        indent: int,
    ) -> None:
        """Columns ``start``..``end`` of a wrapped line whose text is at ``place``;
        ``key`` tells one wide rendering from another."""
        text = wide[place.line]
        first = place.column + max(0, start - place.lead)
        if start <= place.lead and not text[: place.column].strip():
            first = min(indent, place.column)  # from the start: the written indentation too
        last = place.column + place.length
        if end is not None:
            last = min(last, place.column + max(0, end - place.lead))
        last = max(first, last)
        if self._open is not None:
            open_key, open_wide, line, open_first, _ = self._open
            if open_key == key and open_wide is wide and line == place.line:
                self._open = (key, wide, line, open_first, last)
                return
        self._close()
        self._open = (key, wide, place.line, first, last)

    def _close(self) -> None:
        if self._open is not None:
            _key, wide, line, first, last = self._open
            self.lines.append(wide[line][first:last].rstrip())
            self._open = None

    def text(self) -> str:
        self._close()
        return "\n".join(self.lines)
