"""What a server sent, made fit to keep: ids and names as short strings, token counts as
integers SQLite can hold. The SDK builds its objects without validating them, so a broken
or hostile server's fields arrive as whatever it sent; anything unfit is dropped, and the
caller says so in a note."""

from __future__ import annotations

from dataclasses import fields
from typing import Final

from foundry_tui.core.models import Usage

__all__ = [
    "DROPPED_DETAILS_NOTE",
    "ID_NOTE",
    "MAX_ID_CHARS",
    "MODEL_NOTE",
    "UNSAVED_DETAILS_NOTE",
    "USAGE_NOTE",
    "short_string",
    "storable_text",
    "token_count",
    "usage_of",
]

# Real ids and model names are a few dozen characters.
MAX_ID_CHARS: Final = 256
# SQLite's INTEGER is a signed 64-bit number.
_MAX_INTEGER: Final = 2**63 - 1

ID_NOTE: Final = (
    "The server's response id was not a short string and was not saved: "
    "the next turn resends the transcript."
)
USAGE_NOTE: Final = "The server's token counts were not whole numbers in range and were not saved."
MODEL_NOTE: Final = "The server's model name was not a short string and was not saved."
DROPPED_DETAILS_NOTE: Final = "Details of this reply that were not fit to keep were not saved: {}."
UNSAVED_DETAILS_NOTE: Final = (
    "Part of what the server sent with this reply could not be saved; its text and status are."
)


def short_string(value: object, limit: int = MAX_ID_CHARS) -> str | None:
    """``value`` when it is a non-empty, printable string of at most ``limit`` characters."""
    if isinstance(value, str) and 0 < len(value) <= limit and value.isprintable():
        return value
    return None


def token_count(value: object) -> int | None:
    """``value`` when it is a whole number SQLite can hold and a token count can be."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_INTEGER:
        return value
    return None


def usage_of(usage: Usage) -> tuple[Usage, bool]:
    """The counts fit to keep, and whether any count given was dropped."""
    counts = tuple(getattr(usage, count.name) for count in fields(usage))
    kept = tuple(token_count(count) for count in counts)
    dropped = any(count is not None and k is None for count, k in zip(counts, kept, strict=True))
    return Usage(*kept), dropped


def storable_text(text: str) -> str:
    """``text`` with what UTF-8 cannot hold (lone surrogates from a JSON escape) replaced."""
    return text.encode("utf-8", "replace").decode("utf-8")
