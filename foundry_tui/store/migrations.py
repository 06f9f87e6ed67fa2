"""Schema migrations for the history database, in the style of simonw/llm.

Each function decorated with ``@migration`` is applied once, in order, inside its own
``BEGIN IMMEDIATE`` transaction, and recorded by name in ``_foundry_migrations``.
``PRAGMA user_version`` mirrors the number of migrations applied.

To change the schema, append a new function at the end; never rename, reorder or edit
one that has shipped. Each runs exactly once per database.

A migration is given a ``sqlite_utils.Database`` whose connection is in driver
autocommit mode (``isolation_level=None``): write new ones with sqlite-utils
(``db[name].create``, ``add_column``, ``create_index``, and ``transform`` below for
what ``ALTER TABLE`` cannot do). Foreign keys are off while a migration runs, as
SQLite's own recipe for rebuilding a table asks, and checked before it commits.

``inspect`` reads the schema state through the plain connection: opening a database
whose schema is current never imports sqlite_utils (~0.1 s, see ``foundry_tui.store``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlite_utils import Database

MIGRATIONS_TABLE = "_foundry_migrations"

Migration = Callable[["Database"], None]

MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration; its ``__name__`` is what gets recorded."""
    MIGRATIONS.append(fn)
    return fn


def _run(db: Database, *statements: str) -> None:
    for statement in statements:
        db.execute(statement)


def transform(db: Database, table: str, **changes: Any) -> None:
    """``db[table].transform(**changes)``, keeping the table's triggers.

    ``transform`` rebuilds the table (create, copy, drop, rename), and dropping the old
    table drops its triggers with it: here those are the FTS triggers, without which the
    search index would silently stop following the table. They are created again on the
    rebuilt table (a trigger naming a dropped column fails, and the migration with it).
    """
    triggers = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", [table]
    ).fetchall()
    db.table(table).transform(**changes)
    for name, sql in triggers:
        if not db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", [name]
        ).fetchone():
            db.execute(sql)


# m001 and m002 shipped as SQL and stay as they are (every database since was made by
# them). m002 could not be written with `enable_fts` anyway: it declares no prefix
# indexes (prefix='1 2 3', which a one-letter search rests on), and its update trigger
# re-indexes a message on ANY update where ours fires on `text` only: a status update of
# a 1 MB reply takes 40 ms with that trigger, 0.4 ms with ours
# (benchmarks/store_access.py).


