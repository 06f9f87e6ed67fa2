"""Exports on disk: the text of each format, where the app suggests putting one, and
writing it so that only its owner can read it, all at once (exports hold the user's
conversations; a crash or a full disk must not leave half of one where the whole, or an
older export, was)."""

from __future__ import annotations

import os
import tempfile
import unicodedata
from pathlib import Path
from typing import Final, Literal

from foundry_tui.core.markdown_export import markdown
from foundry_tui.core.text import sanitize
from foundry_tui.core.transfer import Exported, document, dumps

__all__ = ["SUFFIXES", "ExportFormat", "render", "suggested_path", "write_private"]

ExportFormat = Literal["md", "json"]
SUFFIXES: Final[dict[ExportFormat, str]] = {"md": ".md", "json": ".json"}
# A file name from a title: long enough to recognise, short enough for any file system.
NAME_CHARS: Final = 60


def render(exported: Exported, form: ExportFormat, *, all_branches: bool = False) -> str:
    """The export's text: Markdown to read (the branch shown, or with ``all_branches``
    every branch), or the JSON document import reads back (always every branch)."""
    if form == "json":
        return dumps(document(exported))
    return markdown(exported, all_branches=all_branches)


def write_private(path: Path, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path`` (mkstemp makes it 0600), then
    renames it over ``path``. Raises OSError, leaving nothing behind, when the folder is
    missing or not writable, the disk is full, or ``path`` is a folder."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name[:40]}-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def file_name(title: str) -> str:
    """A file name (without suffix) from a conversation's title, which may hold anything:
    its letters and digits (escape sequences gone whole, payload and all), words joined by
    "-", lower case; "conversation" if none."""
    words: list[str] = []
    word: list[str] = []
    for character in unicodedata.normalize("NFC", sanitize(title)):
        if character.isalnum() and character.isprintable():
            word.append(character.lower())
        elif word:
            words.append("".join(word))
            word = []
    if word:
        words.append("".join(word))
    name = "-".join(words)[:NAME_CHARS].strip("-")
    return name or "conversation"


def export_folder() -> Path:
    """The user's Downloads folder when there is one, else the home folder."""
    from platformdirs import user_downloads_dir

    downloads = Path(user_downloads_dir())
    return downloads if downloads.is_dir() else Path.home()


def suggested_path(title: str, form: ExportFormat) -> Path:
    """Where an export of a conversation called ``title`` goes unless the user says
    otherwise: a file named after it in `export_folder`, not one that exists already."""
    folder = export_folder()
    stem = file_name(title)
    suffix = SUFFIXES[form]
    path = folder / f"{stem}{suffix}"
    number = 2
    while path.exists() and number < 1000:
        path = folder / f"{stem}-{number}{suffix}"
        number += 1
    return path
