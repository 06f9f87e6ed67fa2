"""The history database: the only module that touches SQLite.

One ``Store`` owns one ``sqlite3`` connection (WAL mode, ``synchronous=NORMAL``,
foreign keys on, 10 s busy timeout) wrapped in a ``sqlite_utils.Database``. Every
public method takes the store's ``RLock``, so one ``Store`` may be shared by any
number of threads (``asyncio.to_thread`` workers included). Several ``Store``
objects, in this or other processes, may use the same file: every write is one
``BEGIN IMMEDIATE`` transaction, so writers queue on SQLite's lock instead of
failing with "database is locked", and a failed write leaves no partial rows.

Importing this module does not touch the file system; ``Store.open`` does.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from sqlite_utils import Database

from foundry_tui import migrations
from foundry_tui.models import (
    Conversation,
    ConversationSummary,
    GenerationSettings,
    Message,
    MessageRole,
    MessageStatus,
    ServerState,
    StorageError,
    Usage,
)

__all__ = [
    "ROOT",
    "CorruptDatabaseError",
    "NewerSchemaError",
    "NotFoundError",
    "Store",
    "StoreError",
    "StoreWriteError",
    "title_from_prompt",
]

#: Pass as ``add_message(parent_id=ROOT)`` to start a new root branch (e.g. an edited
#: first prompt); ``parent_id=None`` means "the conversation's current head".
ROOT: Final = ""

TITLE_MAX_CHARS: Final = 60
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


def _translate(exc: sqlite3.Error, path: Path, action: str) -> StoreError:
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


# ---------------------------------------------------------------------------
# Helpers


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _new_id() -> str:
    return uuid.uuid4().hex


def title_from_prompt(text: str, max_chars: int = TITLE_MAX_CHARS) -> str:
    """The first non-blank line, whitespace collapsed, cut to ``max_chars`` with "…"."""
    for line in text.splitlines():
        collapsed = " ".join(line.split())
        if collapsed:
            if len(collapsed) > max_chars:
                return collapsed[: max_chars - 1].rstrip() + "…"
            return collapsed
    return ""


def _fts_query(search: str) -> str:
    """Each whitespace-separated term as a quoted prefix phrase; all must match."""
    terms = [term for term in search.split() if any(ch.isalnum() for ch in term)]
    return " ".join('"' + term.replace('"', '""') + '"*' for term in terms)


def _make_dirs(directory: Path) -> None:
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


def _create_file(path: Path) -> None:
    """Create an empty 0600 file if none exists, so SQLite never creates it wider."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _use_wal(conn: sqlite3.Connection) -> None:
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


def _sidecars(path: Path) -> tuple[Path, Path]:
    return Path(f"{path}-wal"), Path(f"{path}-shm")


_CONVERSATION_COLUMNS: Final = (
    "id, title, profile, model, instructions, temperature, top_p, max_output_tokens, "
    "server_state, head_message_id, created_at, updated_at"
)
_MESSAGE_COLUMNS: Final = (
    "id, conversation_id, parent_id, role, text, status, model, response_model, "
    "response_id, previous_response_id, input_tokens, output_tokens, total_tokens, "
    "error, created_at"
)

# The history list comes back as ONE row holding a JSON array: the query runs in a worker
# thread, and Python's sqlite3 releases and retakes the GIL at every row it steps, so
# fetching hundreds of rows while the UI thread (or an import on another thread) holds
# the GIL waits up to a switch interval per row; one row waits once.
_SUMMARY_JSON: Final = (
    "SELECT json_group_array(json_array(id, title, model, updated_at, server_state, seq)) "
    "FROM ({rows})"
)
_LIST_SQL: Final = _SUMMARY_JSON.format(
    rows="SELECT id, title, model, updated_at, server_state, seq FROM conversations "
    "ORDER BY updated_at DESC, seq DESC LIMIT :limit"
)
# Matching messages are read newest first (FTS5 walks its doclists by rowid DESC) and the
# walk stops at `limit` distinct conversations, so a broad term costs about as much as a
# narrow one. ORDER BY and LIMIT are SQLite's (a top-N sort over the matches).
_SEARCH_SQL: Final = _SUMMARY_JSON.format(
    rows="""
    WITH message_hits (conversation_id) AS (
        SELECT DISTINCT m.conversation_id
        FROM messages_fts JOIN messages AS m ON m.seq = messages_fts.rowid
        WHERE messages_fts MATCH :q
        ORDER BY messages_fts.rowid DESC
        LIMIT :limit
    )
    SELECT id, title, model, updated_at, server_state, seq FROM conversations
    WHERE id IN (SELECT conversation_id FROM message_hits)
       OR seq IN (SELECT rowid FROM conversations_fts WHERE conversations_fts MATCH :q)
    ORDER BY updated_at DESC, seq DESC
    LIMIT :limit
    """
)

