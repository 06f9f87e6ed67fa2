"""Untrusted text as Textual content: sanitized (foundry_tui.core.text) and never parsed as markup.

A ``str`` given to a Static, a Label, a toast or an option is read as markup by default, so
``[@click=app.quit]`` in a title would be a live action; a ``Content`` built from a string
is that string, styled by nothing. Every surface that shows text from a server, the
database, the config or the environment builds it here.
"""

from __future__ import annotations

from textual.content import Content

from foundry_tui.core.text import one_line, sanitize

# A multi-line text (an error's detail, a question quoting a title) longer than this is cut:
# a screen of text is all anyone reads, and a megabyte would only slow the layout down.
TEXT_LIMIT = 4_000


def plain_text(text: str, limit: int = TEXT_LIMIT) -> Content:
    """``text`` of several lines, inert."""
    return Content(sanitize(text, limit))


def plain_line(text: str, limit: int = 200) -> Content:
    """``text`` as one inert line of at most ``limit`` characters."""
    return Content(one_line(text, limit))
