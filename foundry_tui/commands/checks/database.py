"""The history database, read without a single write: it opens, its integrity, its schema
version against this foundry-tui's, WAL, the free space where it lives, its permissions."""

from __future__ import annotations

import sqlite3
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from foundry_tui.commands.checks import CheckResult, Context, fail, in_thread, passed, warn
from foundry_tui.config import default_db_path
from foundry_tui.store import migrations
from foundry_tui.store.errors import NewerSchemaError, StoreError, translate

__all__ = ["DISK_FAIL_BYTES", "DISK_WARN_BYTES", "check_database"]

DISK_WARN_BYTES = 200_000_000
DISK_FAIL_BYTES = 10_000_000
_MOVE_ASIDE = (
    "Move it aside (foundry-tui offers to when it starts: press F), or use another history "
    "file with --db PATH."
)
_UPGRADE = (
    "Upgrade foundry-tui (pip install --upgrade foundry-tui), or use another history file "
    "with --db PATH."
)


@dataclass(frozen=True)
class _Inspection:
    problems: list[str]  # what integrity_check found; empty when "ok"
    status: migrations.SchemaStatus
    journal: str


def _inspect(path: Path, seconds: float) -> _Inspection:
    """Reads the file through a read-only connection; an integrity check that runs past
    ``seconds`` is interrupted (TimeoutError)."""
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=1.0)
        deadline = time.monotonic() + seconds
        # Asked every 1,000 SQLite steps: often enough to stop in time, rarely enough to
        # cost the check little.
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1_000)
        status = migrations.inspect(conn)
        rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check(5)")]
        journal = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc).lower():
            raise TimeoutError from exc
        raise translate(exc, path, "read") from exc
    except sqlite3.Error as exc:
        raise translate(exc, path, "read") from exc
    finally:
        if conn is not None:
            conn.close()
    return _Inspection([row for row in rows if row != "ok"], status, journal)


def _existing_folder(path: Path) -> Path:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


async def check_database(ctx: Context) -> list[CheckResult]:
    config = ctx.config
    if config is None:
        return []
    unusable = ctx.deferred.get("database")
    if unusable is not None:
        return [
            fail(
                "database",
                "database",
                unusable.problem,
                f"Use another path with {unusable.key}, or leave it out for the usual "
                f"history file ({default_db_path()}).",
            )
        ]
    path = config.db_path
    if not path.exists():
        folder = _existing_folder(path)
        if not ctx.seams.writable(folder):
            return [
                fail(
                    "database",
                    "database",
                    f"{path} does not exist and cannot be made: {folder} is read-only for you",
                    f"Make {folder} writable, or use another history file with --db PATH "
                    "(or db_path in [ui]).",
                ),
                _disk(ctx, folder),
            ]
        return [
            passed("database", "database", f"{path} does not exist yet: made at the first save"),
            _disk(ctx, folder),
        ]
    seconds = ctx.seams.timeouts.database
    try:
        found = await in_thread(lambda: _inspect(path, seconds), seconds + 1.0)
    except TimeoutError:
        return [
            warn(
                "database",
                "database",
                f"{path}: the integrity check did not finish within {seconds:g} s",
                f"Run it without a time limit: sqlite3 {path} 'PRAGMA integrity_check'",
            ),
            _disk(ctx, path.parent),
            _permissions(ctx, path),
        ]
    except StoreError as error:
        return [fail("database", "database", str(error), _MOVE_ASIDE)]
    results: list[CheckResult] = []
    if found.problems:
        results.append(
            fail(
                "database",
                "database",
                f"{path} is damaged: " + "; ".join(found.problems[:3]),
                _MOVE_ASIDE,
            )
        )
    else:
        results.append(passed("database", "database", f"{path} (integrity ok)"))
    results.append(_schema(path, found.status))
    if found.journal == "wal":
        results.append(passed("journal", "journal", "WAL"))
    else:
        results.append(
            warn(
                "journal",
                "journal",
                f"journal mode {found.journal}, not WAL",
                "foundry-tui switches the file to WAL when it opens it; if it stays so, the "
                "file may be on a network drive: use a local one with --db PATH.",
            )
        )
    results.append(_disk(ctx, path.parent))
    results.append(_permissions(ctx, path))
    return results


def _schema(path: Path, status: migrations.SchemaStatus) -> CheckResult:
    version, ours = status.user_version, migrations.SCHEMA_VERSION
    if status.is_newer:
        error = NewerSchemaError(path, db_version=version, unknown=sorted(status.unknown))
        return fail("schema", "schema", str(error), _UPGRADE)
    if status.pending or version < ours:
        return passed(
            "schema",
            "schema",
            f"version {version} (this foundry-tui: {ours}): updated when foundry-tui next opens it",
        )
    return passed("schema", "schema", f"version {version}, as this foundry-tui")


def _disk(ctx: Context, folder: Path) -> CheckResult:
    try:
        free = ctx.seams.free_bytes(folder)
    except OSError as error:
        return warn(
            "disk",
            "disk space",
            f"cannot tell the free space in {folder} ({error.strerror or error})",
            "Check the folder (df -h).",
        )
    shown = f"{free / 1_000_000_000:.1f} GB" if free >= 1_000_000_000 else f"{free // 1_000_000} MB"
    if free < DISK_FAIL_BYTES:
        return fail(
            "disk",
            "disk space",
            f"only {shown} free where the history is ({folder})",
            "Free some space there: with the disk full, nothing can be saved.",
        )
    if free < DISK_WARN_BYTES:
        return warn(
            "disk",
            "disk space",
            f"{shown} free where the history is ({folder})",
            "Free some space there soon: a full disk stops the history from saving.",
        )
    return passed("disk", "disk space", f"{shown} free in {folder}")


def _permissions(ctx: Context, path: Path) -> CheckResult:
    if not ctx.seams.writable(path):
        return fail(
            "permissions",
            "permissions",
            f"{path} is read-only for you: nothing can be saved",
            f"chmod u+w {path}, or use another history file with --db PATH.",
        )
    wide: list[str] = []
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            wide.append(f"{file.name} is {mode:04o}")
    if wide:
        return warn(
            "permissions",
            "permissions",
            f"others can read your history: {', '.join(wide)}",
            f"chmod 600 {path}* (foundry-tui narrows it to 0600 when it opens it).",
        )
    return passed("permissions", "permissions", "0600: yours alone")