# The chain of message ids from the head (depth 0) up to the root, plus one NULL row
# past the root that the joins drop. The scalar subquery keeps it one index probe per
# step (a JOIN here lets SQLite build a Bloom filter over the whole messages table).
_CHAIN_CTE: Final = """
WITH RECURSIVE chain (id, depth) AS (
    SELECT head_message_id, 0 FROM conversations
    WHERE id = :cid AND head_message_id IS NOT NULL
    UNION ALL
    SELECT (SELECT parent_id FROM messages WHERE messages.id = chain.id), chain.depth + 1
    FROM chain
    WHERE chain.id IS NOT NULL AND chain.depth < 1000000
)
"""


def _server_state(value: Any) -> ServerState:
    try:
        return ServerState(value)
    except ValueError:
        return ServerState.UNKNOWN


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        title=row["title"],
        profile=row["profile"],
        settings=GenerationSettings(
            model=row["model"],
            instructions=row["instructions"],
            temperature=row["temperature"],
            top_p=row["top_p"],
            max_output_tokens=row["max_output_tokens"],
        ),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        head_message_id=row["head_message_id"],
        server_state=_server_state(row["server_state"]),
    )


def _message(row: sqlite3.Row | Mapping[str, Any]) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        parent_id=row["parent_id"],
        role=MessageRole(row["role"]),
        text=row["text"],
        status=MessageStatus(row["status"]),
        created_at=row["created_at"],
        model=row["model"],
        response_model=row["response_model"],
        response_id=row["response_id"],
        previous_response_id=row["previous_response_id"],
        usage=Usage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            total_tokens=row["total_tokens"],
        ),
        error=row["error"],
    )


def _rows(conn: sqlite3.Connection, sql: str, params: Any = ()) -> list[sqlite3.Row]:
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, params).fetchall()


def _row(conn: sqlite3.Connection, sql: str, params: Any = ()) -> sqlite3.Row | None:
    rows = _rows(conn, sql, params)
    return rows[0] if rows else None


# ---------------------------------------------------------------------------
# The store


