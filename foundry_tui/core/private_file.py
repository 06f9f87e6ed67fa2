"""Writing a file only its owner can read, all at once: exports hold the user's
conversations, and a crash or a full disk must not leave half of one where the whole was
asked for (or where an older export was)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, data: bytes) -> None:
    """Writes ``data`` to a temporary 0600 file beside ``path``, then renames it over
    ``path``. Raises OSError (nothing left behind) when the folder is missing or not
    writable, the disk is full, or ``path`` is a folder."""
    directory = path.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name[:40]}-", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
