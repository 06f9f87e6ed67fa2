"""The store's access layer: sqlite-utils where it serves, the plain connection on the
paths whose speed a figure guards (opening, a turn), and migrations that can rebuild a
table, over databases made by earlier versions."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from foundry_tui.core.models import (
    GenerationSettings,
    MessageRole,
    MessageStatus,
)
from foundry_tui.store import Store, StoreError, migrations

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = GenerationSettings(model="gpt-4o")
USER = MessageRole.USER
ASSISTANT = MessageRole.ASSISTANT
COMPLETED = MessageStatus.COMPLETED

# One turn, as `foundry-tui ask` (and the chat screen) makes it, on an existing database;
# prints whether sqlite_utils was imported by then, and after the history list.
TURN = """
import sys
from pathlib import Path
from foundry_tui.core.models import GenerationSettings, MessageStatus, ServerState, Usage
from foundry_tui.store import Store

with Store.open(Path(sys.argv[1])) as store:
    store.mark_interrupted()
    c = store.create_conversation(profile="p", settings=GenerationSettings(model="m"))
    store.get_conversation(c.id)
    store.transcript(c.id)
    user = store.add_message(
        conversation_id=c.id, role="user", text="hello", status=MessageStatus.COMPLETED
    )
    reply = store.add_message(
        conversation_id=c.id, role="assistant", text="", status=MessageStatus.PENDING
    )
    store.update_message(reply.id, text="hi", response_id="resp_1")
    store.update_message(
        reply.id, status=MessageStatus.COMPLETED, usage=Usage(1, 2, 3), response_model="m"
    )
    store.get_message(reply.id)
    store.set_server_state(c.id, ServerState.LIVE)
    store.set_head(c.id, reply.id)
    store.conversation_usage(c.id)
    store.find_conversation_by_response_id("resp_1")
    print("sqlite_utils" in sys.modules)
    assert [s.id for s in store.list_conversations()] == [c.id]
    print("sqlite_utils" in sys.modules)
"""


def test_opening_and_a_turn_leave_sqlite_utils_unimported(tmp_path: Path) -> None:
    """Its import alone is ~0.1 s of the 0.25 s `ask` has to its first token."""
    path = tmp_path / "history.db"
    Store.open(path).close()  # exists, schema current: as on every launch but the first
    result = subprocess.run(
        [sys.executable, "-c", TURN, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    # ...and the history list does go through it.
    assert result.stdout.split() == ["False", "True"]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as s:
        yield s


def test_a_failed_write_through_sqlite_utils_leaves_nothing(store: Store, db_path: Path) -> None:
    """delete_conversation's two sqlite-utils deletes are one transaction: when the second
    fails, the first is undone too."""
    c = store.create_conversation(profile="p", settings=SETTINGS, title="kept")
    store.add_message(conversation_id=c.id, role=USER, text="kept words", status=COMPLETED)
    guard = sqlite3.connect(db_path, isolation_level=None)
    guard.execute(
        "CREATE TRIGGER refuse BEFORE DELETE ON conversations "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    guard.close()
    with pytest.raises(sqlite3.IntegrityError):
        store.delete_conversation(c.id)
    assert [m.text for m in store.transcript(c.id)] == ["kept words"]
    assert [s.id for s in store.list_conversations(search="kept words")] == [c.id]


# ---------------------------------------------------------------------------
# Migrations

# The bookkeeping table as version 1 and 2 created it (before sqlite-utils made it).
OLD_MIGRATIONS_TABLE = (
    "CREATE TABLE _foundry_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
)


def make_old_database(path: Path, upto: int) -> tuple[str, str]:
    """A database as foundry-tui made it when ``upto`` migrations existed (they are
    frozen, so running the first ``upto`` is what it ran), with one conversation."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    db = Database(conn, execute_plugins=False)
    conn.execute(OLD_MIGRATIONS_TABLE)
    for fn in migrations.MIGRATIONS[:upto]:
        fn(db)
        conn.execute(
            "INSERT INTO _foundry_migrations VALUES (?, '2026-01-01T00:00:00+00:00')",
            [fn.__name__],
        )
    conn.execute(f"PRAGMA user_version = {upto}")
    conn.execute(
        "INSERT INTO conversations (id, title, profile, model, created_at, updated_at) "
        "VALUES ('c1', 'Older title', 'p', 'm', '2026-01-01', '2026-01-01')"
    )
    conn.execute(
        "INSERT INTO messages (id, conversation_id, role, text, status, created_at, "
        "updated_at) VALUES ('m1', 'c1', 'user', 'an older prompt', 'completed', "
        "'2026-01-01', '2026-01-01')"
    )
    conn.execute("UPDATE conversations SET head_message_id = 'm1' WHERE id = 'c1'")
    conn.close()
    return "c1", "m1"