class Store:
    """The conversation history. Create with ``Store.open(path)``; thread-safe."""

    path: Path

    def __init__(self, path: Path, conn: sqlite3.Connection, db: Database) -> None:
        """Internal: use ``Store.open``."""
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._db = db
        self._lock = threading.RLock()

    # -- opening and closing -------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating if needed) and migrate the database at ``path``.

        Raises CorruptDatabaseError (file not touched), NewerSchemaError (file not
        touched) or StoreWriteError (cannot create/open/write).
        """
        path = Path(path).expanduser()
        try:
            _make_dirs(path.parent)
            _create_file(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StoreWriteError(path, reason.lower(), action="create") from exc

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
            db = Database(conn, execute_plugins=False)
            # The first read: "file is not a database" surfaces here, before any write.
            status = migrations.inspect(db)
            if status.is_newer:
                raise NewerSchemaError(
                    path, db_version=status.user_version, unknown=sorted(status.unknown)
                )
            _use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            migrations.migrate(db)
        except migrations.SchemaTooNewError as exc:
            _close_quietly(conn)
            raise NewerSchemaError(
                path, db_version=exc.status.user_version, unknown=sorted(exc.status.unknown)
            ) from exc
        except StoreError:
            _close_quietly(conn)
            raise
        except sqlite3.Error as exc:
            _close_quietly(conn)
            raise _translate(exc, path, "open") from exc
        except BaseException:
            _close_quietly(conn)
            raise
        for sidecar in _sidecars(path):
            try:
                if sidecar.exists() and sidecar.stat().st_mode & 0o077:
                    sidecar.chmod(0o600)
            except OSError:
                pass
        return cls(path, conn, db)

    @classmethod
    def fresh_path_beside(cls, path: Path) -> Path:
        """A not-yet-existing sibling such as ``history-2026-11-27T140501.db``."""
        path = Path(path).expanduser()
        stem = f"{path.stem}-{datetime.now().strftime('%Y-%m-%dT%H%M%S')}"
        candidate = path.with_name(stem + path.suffix)
        n = 2
        while candidate.exists() or any(p.exists() for p in _sidecars(candidate)):
            candidate = path.with_name(f"{stem}-{n}{path.suffix}")
            n += 1
        return candidate

    @classmethod
    def set_aside(cls, path: Path) -> Path:
        """Moves a damaged database (and its -wal/-shm) to a new name beside it, unchanged,
        so a fresh history can start at ``path``. Returns where the old file went."""
        path = Path(path).expanduser()
        target = cls.fresh_path_beside(path.with_name(f"{path.stem}-damaged{path.suffix}"))
        for source, destination in zip(
            (path, *_sidecars(path)), (target, *_sidecars(target)), strict=True
        ):
            if source.exists():
                os.replace(source, destination)
        return target

    def close(self) -> None:
        """Close the connection; safe to call twice. Other calls then raise StoreError."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            with suppress(sqlite3.Error):
                # Refresh planner statistics where useful, bounded so closing stays fast.
                conn.execute("PRAGMA analysis_limit = 400")
                conn.execute("PRAGMA optimize")
            conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._read() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    # -- transactions ----------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"The history database {self.path} is closed.", self.path)
        return self._conn

    @contextmanager
    def _read(self, action: str = "read") -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise _translate(exc, self.path, action) from exc

    @contextmanager
    def _write(self, action: str = "write to") -> Iterator[sqlite3.Connection]:
        """One BEGIN IMMEDIATE transaction: all of the block is saved, or none of it."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError:
                raise  # a constraint violation is a bug in the caller, not a disk problem
            except sqlite3.Error as exc:
                raise _translate(exc, self.path, action) from exc

    # -- conversations ---------------------------------------------------------

    def create_conversation(
        self, *, profile: str, settings: GenerationSettings, title: str = ""
    ) -> Conversation:
        conversation_id = _new_id()
        now = _now()
        with self._write("save the new conversation to") as conn:
            conn.execute(
                "INSERT INTO conversations (id, title, profile, model, instructions, "
                "temperature, top_p, max_output_tokens, server_state, head_message_id, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                [
                    conversation_id,
                    title,
                    profile,
                    settings.model,
                    settings.instructions,
                    settings.temperature,
                    settings.top_p,
                    settings.max_output_tokens,
                    ServerState.UNKNOWN.value,
                    now,
                    now,
                ],
            )
        return Conversation(
            id=conversation_id,
            title=title,
            profile=profile,
            settings=settings,
            created_at=now,
            updated_at=now,
        )

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        with self._read() as conn:
            row = _row(
                conn,
                f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE id = ?",
                [conversation_id],
            )
        return _conversation(row) if row is not None else None

    def list_conversations(
        self, *, limit: int = 1000, search: str | None = None
    ) -> list[ConversationSummary]:
        """Newest ``updated_at`` first.

        ``search``: conversations whose title, or one of whose messages, has a word
        starting with each whitespace-separated term (case- and accent-insensitive;
        FTS syntax is taken literally). Blank = no filter; punctuation only = [].
        When more than ``limit`` conversations match through their messages, those
        with the most recent matching messages are the ones considered.
        """
        if search is not None and search.strip():
            match = _fts_query(search)
            if not match:
                return []
            sql = _SEARCH_SQL
            params: dict[str, Any] = {"q": match, "limit": limit}
        else:
            sql = _LIST_SQL
            params = {"limit": limit}
        with self._read("search") as conn:
            packed = conn.execute(sql, params).fetchone()[0]
        rows: list[list[Any]] = json.loads(packed) if packed else []
        # The subquery's order is what json_group_array sees; sorting again on the same
        # key makes the order a guarantee rather than an SQLite habit (cheap: <= limit rows).
        rows.sort(key=lambda row: (row[3], row[5]), reverse=True)
        return [
            ConversationSummary(
                id=id_,
                title=title,
                model=model,
                updated_at=updated_at,
                server_state=_server_state(state),
            )
            for id_, title, model, updated_at, state, _seq in rows
        ]

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        """No-op if the conversation does not exist."""
        with self._write("rename the conversation in") as conn:
            conn.execute(
                "UPDATE conversations SET title = ? WHERE id = ?", [title, conversation_id]
            )

    def update_settings(self, conversation_id: str, settings: GenerationSettings) -> None:
        """No-op if the conversation does not exist."""
        with self._write("save the settings to") as conn:
            conn.execute(
                "UPDATE conversations SET model = ?, instructions = ?, temperature = ?, "
                "top_p = ?, max_output_tokens = ? WHERE id = ?",
                [
                    settings.model,
                    settings.instructions,
                    settings.temperature,
                    settings.top_p,
                    settings.max_output_tokens,
                    conversation_id,
                ],
            )

    def set_server_state(self, conversation_id: str, state: ServerState) -> None:
        """No-op if the conversation does not exist."""
        with self._write("save the conversation state to") as conn:
            conn.execute(
                "UPDATE conversations SET server_state = ? WHERE id = ?",
                [ServerState(state).value, conversation_id],
            )

    def delete_conversation(self, conversation_id: str) -> None:
        """Deletes the conversation and all its messages; no-op if it does not exist."""
        with self._write("delete the conversation from") as conn:
            conn.execute("DELETE FROM messages WHERE conversation_id = ?", [conversation_id])
            conn.execute("DELETE FROM conversations WHERE id = ?", [conversation_id])

    def find_conversation_by_response_id(self, response_id: str) -> Conversation | None:
        with self._read() as conn:
            row = _row(
                conn,
                f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE id = ("
                "SELECT conversation_id FROM messages WHERE response_id = ? LIMIT 1)",
                [response_id],
            )
        return _conversation(row) if row is not None else None

    def set_head(self, conversation_id: str, message_id: str) -> None:
        """Make ``message_id`` (a message of this conversation) the current leaf."""
        with self._write("switch branches in") as conn:
            row = conn.execute(
                "SELECT conversation_id FROM messages WHERE id = ?", [message_id]
            ).fetchone()
            if row is None or row[0] != conversation_id:
                raise NotFoundError(
                    f"Message {message_id} is not part of conversation {conversation_id} "
                    f"in the history database {self.path}.",
                    self.path,
                )
            conn.execute(
                "UPDATE conversations SET head_message_id = ? WHERE id = ?",
                [message_id, conversation_id],
            )

    # -- messages --------------------------------------------------------------

    def add_message(
        self,
        *,
        conversation_id: str,
        role: MessageRole,
        text: str,
        status: MessageStatus,
        model: str | None = None,
        previous_response_id: str | None = None,
        response_id: str | None = None,
        parent_id: str | None = None,
    ) -> Message:
        """Append a message; it becomes the conversation's head.

        ``parent_id=None`` attaches it to the current head, an explicit id (of a
        message of this conversation) starts a branch there, ``ROOT`` starts a new root.
        Raises NotFoundError for an unknown conversation or parent.
        """
        message_id = _new_id()
        now = _now()
        role = MessageRole(role)
        status = MessageStatus(status)
        with self._write("save the message to") as conn:
            conversation = conn.execute(
                "SELECT head_message_id, title FROM conversations WHERE id = ?",
                [conversation_id],
            ).fetchone()
            if conversation is None:
                raise NotFoundError(
                    f"Conversation {conversation_id} is not in the history database "
                    f"{self.path}; it may have been deleted.",
                    self.path,
                )
            head, title = conversation
            parent: str | None
            if parent_id is None:
                parent = head
            elif parent_id == ROOT:
                parent = None
            else:
                owner = conn.execute(
                    "SELECT conversation_id FROM messages WHERE id = ?", [parent_id]
                ).fetchone()
                if owner is None or owner[0] != conversation_id:
                    raise NotFoundError(
                        f"Message {parent_id} is not part of conversation {conversation_id} "
                        f"in the history database {self.path}.",
                        self.path,
                    )
                parent = parent_id
            conn.execute(
                "INSERT INTO messages (id, conversation_id, parent_id, role, text, status, "
                "model, response_id, previous_response_id, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    message_id,
                    conversation_id,
                    parent,
                    role.value,
                    text,
                    status.value,
                    model,
                    response_id,
                    previous_response_id,
                    now,
                    now,
                ],
            )
            new_title = title_from_prompt(text) if not title and role is MessageRole.USER else ""
            if new_title:
                # Only name `title` in SET when it changes: its FTS trigger fires on it.
                conn.execute(
                    "UPDATE conversations SET head_message_id = ?, updated_at = ?, title = ? "
                    "WHERE id = ?",
                    [message_id, now, new_title, conversation_id],
                )
            else:
                conn.execute(
                    "UPDATE conversations SET head_message_id = ?, updated_at = ? WHERE id = ?",
                    [message_id, now, conversation_id],
                )
        return Message(
            id=message_id,
            conversation_id=conversation_id,
            parent_id=parent,
            role=role,
            text=text,
            status=status,
            created_at=now,
            model=model,
            response_id=response_id,
            previous_response_id=previous_response_id,
        )

    def update_message(
        self,
        message_id: str,
        *,
        text: str | None = None,
        status: MessageStatus | None = None,
        response_id: str | None = None,
        response_model: str | None = None,
        usage: Usage | None = None,
        error: str | None = None,
    ) -> None:
        """Change only the fields given (not None); no-op if the message does not exist."""
        assignments: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("text", text),
            ("status", MessageStatus(status).value if status is not None else None),
            ("response_id", response_id),
            ("response_model", response_model),
            ("error", error),
        ):
            if value is not None:
                assignments.append(f"{column} = ?")
                params.append(value)
        if usage is not None:
            assignments += ["input_tokens = ?", "output_tokens = ?", "total_tokens = ?"]
            params += [usage.input_tokens, usage.output_tokens, usage.total_tokens]
        if not assignments:
            return
        assignments.append("updated_at = ?")
        params += [_now(), message_id]
        with self._write("save the message to") as conn:
            conn.execute(f"UPDATE messages SET {', '.join(assignments)} WHERE id = ?", params)

    def get_message(self, message_id: str) -> Message | None:
        with self._read() as conn:
            row = _row(conn, f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", [message_id])
        return _message(row) if row is not None else None

    def transcript(self, conversation_id: str, *, newest: int | None = None) -> list[Message]:
        """The messages from the root to the head, oldest first ([] if none); with
        ``newest``, only that many of the latest."""
        names = [c.strip() for c in _MESSAGE_COLUMNS.split(",")]
        columns = ", ".join(f"m.{name}" for name in names)
        chain = _CHAIN_CTE
        if newest is not None:
            chain = chain.replace("chain.depth < 1000000", f"chain.depth < {max(0, newest - 1)}")
        # One JSON row instead of a row per message (see _SUMMARY_JSON): a long
        # conversation is read in one step even while another thread holds the GIL.
        with self._read() as conn:
            row = conn.execute(
                f"{chain} SELECT json_group_array(json_array(depth, {', '.join(names)})) "
                "FROM ("
                f"SELECT chain.depth AS depth, {columns} FROM chain JOIN messages AS m "
                "ON m.id = chain.id WHERE m.conversation_id = :cid ORDER BY chain.depth DESC)",
                {"cid": conversation_id},
            ).fetchone()
        rows = json.loads(row[0]) if row and row[0] else []
        # The subquery's order is what json_group_array sees; sorting again makes it a
        # guarantee rather than an SQLite habit.
        rows.sort(key=lambda values: values[0], reverse=True)
        return [_message(dict(zip(names, values[1:], strict=True))) for values in rows]

    def mark_interrupted(self) -> int:
        """At start-up: every PENDING assistant message becomes INTERRUPTED."""
        with self._write("update") as conn:
            cursor = conn.execute(
                "UPDATE messages SET status = ?, updated_at = ? "
                "WHERE status = 'pending' AND role = ?",
                [MessageStatus.INTERRUPTED.value, _now(), MessageRole.ASSISTANT.value],
            )
            return cursor.rowcount

    def conversation_usage(self, conversation_id: str) -> Usage:
        """Token sums over the transcript's assistant messages (None where none is known)."""
        with self._read() as conn:
            row = conn.execute(
                f"{_CHAIN_CTE} SELECT SUM(m.input_tokens), SUM(m.output_tokens), "
                "SUM(m.total_tokens) FROM chain JOIN messages AS m ON m.id = chain.id "
                "WHERE m.conversation_id = :cid AND m.role = :role",
                {"cid": conversation_id, "role": MessageRole.ASSISTANT.value},
            ).fetchone()
        return Usage(input_tokens=row[0], output_tokens=row[1], total_tokens=row[2])


def _close_quietly(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        with suppress(sqlite3.Error):
            conn.close()
