"""Where a Markdown text can be cut into independent pieces without changing how it reads.

A long reply is shown as several Markdown widgets ("segments") so that appending to it
re-parses and re-lays out only the last few thousand characters, never the whole reply.
A cut is safe at the start of a line that follows a blank line, outside a fenced code
block, when that line is not indented (an indented line there would continue a list item
or start an indented code block, and would read differently on its own).
"""

from __future__ import annotations

# A segment grows to about this many characters before it is closed at the next safe cut.
SEGMENT_CHARS = 3000

_FENCES = ("```", "~~~")


def safe_cuts(text: str) -> list[int]:
    """Offsets in ``text`` where a new, independent Markdown segment may begin."""
    cuts: list[int] = []
    in_fence: str | None = None
    previous_blank = False
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        complete = line.endswith("\n")
        if (
            in_fence is None
            and previous_blank
            and stripped
            and not line[0].isspace()
            and offset > 0
        ):
            cuts.append(offset)
        marker = stripped[:3]
        if marker in _FENCES and complete:
            if in_fence is None:
                in_fence = marker
            elif marker == in_fence and stripped.rstrip("`~") == "":
                in_fence = None
        previous_blank = complete and not stripped
        offset += len(line)
    return cuts


def last_cut(text: str, *, not_before: int, min_length: int = SEGMENT_CHARS) -> int | None:
    """The last safe cut at or after ``not_before`` once ``text`` is ``min_length`` long."""
    if len(text) < min_length:
        return None
    candidates = [cut for cut in safe_cuts(text) if cut >= max(not_before, 1)]
    return candidates[-1] if candidates else None


def split_segments(text: str, limit: int = SEGMENT_CHARS) -> list[str]:
    """Splits a finished text into segments of roughly ``limit`` characters."""
    segments: list[str] = []
    start = 0
    for cut in safe_cuts(text):
        if cut - start >= limit:
            segments.append(text[start:cut])
            start = cut
    segments.append(text[start:])
    return segments


def open_fence(text: str) -> tuple[int, int] | None:
    """The span of the line that opens a fenced code block still open at the end of
    ``text`` (from the line's start to its end, without the newline); None if none is."""
    in_fence: str | None = None
    opened = (0, 0)
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        marker = stripped[:3]
        if marker in _FENCES and line.endswith("\n"):
            if in_fence is None:
                in_fence = marker
                opened = (offset, offset + len(line.rstrip("\r\n")))
            elif marker == in_fence and stripped.rstrip("`~") == "":
                in_fence = None
        elif marker in _FENCES and in_fence is None:  # the opening line still coming
            return None
        offset += len(line)
    return opened if in_fence is not None else None


def with_plain_open_fence(text: str) -> str:
    """``text`` with the info string of its still open fence replaced by ``text``: while
    a reply streams, its open code block is drawn without syntax colours (highlighting a
    40-line block costs ~7 ms of each frame's ~10); once the block is closed it is drawn
    in colour. Unchanged when no fence is open or the open one names no language."""
    span = open_fence(text)
    if span is None:
        return text
    start, end = span
    line = text[start:end]
    indent = line[: len(line) - len(line.lstrip())]
    body = line.lstrip()
    run = body[: len(body) - len(body.lstrip(body[0]))]
    if not body[len(run) :].strip() or body[len(run) :].strip() == "text":
        return text
    return f"{text[:start]}{indent}{run}text{text[end:]}"
