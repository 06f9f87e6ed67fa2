"""The bytes of attached files, kept once per content beside the history database.

``<database dir>/<database stem>-attachments/ab/abcdef…`` (the SHA-256 of the bytes): the
same image attached twice is one file. The folder is named after the database, so two
databases in one folder (``--db`` in a test's tmp dir, a history set aside) never share
files: deleting a conversation in one cannot take a file the other still needs.

Files are written whole or not at all (a temporary file in the same folder, then
``os.replace``), readable only by the user (0600, folders 0700). Hashing and copying a
20 MB file takes a few tens of milliseconds: callers run these functions in a thread
(``hashlib`` and file I/O let go of the GIL on large buffers).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Final

from foundry_tui.core.attachments import AttachmentRejected, FileToAttach, sniff_media_type

__all__ = ["AttachmentFiles", "folder_for"]

_CHUNK: Final = 1 << 20
_SHA256: Final = re.compile(r"[0-9a-f]{64}")


def folder_for(database: Path) -> Path:
    """Where the attachments of the database at ``database`` are kept."""
    return database.with_name(f"{database.stem}-attachments")


class AttachmentFiles:
    """Content-addressed files under ``root``; every method touches the disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):  # a hash from an import names no other path
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def keep(self, file: FileToAttach) -> tuple[str, str, int]:
        """Copies ``file`` in (if its content is not kept already); returns its (sha256,
        media type, size) as read now: the file may have changed since it was checked.
        AttachmentRejected when it can no longer be read or is no longer of a type the
        API takes."""
        try:
            with file.path.open("rb") as source:
                head = source.read(16)
                media_type = sniff_media_type(head)
                if media_type is None:
                    raise AttachmentRejected(
                        f"{file.name} changed since it was attached: it is no longer a "
                        "PNG, JPEG, WebP or GIF image or a PDF."
                    )
                source.seek(0)
                sha256, size = self._write(source)
        except OSError as error:
            raise AttachmentRejected(
                f"{file.name}: cannot be read ({error.strerror or error})."
            ) from None
        return sha256, media_type, size

    def keep_bytes(self, data: bytes) -> str:
        """Keeps ``data`` (an imported attachment); returns its SHA-256."""
        import io

        sha256, _ = self._write(io.BytesIO(data))
        return sha256

    def read(self, sha256: str) -> bytes:
        """The kept bytes; FileNotFoundError when they are gone."""
        return self.path_of(sha256).read_bytes()

    def stale(self, written_before: float) -> tuple[list[str], list[Path]]:
        """The kept files (their hashes) and the temporary files a copy left behind, last
        written before ``written_before`` (a ``time.time()``)."""
        hashes: list[str] = []
        leftovers: list[Path] = []
        try:
            folders = list(os.scandir(self.root))
        except FileNotFoundError:
            return hashes, leftovers
        for folder in folders:
            with contextlib.suppress(OSError):
                if folder.name.startswith(".incoming-"):
                    if folder.stat().st_mtime < written_before:
                        leftovers.append(Path(folder.path))
                    continue
                if len(folder.name) != 2 or not folder.is_dir(follow_symlinks=False):
                    continue
                for file in os.scandir(folder.path):
                    with contextlib.suppress(OSError):
                        if _SHA256.fullmatch(file.name) and file.stat().st_mtime < written_before:
                            hashes.append(file.name)
        return hashes, leftovers

    def remove(self, hashes: Iterable[str]) -> None:
        """Deletes these files (those already gone are no error) and any folder left empty."""
        for sha256 in hashes:
            path = self.path_of(sha256)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only when empty

    def _write(self, source: BinaryIO) -> tuple[str, int]:
        """Copies ``source`` to a temporary file while hashing it, then moves it to its
        content's name (unless that is there already)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, temporary = tempfile.mkstemp(prefix=".incoming-", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out:  # mkstemp makes it 0600
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    time.sleep(0)  # hand the GIL over (see core.attachments.hashed_data_url)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            target = self.path_of(sha256)
            if target.exists():
                os.unlink(temporary)
                # Kept afresh: a sweep of files no prompt names (Store.sweep_unlinked_files)
                # leaves recent ones alone, and this one is about to be named.
                os.utime(target)
            else:
                target.parent.mkdir(mode=0o700, exist_ok=True)
                os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return sha256, size