@migration
def m001_initial(db: Database) -> None:
    # `seq` is an explicit INTEGER PRIMARY KEY (a rowid alias), so VACUUM can never
    # renumber the rows the external-content FTS indexes point at; `id` is the public key.
    _run(
        db,
        """
        CREATE TABLE conversations (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL DEFAULT '',
            profile TEXT NOT NULL,
            model TEXT NOT NULL,
            instructions TEXT,
            temperature REAL,
            top_p REAL,
            max_output_tokens INTEGER,
            server_state TEXT NOT NULL DEFAULT 'unknown',
            head_message_id TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX conversations_updated_at ON conversations (updated_at)",
        """
        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            conversation_id TEXT NOT NULL
                REFERENCES conversations (id) ON DELETE CASCADE,
            parent_id TEXT REFERENCES messages (id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            model TEXT,
            response_model TEXT,
            response_id TEXT,
            previous_response_id TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            total_tokens INTEGER,
            error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX messages_conversation_id ON messages (conversation_id)",
        "CREATE INDEX messages_response_id ON messages (response_id)",
        # Needed by the parent_id foreign key: without it every deleted message
        # would scan the whole table for children.
        "CREATE INDEX messages_parent_id ON messages (parent_id)",
        # mark_interrupted() at start-up without a full scan.
        "CREATE INDEX messages_pending ON messages (status) WHERE status = 'pending'",
    )


def _fts_statements(table: str, column: str) -> list[str]:
    fts = f"{table}_fts"
    return [
        f"""
        CREATE VIRTUAL TABLE {fts} USING fts5(
            {column},
            content='{table}',
            content_rowid='seq',
            tokenize='unicode61 remove_diacritics 2',
            prefix='1 2 3'
        )
        """,
        f"""
        CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN
            INSERT INTO {fts} (rowid, {column}) VALUES (new.seq, new.{column});
        END
        """,
        f"""
        CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN
            INSERT INTO {fts} ({fts}, rowid, {column}) VALUES ('delete', old.seq, old.{column});
        END
        """,
        f"""
        CREATE TRIGGER {fts}_au AFTER UPDATE OF {column} ON {table} BEGIN
            INSERT INTO {fts} ({fts}, rowid, {column}) VALUES ('delete', old.seq, old.{column});
            INSERT INTO {fts} (rowid, {column}) VALUES (new.seq, new.{column});
        END
        """,
        f"INSERT INTO {fts} ({fts}) VALUES ('rebuild')",
    ]


@migration
def m002_fts(db: Database) -> None:
    """External-content FTS5 indexes over messages.text and conversations.title."""
    _run(db, *_fts_statements("messages", "text"), *_fts_statements("conversations", "title"))


@migration
def m003_turn_count_index(db: Database) -> None:
    """Counting a conversation's prompts (`foundry-tui history`) reads the index alone,
    not the message rows: over 10,000 conversations and 200,000 messages, 0.14 s became
    0.027 s; building it took 0.19 s there."""
    db.table("messages").create_index(
        ["conversation_id", "role"], index_name="messages_conversation_role", if_not_exists=True
    )


@migration
def m004_reasoning_attachments_usage(db: Database) -> None:
    """Issue 13: reasoning settings and text, token details and timings, attachments,
    and the request parameters a deployment refused.

    ``reasoning_items`` (the JSON of the reasoning output items, with their encrypted
    content, sent back on a replay) is not part of a transcript read: it can run to
    kilobytes a turn and only a replay needs it.
    """
    conversations = db.table("conversations")
    for column in ("reasoning_effort", "reasoning_summary", "verbosity"):
        conversations.add_column(column, str)
    messages = db.table("messages")
    _run(db, "ALTER TABLE messages ADD COLUMN reasoning TEXT NOT NULL DEFAULT ''")
    messages.add_column("reasoning_items", str)
    for column in ("cached_input_tokens", "reasoning_tokens", "first_token_ms", "duration_ms"):
        messages.add_column(column, int)
    db.table("attachments").create(
        {"sha256": str, "media_type": str, "size": int, "created_at": str},
        pk="sha256",
        not_null={"media_type", "size", "created_at"},
    )
    # SQL, not `create`: sqlite-utils cannot declare ON DELETE CASCADE, and deleting a
    # conversation must take its messages' attachment rows with it.
    _run(
        db,
        """
        CREATE TABLE message_attachments (
            message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            sha256 TEXT NOT NULL REFERENCES attachments (sha256),
            name TEXT NOT NULL,
            PRIMARY KEY (message_id, position)
        )
        """,
    )
    db.table("message_attachments").create_index(["sha256"], if_not_exists=True)
    db.table("rejected_parameters").create(
        {"profile": str, "model": str, "parameter": str, "reason": str, "created_at": str},
        pk=("profile", "model", "parameter"),
        not_null={"reason", "created_at"},
    )


@migration
def m005_archive(db: Database) -> None:
    """Issue 14: a conversation can be archived (hidden from the history list, kept).

    ``archived_at`` is NULL for a listed conversation. The list and its archived view each
    walk a partial index in ``updated_at`` order, so neither reads the rows of the other
    (a history with most of it archived lists as fast as one with none)."""
    db.table("conversations").add_column("archived_at", str)
    _run(
        db,
        "CREATE INDEX conversations_listed ON conversations (updated_at) WHERE archived_at IS NULL",
        "CREATE INDEX conversations_archived ON conversations (updated_at) "
        "WHERE archived_at IS NOT NULL",
    )


# Must stay below the last @migration.
SCHEMA_VERSION = len(MIGRATIONS)
KNOWN_MIGRATIONS = frozenset(fn.__name__ for fn in MIGRATIONS)


class SchemaTooNewError(Exception):
    """The database records migrations this version does not know."""

    def __init__(self, status: SchemaStatus) -> None:
        super().__init__(
            f"database schema {status.user_version} with unknown migrations "
            f"{sorted(status.unknown)}; this version knows {SCHEMA_VERSION}"
        )
        self.status = status


@dataclass(frozen=True)
class SchemaStatus:
    applied: frozenset[str]
    user_version: int

    @property
    def unknown(self) -> frozenset[str]:
        return self.applied - KNOWN_MIGRATIONS

    @property
    def is_newer(self) -> bool:
        return bool(self.unknown) or self.user_version > SCHEMA_VERSION

    @property
    def pending(self) -> list[Migration]:
        return [fn for fn in MIGRATIONS if fn.__name__ not in self.applied]

    @property
    def is_current(self) -> bool:
        return not self.pending and self.user_version == SCHEMA_VERSION


def inspect(conn: sqlite3.Connection) -> SchemaStatus:
    """Read (never write) which migrations the database has recorded."""
    user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [MIGRATIONS_TABLE]
    ).fetchone()
    applied: frozenset[str] = frozenset()
    if exists:
        applied = frozenset(
            str(row[0]) for row in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")
        )
    return SchemaStatus(applied=applied, user_version=user_version)


def migrate(db: Database) -> list[str]:
    """Apply the pending migrations, each in its own write transaction.

    Safe against another process migrating the same file at the same time: the
    status is re-read under the write lock. Raises SchemaTooNewError, before
    writing anything, when the database was written by a newer version.
    Returns the names of the migrations this call applied.
    """
    conn = db.conn
    status = inspect(conn)
    if status.is_newer:
        raise SchemaTooNewError(status)
    if status.is_current:
        return []
    # PRAGMA foreign_keys is a no-op inside a transaction: switch it off around them.
    # With it on, rebuilding `conversations` (transform) would cascade-delete every
    # message when the old table is dropped; sqlite-utils refuses to try.
    foreign_keys = bool(conn.execute("PRAGMA foreign_keys").fetchone()[0])
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        return _apply(db, conn)
    finally:
        if foreign_keys:
            conn.execute("PRAGMA foreign_keys = ON")


def _apply(db: Database, conn: sqlite3.Connection) -> list[str]:
    applied_now: list[str] = []
    for position, fn in enumerate(MIGRATIONS, start=1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            status = inspect(conn)
            if status.is_newer:
                raise SchemaTooNewError(status)
            if fn.__name__ not in status.applied:
                db.table(MIGRATIONS_TABLE).create(
                    {"name": str, "applied_at": str},
                    pk="name",
                    not_null={"applied_at"},
                    if_not_exists=True,
                )
                fn(db)
                db.table(MIGRATIONS_TABLE).insert(
                    {
                        "name": fn.__name__,
                        "applied_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                    }
                )
                broken = conn.execute("PRAGMA foreign_key_check").fetchone()
                if broken is not None:
                    raise sqlite3.IntegrityError(
                        f"migration {fn.__name__} left a broken foreign key in {broken[0]}"
                    )
                applied_now.append(fn.__name__)
            if status.user_version < position:
                conn.execute(f"PRAGMA user_version = {position:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return applied_now