def schema(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master "
            "WHERE name != '_foundry_migrations' AND name NOT LIKE 'sqlite^_%' ESCAPE '^' "
            "ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()
    return [(kind, name, " ".join((sql or "").split())) for kind, name, sql in rows]


@pytest.mark.parametrize("upto", range(1, migrations.SCHEMA_VERSION + 1))
def test_a_database_of_an_earlier_version_opens_and_migrates(tmp_path: Path, upto: int) -> None:
    old = tmp_path / "old.db"
    conversation_id, message_id = make_old_database(old, upto)
    with Store.open(old) as store:
        assert store.schema_version == migrations.SCHEMA_VERSION
        assert [m.id for m in store.transcript(conversation_id)] == [message_id]
        # the search index covers the rows written before it existed
        assert [s.id for s in store.list_conversations(search="older prompt")] == [conversation_id]
        assert [s.id for s in store.list_conversations(search="older title")] == [conversation_id]
        store.rename_conversation(conversation_id, "renamed")
        store.add_message(
            conversation_id=conversation_id, role=ASSISTANT, text="new", status=COMPLETED
        )
    fresh = tmp_path / "fresh.db"
    Store.open(fresh).close()
    assert schema(old) == schema(fresh)


def test_a_migration_can_transform_a_table_others_reference(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`transform` rebuilds `conversations`, which messages reference ON DELETE CASCADE:
    no message is lost, and the title's search triggers survive the rebuild."""
    with Store.open(db_path) as store:
        c = store.create_conversation(profile="p", settings=SETTINGS, title="alpha")
        store.add_message(conversation_id=c.id, role=USER, text="kept", status=COMPLETED)

    def m999_profile_default(db: object) -> None:
        migrations.transform(db, "conversations", defaults={"profile": "default"})  # type: ignore[arg-type]

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m999_profile_default])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", migrations.SCHEMA_VERSION + 1)
    monkeypatch.setattr(
        migrations, "KNOWN_MIGRATIONS", migrations.KNOWN_MIGRATIONS | {"m999_profile_default"}
    )
    with Store.open(db_path) as store:
        assert store.schema_version == migrations.SCHEMA_VERSION
        assert [m.text for m in store.transcript(c.id)] == ["kept"]
        store.rename_conversation(c.id, "omega")
        assert [s.id for s in store.list_conversations(search="omega")] == [c.id]
        assert store.list_conversations(search="alpha") == []
        store.delete_conversation(c.id)  # foreign keys are on again: the cascade works
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
        default = conn.execute(
            "SELECT dflt_value FROM pragma_table_info('conversations') WHERE name = 'profile'"
        ).fetchone()[0]
        assert default == "'default'"
        conn.execute("INSERT INTO conversations_fts (conversations_fts) VALUES ('integrity-check')")
    finally:
        conn.close()


def test_a_migration_that_breaks_a_foreign_key_is_undone(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(db_path) as store:
        c = store.create_conversation(profile="p", settings=SETTINGS)
        store.add_message(conversation_id=c.id, role=USER, text="kept", status=COMPLETED)

    def m999_orphans(db: object) -> None:
        db.execute("UPDATE messages SET conversation_id = 'nowhere'")  # type: ignore[attr-defined]

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m999_orphans])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", migrations.SCHEMA_VERSION + 1)
    monkeypatch.setattr(
        migrations, "KNOWN_MIGRATIONS", migrations.KNOWN_MIGRATIONS | {"m999_orphans"}
    )
    with pytest.raises(StoreError, match=r"(?i)foreign key"):
        Store.open(db_path)
    monkeypatch.undo()
    with Store.open(db_path) as store:
        assert [m.text for m in store.transcript(c.id)] == ["kept"]


def test_counting_turns_reads_an_index_not_the_message_rows(tmp_path: Path) -> None:
    """`foundry-tui history` counts every listed conversation's prompts: over 10,000
    conversations that read 200,000 message rows (0.14 s) until an index covered it."""
    Store.open(tmp_path / "h.db").close()
    conn = sqlite3.connect(tmp_path / "h.db")
    try:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT conversation_id, COUNT(*) FROM messages "
            "WHERE role = 'user' AND conversation_id IN ('a', 'b') GROUP BY conversation_id"
        ).fetchall()
    finally:
        conn.close()
    assert any("COVERING INDEX messages_conversation_role" in row[-1] for row in plan), plan
