"""Paths typed or pasted into the prompt that name files to attach.

A file dropped on a terminal pastes its path: plain, quoted ('…' or "…"), with its spaces
backslash-escaped, or as a file:// URL (percent-encoded); several files come separated by
spaces or newlines. A prompt or a paste made only of such paths, each naming something
that exists, is taken as files to attach; anything else is text. So a sentence that
mentions a path ("see /etc/hosts") stays a sentence: only a text that is nothing but paths
is read as paths.

`path_words` is string work only (no file system): it runs on the UI loop, on short texts
only. `resolve` stats and checks the files: it runs in a thread.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from foundry_tui.core.attachments import (
    AttachmentRejected,
    FileToAttach,
    check_file,
    check_together,
)
from foundry_tui.core.text import one_line

__all__ = [
    "ATTACHABLE_SUFFIXES",
    "PATHS_MAX_CHARS",
    "Dropped",
    "PathWords",
    "check_one",
    "complete_path",
    "path_words",
    "resolve",
]

# A text longer than this is never read as paths (sixteen long paths fit): a big paste is
# text, and is not even split.
PATHS_MAX_CHARS = 8_192
# The suffixes of the files the API takes (the real check reads the first bytes).
ATTACHABLE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".pdf"})
_PATH_STARTS = ("/", "~", "./", "../", "file://")


@dataclass(frozen=True)
class PathWords:
    """A text that may be only paths: its words, and its lines (a path with unescaped
    spaces is a whole line), each unquoted, a file:// URL made a path."""

    words: tuple[str, ...]
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Dropped:
    """What the paths named: files checked and accepted, and the refused ones (the path as
    text, to keep in the prompt, and why it was refused, naming the file and the limit)."""

    accepted: tuple[FileToAttach, ...]
    refused: tuple[tuple[str, str], ...]

    @property
    def kept_text(self) -> str:
        """The refused paths as text, quoted where needed, to stay in the prompt."""
        return " ".join(shlex.quote(path) for path, _ in self.refused)


def _looks_like_path(word: str) -> bool:
    return word.startswith(_PATH_STARTS) or os.path.splitext(word)[1].lower() in (
        ATTACHABLE_SUFFIXES
    )


def _from_url(word: str) -> str:
    if not word.startswith("file://"):
        return word
    parts = urlsplit(word)
    if parts.netloc not in ("", "localhost"):
        return word  # another host's file: not one we can read
    return unquote(parts.path)


def path_words(text: str) -> PathWords | None:
    """The paths ``text`` is made of, or None when it is not only paths (a word that does
    not look like a path, an unbalanced quote) or too long to be paths."""
    if len(text) > PATHS_MAX_CHARS or not text.strip():
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    words: list[str] = []
    for line in lines:
        try:
            words.extend(shlex.split(line))
        except ValueError:  # "it's": an apostrophe in a sentence
            return None
    if not words or not all(_looks_like_path(word) for word in words):
        return None
    # Each line as one path, when every line could be one (unescaped spaces).
    whole = tuple(_from_url(line) for line in lines) if all(map(_looks_like_path, lines)) else ()
    return PathWords(tuple(_from_url(word) for word in words), whole)


def _existing(paths: Sequence[str]) -> list[tuple[str, Path]] | None:
    found = []
    for path in paths:
        expanded = Path(os.path.expanduser(path))
        if not expanded.exists():
            return None
        found.append((path, expanded))
    return found or None


def _key(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path


def resolve(words: PathWords, attached: Sequence[FileToAttach] = ()) -> Dropped | None:
    """The files ``words`` name, checked (check_file, then check_together with the files
    ``attached`` already); None when they do not all exist: then they are text. A file
    already attached is not attached twice. Reads the file system: call it in a thread."""
    paths = _existing(words.words) or _existing(words.lines)
    if paths is None:
        return None
    seen = {_key(file.path) for file in attached}
    accepted: list[FileToAttach] = []
    refused: list[tuple[str, str]] = []
    for text, path in paths:
        if (key := _key(path)) in seen:
            continue
        try:
            accepted.append(check_file(path))
        except AttachmentRejected as error:
            refused.append((text, str(error)))
        else:
            seen.add(key)
    try:
        check_together([*attached, *accepted])
    except AttachmentRejected as error:
        refused.extend((str(file.path), str(error)) for file in accepted)
        accepted = []
    return Dropped(tuple(accepted), tuple(refused))


def check_one(path: Path | str, attached: Sequence[FileToAttach] = ()) -> FileToAttach:
    """A file chosen in the picker, checked alone and with the files ``attached`` already.
    Raises AttachmentRejected. Reads the file system: call it in a thread."""
    file = check_file(path)
    check_together([*attached, file])
    return file


def complete_path(text: str) -> str:
    """``text`` completed as far as the folder it names allows (the common start of the
    entries that match; a folder gets its "/"). Hidden entries only when asked for with a
    leading dot. Reads a folder: call it in a thread."""
    expanded = os.path.expanduser(text)
    folder, start = os.path.split(expanded)
    try:
        names = [
            entry.name + ("/" if entry.is_dir() else "")
            for entry in os.scandir(folder or ".")
            if entry.name.startswith(start)
            and (start.startswith(".") or entry.name[0] != ".")
            # A name with controls or line breaks is not typed into the field for the user.
            and one_line(entry.name, None) == entry.name
        ]
    except OSError:
        return text
    if not names:
        return text
    # The common start of names in one folder, character by character, on purpose.
    return text + os.path.commonprefix(names)[len(start) :]  # noqa: RUF071
