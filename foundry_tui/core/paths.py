"""Paths the user gives (config file, history database): expanded and checked before
anything opens them, with the words for why one cannot be used.

Only ``os.stat`` calls: nothing is opened, created or read here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["PathProblem", "expand_user_path", "file_problem", "output_problem"]


class PathProblem(ValueError):
    """A path that cannot be used; ``str()`` says why, without naming the path."""


def expand_user_path(text: str) -> Path:
    """``Path(text).expanduser()``, or PathProblem for a NUL byte or an unknown ``~user``."""
    if "\x00" in text:
        raise PathProblem("it holds a NUL byte")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory."
        user = text[1:].split("/", 1)[0]
        if user:
            raise PathProblem(f"it starts with ~{user}, and there is no user '{user}'") from None
        raise PathProblem("it starts with ~, and the home folder is not known") from None


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a file to open or create, or None when it can: it is a file
    (or a link to one), or it does not exist yet and the nearest folder above it that
    exists is a folder. Folders that do not exist yet are not a problem: they are made."""
    if "\x00" in str(path):
        return "it holds a NUL byte"
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return _ancestor_problem(path)
    except PermissionError:
        return f"permission denied (on {path.parent} or a folder above it)"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    return _kind_problem(mode)


def _kind_problem(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "it is a folder, not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "it is a device, not a file"
    if stat.S_ISFIFO(mode):
        return "it is a named pipe, not a file"
    if stat.S_ISSOCK(mode):
        return "it is a socket, not a file"
    return "it is not a regular file"


def _ancestor_problem(path: Path) -> str | None:
    for folder in path.parents:
        try:
            mode = os.stat(folder).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:
            return f"permission denied on {folder}"
        except OSError as exc:
            return f"{folder}: {(exc.strerror or str(exc)).lower()}"
        if stat.S_ISDIR(mode):
            return None
        return f"{folder} is not a folder"
    return None


def output_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a file to write (replace or create) in a folder that exists
    already, or None when it can."""
    if not path.parent.is_dir():
        return f"there is no folder {path.parent}"
    return file_problem(path)
