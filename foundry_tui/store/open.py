"""Opening the history database file: a 0700 folder and 0600 file, the connection and
its pragmas, WAL, the schema check and migration, and setting a damaged file aside.

A database whose schema is current opens without importing sqlite_utils; only a
migration (a new file, or one made by an older version) needs it."""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from foundry_tui.core.paths import file_problem
from foundry_tui.store import migrations
from foundry_tui.store.errors import (
    BUSY_TIMEOUT_SECONDS,
    NewerSchemaError,
    StoreError,
    StoreWriteError,
    translate,
)

if TYPE_CHECKING:
    from sqlite_utils import Database


def make_dirs(directory: Path) -> None:
    """Create missing directories with mode 0700 (only the ones created here)."""
    missing: list[Path] = []
    current = directory
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for new in reversed(missing):
        try:
            os.mkdir(new, 0o700)
        except FileExistsError:
            continue
        os.chmod(new, 0o700)


def create_file(path: Path) -> None:
    """Create an empty 0600 file if none exists, so SQLite never creates it wider."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def make_private(path: Path) -> None:
    """Narrows an existing database, and side files left by an earlier run, to 0600.

    SQLite creates ``-wal`` and ``-shm`` with the database file's own mode, and the newest
    writes live in the ``-wal``: a database others can read (copied in, made by another
    tool) would hand each new side file to them too. Only the mode changes, never a byte;
    a file of another user's is left as it is.
    """
    for file in (path, *sidecars(path)):
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except OSError:
            continue


def use_wal(conn: sqlite3.Connection) -> None:
    """Switches to WAL once per file. Changing the journal mode answers "locked" at once,
    without the busy timeout, while another process opens the same new file: wait for it."""
    if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def sidecars(path: Path) -> tuple[Path, Path]:
    return Path(f"{path}-wal"), Path(f"{path}-shm")


def database(conn: sqlite3.Connection) -> Database:
    """sqlite-utils over ``conn`` (imported here, on first need: it costs ~0.1 s)."""
    from sqlite_utils import Database

    # Plugins are other packages' code, with no business in the history file.
    return Database(conn, execute_plugins=False)


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at ``path`` (already expanded).

    Raises CorruptDatabaseError (file not touched), NewerSchemaError (file not
    touched) or StoreWriteError (cannot create/open/write).
    """
    problem = file_problem(path)
    if problem is not None:  # a device, a folder, a pipe: SQLite would say "I/O error"
        raise StoreWriteError(path, problem, action="open")
    try:
        make_dirs(path.parent)
        create_file(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StoreWriteError(path, reason.lower(), action="create") from exc
    make_private(path)

    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT_SECONDS,
            check_same_thread=False,
            isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
        )
        # Connection-level settings: none of these reads or writes the file.
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        # What sqlite_utils.Database sets when it wraps a connection, set here so that a
        # write behaves the same before and after the store first uses that wrapper.
        conn.execute("PRAGMA recursive_triggers = ON")
        # The first read: "file is not a database" surfaces here, before any write.
        status = migrations.inspect(conn)
        if status.is_newer:
            raise NewerSchemaError(
                path, db_version=status.user_version, unknown=sorted(status.unknown)
            )
        use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        if not status.is_current:
            migrations.migrate(database(conn))
    except migrations.SchemaTooNewError as exc:
        close_quietly(conn)
        raise NewerSchemaError(
            path, db_version=exc.status.user_version, unknown=sorted(exc.status.unknown)
        ) from exc
    except StoreError:
        close_quietly(conn)
        raise
    except sqlite3.Error as exc:
        close_quietly(conn)
        raise translate(exc, path, "open") from exc
    except BaseException:
        close_quietly(conn)
        raise
    return conn


def fresh_path_beside(path: Path) -> Path:
    """A not-yet-existing sibling such as ``history-2026-11-27T140501.db``."""
    path = Path(path).expanduser()
    stem = f"{path.stem}-{datetime.now().strftime('%Y-%m-%dT%H%M%S')}"
    candidate = path.with_name(stem + path.suffix)
    n = 2
    while candidate.exists() or any(p.exists() for p in sidecars(candidate)):
        candidate = path.with_name(f"{stem}-{n}{path.suffix}")
        n += 1
    return candidate


def set_aside(path: Path) -> Path:
    """Moves a damaged database (and its -wal/-shm) to a new name beside it, unchanged,
    so a fresh history can start at ``path``. Returns where the old file went.

    All three move or none does: the -wal may hold the newest writes, and a database
    parted from it would lose them. Raises StoreWriteError (the folder is read-only...).
    """
    path = Path(path).expanduser()
    target = fresh_path_beside(path.with_name(f"{path.stem}-damaged{path.suffix}"))
    moved: list[tuple[Path, Path]] = []
    try:
        for source, destination in zip(
            (path, *sidecars(path)), (target, *sidecars(target)), strict=True
        ):
            if source.exists():
                os.replace(source, destination)
                moved.append((source, destination))
    except OSError as exc:
        for source, destination in reversed(moved):
            with suppress(OSError):
                os.replace(destination, source)
        raise StoreWriteError(path, _move_problem(exc, path.parent), action="move aside") from exc
    return target


def _move_problem(exc: OSError, folder: Path) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: the folder {folder} is read-only for you"
    if exc.errno == errno.EROFS:
        return f"the folder {folder} is on a read-only file system"
    return (exc.strerror or str(exc)).lower()


def close_quietly(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        with suppress(sqlite3.Error):
            conn.close()
