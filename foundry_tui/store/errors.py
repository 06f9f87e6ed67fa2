"""The history database's errors, and the translation of a ``sqlite3.Error`` into one."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from foundry_tui.core.models import StorageError
from foundry_tui.store import migrations

BUSY_TIMEOUT_SECONDS: Final = 10.0

# SQLite primary result codes (the low byte of sqlite3.Error.sqlite_errorcode).
_SQLITE_PERM: Final = 3
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_SQLITE_READONLY: Final = 8
_SQLITE_IOERR: Final = 10
_SQLITE_CORRUPT: Final = 11
_SQLITE_FULL: Final = 13
_SQLITE_CANTOPEN: Final = 14
_SQLITE_NOTADB: Final = 26


# ---------------------------------------------------------------------------
# Errors


class StoreError(StorageError):
    """Base class; ``str()`` is a sentence for the user that names the database path."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class NewerSchemaError(StoreError):
    """The file was written by a newer foundry-tui; it was not changed."""

    def __init__(self, path: Path, *, db_version: int, unknown: Sequence[str] = ()) -> None:
        super().__init__(
            f"The history database {path} was written by a newer version of foundry-tui "
            f"(schema version {db_version}; this version understands up to "
            f"{migrations.SCHEMA_VERSION}). Upgrade foundry-tui to open it; "
            "the file has not been changed.",
            path,
        )
        self.db_version = db_version
        self.unknown_migrations = tuple(unknown)


class CorruptDatabaseError(StoreError):
    """Not a SQLite database, or a damaged one; the file is never overwritten."""

    def __init__(self, path: Path, detail: str = "") -> None:
        reason = f" ({detail})" if detail else ""
        super().__init__(
            f"The history database {path} is damaged or is not a SQLite database{reason}. "
            "It has been left untouched; move it aside or start a fresh history file.",
            path,
        )


class StoreWriteError(StoreError):
    """A write failed (disk full, read-only file or folder, cannot open, I/O error...).

    The transaction was rolled back, so nothing of the failed write was saved.
    """

    def __init__(self, path: Path, reason: str, *, action: str = "write to") -> None:
        super().__init__(f"Could not {action} the history database {path}: {reason}.", path)
        self.reason = reason


class NotFoundError(StoreError, LookupError):
    """``add_message``/``set_head`` named a conversation or parent message that does not exist."""


def translate(exc: sqlite3.Error, path: Path, action: str) -> StoreError:
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc).lower()
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or (
        "not a database" in text or "malformed" in text
    ):
        return CorruptDatabaseError(path, str(exc))
    reason: str | None = None
    if primary == _SQLITE_FULL or "disk is full" in text:
        reason = "the disk is full"
    elif primary in (_SQLITE_READONLY, _SQLITE_PERM) or "readonly" in text:
        reason = "the file or its folder is read-only"
    elif primary == _SQLITE_CANTOPEN or "unable to open" in text:
        reason = "the file could not be opened; check that its folder exists and is writable"
    elif primary == _SQLITE_IOERR or "disk i/o error" in text:
        reason = "a disk I/O error occurred"
    elif primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text:
        reason = f"another program kept it locked for more than {BUSY_TIMEOUT_SECONDS:g} seconds"
    if reason is not None:
        return StoreWriteError(path, reason, action=action)
    return StoreError(f"Could not {action} the history database {path}: {exc}.", path)
