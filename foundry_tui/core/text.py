"""Making untrusted text safe to show in a terminal: the one path for every such string.

Model output, model ids from ``/models``, conversation titles, error messages, paths from the
config or the environment, pastes: anything the app did not write itself is passed through
`sanitize` (text of several lines) or `one_line` (a label) before it is shown. Both leave only
printable characters, newlines and tabs: no escape sequence (a clipboard write with OSC 52, a
title change with OSC 0/2, a link with OSC 8, ``ESC [ 2 J`` blanking the screen), no C0 or C1
control, no DEL, no NUL, no bidi control that makes text read differently from what it is, no
lone surrogate (which the terminal's UTF-8 encoder would refuse). Markup is a separate matter:
the widgets show the result as markup-free ``Content`` (widgets/plain.py).
"""

from __future__ import annotations

import re

# Whole escape sequences, removed as a unit so that a pasted coloured log line reads as the
# text the terminal showed ("ERROR disk full", not "[31mERROR[0m disk full"):
# CSI (colours, cursor moves, erasing), then the string commands OSC/DCS/SOS/PM/APC with
# their terminator (titles, clipboard, links), then any other ESC sequence of two or more
# bytes. An unterminated string command keeps its body as text; only its introducer goes.
# The bodies exclude ESC, BEL and C1, so no scan runs past the next introducer: linear time.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]P^_X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x80-\x9f]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]"
)
_INTRODUCER = re.compile("[\x1b\x90\x98\x9b\x9d\x9e\x9f]")
# What is left of controls after that: C0 except tab and newline, DEL, C1, the Unicode
# bidi controls (Bidi_Control: ALM, LRM, RLM, the embeddings, overrides and isolates).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Lone surrogates (a JSON "\\ud800") cannot be encoded for the terminal: shown as U+FFFD.
_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE_BREAK = re.compile("\r\n?|[\u2028\u2029]")
# Anything any of the above would change: text without it is returned as it is, after one
# scan (a 5 MB paste: 30 ms, not three or four scans).
_ANYTHING = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\u2028\u2029\ud800-\udfff]"
)
# Printable ASCII, tab and newline: an ASCII text made only of these is clean. Checked by
# deleting them from its bytes, at memory speed (a 5 MB paste of log lines: 3 ms).
_CLEAN_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n"

ELLIPSIS = "…"


def sanitize(text: str, limit: int | None = None) -> str:
    """``text`` with escape sequences, controls and bidi controls removed; newlines and tabs
    kept (CR LF, CR and the Unicode line separators become newlines). With ``limit``, the
    result is cut to that many characters, the last being an ellipsis."""
    if not _is_clean(text):
        if "\r" in text or "\u2028" in text or "\u2029" in text:
            text = _LINE_BREAK.sub("\n", text)
        if _INTRODUCER.search(text):
            text = _SEQUENCE.sub("", text)
        text = _UNSAFE.sub("", text)
        if _SURROGATE.search(text):
            text = _SURROGATE.sub("\ufffd", text)
    return shorten(text, limit)


def _is_clean(text: str) -> bool:
    if text.isprintable():
        return True
    if text.isascii():
        return not text.encode("ascii").translate(None, _CLEAN_ASCII)
    return _ANYTHING.search(text) is None


def one_line(text: str, limit: int | None = 60) -> str:
    """``text`` sanitized, its whitespace (newlines, tabs) collapsed to single spaces and
    shortened to ``limit`` characters with an ellipsis: for labels, titles and list entries."""
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        flat = text  # already one clean line, as most are (100,000 model ids: 30 ms)
    else:
        flat = " ".join(sanitize(text).split())
    return flat if limit is None or len(flat) <= limit else shorten(flat, limit)


def shorten(text: str, limit: int | None) -> str:
    """``text`` cut to ``limit`` characters, the last being an ellipsis (None: not cut)."""
    if limit is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


_CSI_OPENER = re.compile("\x1b\\[|\x9b")
_CSI = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]")
_STRING_OPENER = re.compile("\x1b[\\]P^_X]|[\x90\x98\x9d\x9e\x9f]")
_STRING = re.compile(
    r"(?:\x1b[\]P^_X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x80-\x9f]*(?:\x07|\x1b\\|\x9c)"
)


def _sequence_end(text: str, start: int) -> int | None:
    """Where the sequence at ``start`` ends, or None while it may go on in the next piece:
    a control sequence without its final byte, a string command (a title, a link) without
    its terminator, or an ESC with nothing after it yet."""
    if _CSI_OPENER.match(text, start):
        found = _CSI.match(text, start)
    elif _STRING_OPENER.match(text, start):
        found = _STRING.match(text, start)
    else:
        found = _SEQUENCE.match(text, start)
        if found is not None and found.end() == len(text):
            return None
    return found.end() if found is not None else None


class InertStream:
    """`sanitize` for text that arrives in pieces (a streamed reply written to a terminal):
    an escape sequence or a CR LF split between two pieces is held back until it is
    whole, so it is removed as a unit, as `sanitize` would remove it from the whole text.
    What is held is bounded: a sequence left open longer than that is let go, inert."""

    HOLD = 64

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> str:
        text = self._pending + text
        cut = len(text)
        held = None
        found = _INTRODUCER.search(text, max(0, cut - self.HOLD))
        while found is not None:
            end = _sequence_end(text, found.start())
            if end is None:
                held = found.start()
                break
            found = _INTRODUCER.search(text, end)
        if held is not None:
            cut = held
        elif text.endswith("\r"):
            cut -= 1
        self._pending = text[cut:]
        return sanitize(text[:cut])

    def end(self) -> str:
        """What is still held, made inert."""
        text, self._pending = self._pending, ""
        return sanitize(text)
