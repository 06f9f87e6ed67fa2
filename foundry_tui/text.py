"""Making untrusted text (model output, server messages) safe to show in a terminal."""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, C1 controls (including the 8-bit CSI/OSC
# introducers), and the bidi overrides/isolates that can make text read differently
# from what it is. ESC is removed, so no escape sequence can reach the terminal.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def sanitize(text: str) -> str:
    """Returns ``text`` with control characters and bidi overrides removed."""
    if text.isprintable():
        return text
    return _UNSAFE.sub("", text.replace("\r\n", "\n"))


def one_line(text: str, limit: int = 60) -> str:
    """Collapses whitespace and shortens ``text`` to ``limit`` characters with an ellipsis."""
    flat = " ".join(sanitize(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
