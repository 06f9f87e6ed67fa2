"""Tests for foundry_tui.store and foundry_tui.store.migrations."""

from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from foundry_tui.core.models import (
    ConversationSummary,
    GenerationSettings,
    MessageRole,
    MessageStatus,
    ServerState,
    Usage,
)
from foundry_tui.store import (
    ROOT,
    CorruptDatabaseError,
    NewerSchemaError,
    NotFoundError,
    Store,
    StoreError,
    StoreWriteError,
    migrations,
    title_from_prompt,
)

USER = MessageRole.USER
ASSISTANT = MessageRole.ASSISTANT
COMPLETED = MessageStatus.COMPLETED
PENDING = MessageStatus.PENDING

SETTINGS = GenerationSettings(model="gpt-4o")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store.open(db_path)
    yield s
    s.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raw_connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def count(path: Path, table: str) -> int:
    conn = raw_connect(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# Conversations


def test_create_get_list_rename_delete(store: Store) -> None:
    a = store.create_conversation(profile="work", settings=SETTINGS, title="First")
    b = store.create_conversation(profile="home", settings=GenerationSettings(model="o3"))
    assert a.id != b.id
    assert a.created_at == a.updated_at
    assert a.created_at.endswith("+00:00") and "." in a.created_at  # UTC, microseconds
    assert store.get_conversation(a.id) == a
    assert store.get_conversation("nope") is None

    listed = store.list_conversations()
    assert [s.id for s in listed] == [b.id, a.id]  # newest first
    assert listed[0].model == "o3" and listed[1].title == "First"
    assert [s.id for s in store.list_conversations(limit=1)] == [b.id]

    store.add_message(conversation_id=a.id, role=USER, text="bump", status=COMPLETED)
    assert [s.id for s in store.list_conversations()] == [a.id, b.id]

    store.rename_conversation(b.id, "Renamed")
    renamed = store.get_conversation(b.id)
    assert renamed is not None and renamed.title == "Renamed"

    store.delete_conversation(a.id)
    assert store.get_conversation(a.id) is None
    assert [s.id for s in store.list_conversations()] == [b.id]
    store.delete_conversation("does-not-exist")  # no-op
    store.rename_conversation("does-not-exist", "x")  # no-op


def test_delete_removes_messages(store: Store, db_path: Path) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS)
    keep = store.create_conversation(profile="p", settings=SETTINGS)
    m1 = store.add_message(conversation_id=c.id, role=USER, text="hi", status=COMPLETED)
    m2 = store.add_message(conversation_id=c.id, role=ASSISTANT, text="yo", status=COMPLETED)
    store.add_message(
        conversation_id=c.id, role=USER, text="alt", status=COMPLETED, parent_id=m1.id
    )
    k = store.add_message(conversation_id=keep.id, role=USER, text="stay", status=COMPLETED)
    store.delete_conversation(c.id)
    assert store.get_message(m1.id) is None and store.get_message(m2.id) is None
    assert store.get_message(k.id) is not None
    assert count(db_path, "messages") == 1


def test_settings_round_trip_with_none_values(store: Store) -> None:
    full = GenerationSettings(
        model="gpt-4.1",
        instructions="Be terse.\nReally.",
        temperature=0.2,
        top_p=0.9,
        max_output_tokens=1234,
    )
    c = store.create_conversation(profile="p", settings=full)
    got = store.get_conversation(c.id)
    assert got is not None and got.settings == full

    bare = GenerationSettings(model="o4-mini")
    store.update_settings(c.id, bare)
    got = store.get_conversation(c.id)
    assert got is not None and got.settings == bare
    assert got.settings.temperature is None and got.settings.instructions is None

    store.update_settings(c.id, GenerationSettings(model="m", temperature=0, top_p=1))
    got = store.get_conversation(c.id)
    assert got is not None
    assert got.settings.temperature == 0 and got.settings.top_p == 1
    assert store.list_conversations()[0].model == "m"


def test_server_state(store: Store) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS)
    assert c.server_state is ServerState.UNKNOWN
    store.set_server_state(c.id, ServerState.LIVE)
    got = store.get_conversation(c.id)
    assert got is not None and got.server_state is ServerState.LIVE
    store.set_server_state(c.id, ServerState.EXPIRED)
    assert store.list_conversations()[0].server_state is ServerState.EXPIRED


def test_find_conversation_by_response_id(store: Store) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS)
    store.add_message(conversation_id=c.id, role=USER, text="q", status=COMPLETED)
    a = store.add_message(conversation_id=c.id, role=ASSISTANT, text="", status=PENDING)
    assert store.find_conversation_by_response_id("resp_1") is None
    store.update_message(a.id, response_id="resp_1")
    found = store.find_conversation_by_response_id("resp_1")
    assert found is not None and found.id == c.id and found.head_message_id == a.id
    # also found when given at insert time
    b = store.add_message(
        conversation_id=c.id, role=ASSISTANT, text="x", status=COMPLETED, response_id="resp_2"
    )
    found = store.find_conversation_by_response_id("resp_2")
    assert found is not None and found.head_message_id == b.id


# ---------------------------------------------------------------------------
# Messages


def test_add_update_and_transcript(store: Store) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS)
    u = store.add_message(
        conversation_id=c.id, role=USER, text="Hello", status=COMPLETED, model="gpt-4o"
    )
    assert u.parent_id is None
    a = store.add_message(
        conversation_id=c.id,
        role=ASSISTANT,
        text="",
        status=PENDING,
        model="gpt-4o",
        previous_response_id="resp_prev",
    )
    assert a.parent_id == u.id
    conv = store.get_conversation(c.id)
    assert conv is not None and conv.head_message_id == a.id
    assert conv.updated_at == a.created_at

    store.update_message(a.id, text="Hi there")
    got = store.get_message(a.id)
    assert got is not None
    assert got.text == "Hi there" and got.status is PENDING  # only text changed
    assert got.previous_response_id == "resp_prev" and got.model == "gpt-4o"

    store.update_message(
        a.id,
        status=COMPLETED,
        response_id="resp_1",
        response_model="gpt-4o-2024-08-06",
        usage=Usage(input_tokens=10, output_tokens=5, total_tokens=15),
    )
    got = store.get_message(a.id)
    assert got is not None
    assert got.text == "Hi there" and got.status is COMPLETED
    assert got.response_id == "resp_1" and got.response_model == "gpt-4o-2024-08-06"
    assert got.usage == Usage(10, 5, 15) and got.error is None

    store.update_message(a.id, status=MessageStatus.FAILED, error="Boom.")
    got = store.get_message(a.id)
    assert got is not None and got.error == "Boom." and got.usage == Usage(10, 5, 15)
    store.update_message(a.id)  # nothing to change
    store.update_message("missing", text="x")  # no-op

    t = store.transcript(c.id)
    assert [m.id for m in t] == [u.id, a.id]
    assert t[1] == got
    assert store.get_message("missing") is None
    assert store.transcript("missing") == []


def test_transcript_newest_reads_only_the_latest_messages(store: Store) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS)
    ids = [
        store.add_message(
            conversation_id=c.id,
            role=USER if i % 2 == 0 else ASSISTANT,
            text=f"m{i}",
            status=COMPLETED,
        ).id
        for i in range(7)
    ]
    assert [m.id for m in store.transcript(c.id, newest=3)] == ids[-3:]
    assert [m.id for m in store.transcript(c.id, newest=1)] == ids[-1:]
    assert [m.id for m in store.transcript(c.id, newest=50)] == ids
    assert store.transcript("missing", newest=3) == []


def test_a_text_too_big_for_the_json_row_is_read_whole(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from foundry_tui.store import reads as store_reads

    monkeypatch.setattr(store_reads, "BIG_TEXT", 1000)  # the rule, at a test's size
    c = store.create_conversation(profile="p", settings=SETTINGS)
    big = 'é"quoted"\n' * 200  # over the limit, with what JSON escapes
    texts = ["small", big, "after"]
    for i, text in enumerate(texts):
        role = USER if i % 2 == 0 else ASSISTANT
        store.add_message(conversation_id=c.id, role=role, text=text, status=COMPLETED)
    assert [m.text for m in store.transcript(c.id)] == texts
    assert [m.text for m in store.transcript(c.id, newest=2)] == texts[1:]
    # ...and it was left out of the JSON row, not decoded from it.
    with store._read() as conn:
        row = store_reads.transcript_json(conn, c.id, None)
    assert big not in row[0] and "small" in row[0]


def test_transcript_follows_head_through_branches(store: Store) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS)
    u1 = store.add_message(conversation_id=c.id, role=USER, text="one", status=COMPLETED)
    a1 = store.add_message(conversation_id=c.id, role=ASSISTANT, text="1", status=COMPLETED)
    u2 = store.add_message(conversation_id=c.id, role=USER, text="two", status=COMPLETED)
    a2 = store.add_message(conversation_id=c.id, role=ASSISTANT, text="2", status=COMPLETED)
    assert [m.id for m in store.transcript(c.id)] == [u1.id, a1.id, u2.id, a2.id]

    # edit the second prompt: a sibling of u2
    u2b = store.add_message(
        conversation_id=c.id, role=USER, text="two, edited", status=COMPLETED, parent_id=a1.id
    )
    a2b = store.add_message(conversation_id=c.id, role=ASSISTANT, text="2b", status=COMPLETED)
    assert u2b.parent_id == a1.id and a2b.parent_id == u2b.id
    assert [m.id for m in store.transcript(c.id)] == [u1.id, a1.id, u2b.id, a2b.id]

    store.set_head(c.id, a2.id)
    assert [m.id for m in store.transcript(c.id)] == [u1.id, a1.id, u2.id, a2.id]

    # a brand-new root (edited first prompt)
    r = store.add_message(
        conversation_id=c.id, role=USER, text="zero", status=COMPLETED, parent_id=ROOT
    )
    assert r.parent_id is None
    assert [m.id for m in store.transcript(c.id)] == [r.id]


def test_add_message_rejects_unknown_conversation_or_foreign_parent(store: Store) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS)
    other = store.create_conversation(profile="p", settings=SETTINGS)
    foreign = store.add_message(conversation_id=other.id, role=USER, text="x", status=COMPLETED)
    with pytest.raises(NotFoundError):
        store.add_message(conversation_id="nope", role=USER, text="x", status=COMPLETED)
    with pytest.raises(NotFoundError):
        store.add_message(
            conversation_id=c.id, role=USER, text="x", status=COMPLETED, parent_id=foreign.id
        )
    with pytest.raises(NotFoundError):
        store.add_message(
            conversation_id=c.id, role=USER, text="x", status=COMPLETED, parent_id="missing"
        )
    with pytest.raises(NotFoundError):
        store.set_head(c.id, foreign.id)
    assert store.transcript(c.id) == []
    got = store.get_conversation(c.id)
    assert got is not None and got.title == "" and got.head_message_id is None


def test_title_from_first_prompt(store: Store) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS)
    store.add_message(conversation_id=c.id, role=ASSISTANT, text="not me", status=COMPLETED)
    got = store.get_conversation(c.id)
    assert got is not None and got.title == ""
    store.add_message(
        conversation_id=c.id,
        role=USER,
        text="\n   Explain   the\tdifference between " + "very " * 20 + "things\nsecond line",
        status=COMPLETED,
    )
    got = store.get_conversation(c.id)
    assert got is not None
    assert got.title.startswith("Explain the difference between very")
    assert len(got.title) <= 60 and got.title.endswith("…")
    store.add_message(conversation_id=c.id, role=USER, text="Another", status=COMPLETED)
    again = store.get_conversation(c.id)
    assert again is not None and again.title == got.title  # only the first prompt

    named = store.create_conversation(profile="p", settings=SETTINGS, title="Mine")
    store.add_message(conversation_id=named.id, role=USER, text="Hello", status=COMPLETED)
    got = store.get_conversation(named.id)
    assert got is not None and got.title == "Mine"


def test_title_from_prompt_helper() -> None:
    assert title_from_prompt("  short  one \n two") == "short one"
    assert title_from_prompt("\n\n  \n") == ""
    long = title_from_prompt("x" * 100)
    assert len(long) == 60 and long == "x" * 59 + "…"
    assert title_from_prompt("y" * 60) == "y" * 60


def test_mark_interrupted(store: Store) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS)
    u = store.add_message(conversation_id=c.id, role=USER, text="q", status=PENDING)
    a = store.add_message(conversation_id=c.id, role=ASSISTANT, text="par", status=PENDING)
    done = store.add_message(conversation_id=c.id, role=ASSISTANT, text="ok", status=COMPLETED)
    d = store.create_conversation(profile="p", settings=SETTINGS)
    b = store.add_message(conversation_id=d.id, role=ASSISTANT, text="", status=PENDING)

    assert store.mark_interrupted() == 2
    statuses = {m: store.get_message(m) for m in (u.id, a.id, done.id, b.id)}
    assert {k: v.status if v else None for k, v in statuses.items()} == {
        u.id: PENDING,
        a.id: MessageStatus.INTERRUPTED,
        done.id: COMPLETED,
        b.id: MessageStatus.INTERRUPTED,
    }
    assert store.mark_interrupted() == 0


def test_conversation_usage_sums_transcript_assistant_messages(store: Store) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS)
    assert store.conversation_usage(c.id) == Usage()
    store.add_message(conversation_id=c.id, role=USER, text="q", status=COMPLETED)
    a1 = store.add_message(conversation_id=c.id, role=ASSISTANT, text="a", status=COMPLETED)
    store.update_message(a1.id, usage=Usage(10, 5, 15))
    u2 = store.add_message(conversation_id=c.id, role=USER, text="q2", status=COMPLETED)
    a2 = store.add_message(conversation_id=c.id, role=ASSISTANT, text="b", status=COMPLETED)
    store.update_message(a2.id, usage=Usage(30, 7, 37))
    # an abandoned branch does not count
    side = store.add_message(
        conversation_id=c.id, role=ASSISTANT, text="alt", status=COMPLETED, parent_id=u2.id
    )
    store.update_message(side.id, usage=Usage(1000, 1000, 2000))
    store.set_head(c.id, a2.id)
    # a user message carrying usage does not count either
    assert store.conversation_usage(c.id) == Usage(40, 12, 52)
    store.set_head(c.id, side.id)
    assert store.conversation_usage(c.id) == Usage(1010, 1005, 2015)
    assert store.conversation_usage("missing") == Usage()


# ---------------------------------------------------------------------------
# Full-text search


def ids(summaries: list[ConversationSummary]) -> set[str]:
    return {s.id for s in summaries}


def test_search_messages_and_titles(store: Store) -> None:
    a = store.create_conversation(profile="p", settings=SETTINGS, title="Kubernetes notes")
    store.add_message(
        conversation_id=a.id, role=USER, text="How do pods restart?", status=COMPLETED
    )
    b = store.create_conversation(profile="p", settings=SETTINGS)
    store.add_message(
        conversation_id=b.id, role=USER, text="Recipe for crème brûlée", status=COMPLETED
    )
    r = store.add_message(
        conversation_id=b.id, role=ASSISTANT, text="Use vanilla and sugar.", status=COMPLETED
    )

    assert ids(store.list_conversations(search="kubernetes")) == {a.id}  # title
    assert ids(store.list_conversations(search="pods")) == {a.id}  # message
    assert ids(store.list_conversations(search="kube")) == {a.id}  # prefix
    assert ids(store.list_conversations(search="VANIL")) == {b.id}  # case-insensitive
    assert ids(store.list_conversations(search="creme brulee")) == {b.id}  # diacritics
    assert ids(store.list_conversations(search="vanilla sugar")) == {b.id}  # all terms
    assert store.list_conversations(search="vanilla pods") == []
    assert ids(store.list_conversations(search="re")) == {a.id, b.id}
    assert len(store.list_conversations(search="re", limit=1)) == 1
    assert store.list_conversations(search="zebra") == []
    # whitespace only = no search; punctuation only = nothing can match
    assert len(store.list_conversations(search="   ")) == 2
    assert store.list_conversations(search="?! --") == []
    # FTS syntax in the query is taken literally
    for nasty in ('"', 'pods"', "NEAR(pods", "pods AND", "*", "title:x", "a OR b)", "'; DROP"):
        store.list_conversations(search=nasty)

    # kept in sync: update, rename, delete
    store.update_message(r.id, text="Use honey instead.")
    assert store.list_conversations(search="vanilla") == []
    assert ids(store.list_conversations(search="honey")) == {b.id}
    store.rename_conversation(a.id, "Cluster questions")
    assert ids(store.list_conversations(search="kubernetes")) == set()
    assert ids(store.list_conversations(search="cluster")) == {a.id}
    store.delete_conversation(b.id)
    assert store.list_conversations(search="honey") == []
    assert store.list_conversations(search="recipe") == []
    # the title set from the first prompt is searchable too
    c = store.create_conversation(profile="p", settings=SETTINGS)
    store.add_message(conversation_id=c.id, role=USER, text="Quantum tunnelling", status=COMPLETED)
    store.update_message(store.transcript(c.id)[0].id, text="something else")
    assert ids(store.list_conversations(search="quantum")) == {c.id}  # via its title


def test_search_index_integrity(store: Store, db_path: Path) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS, title="t")
    m = store.add_message(conversation_id=c.id, role=USER, text="alpha beta", status=COMPLETED)
    store.update_message(m.id, text="gamma")
    store.update_message(m.id, status=COMPLETED)
    store.rename_conversation(c.id, "delta")
    store.close()
    conn = raw_connect(db_path)
    try:
        for fts in ("messages_fts", "conversations_fts"):
            conn.execute(f"INSERT INTO {fts} ({fts}) VALUES ('integrity-check')")
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# Migrations


def test_migrations_recorded_and_idempotent(db_path: Path) -> None:
    # Migrations are numbered in their names, from 1, none skipped: the newest one's
    # number is the schema version a fresh database must record.
    numbers = [int(fn.__name__.split("_", 1)[0].removeprefix("m")) for fn in migrations.MIGRATIONS]
    assert numbers == list(range(1, len(numbers) + 1))
    newest = numbers[-1]
    s = Store.open(db_path)
    assert s.schema_version == newest
    c = s.create_conversation(profile="p", settings=SETTINGS)
    s.close()

    conn = raw_connect(db_path)
    try:
        rows = conn.execute("SELECT name, applied_at FROM _foundry_migrations").fetchall()
        # every migration ran once, in order
        assert [r[0] for r in rows] == [fn.__name__ for fn in migrations.MIGRATIONS]
        assert all(r[1] for r in rows)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == newest
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {
            "conversations",
            "messages",
            "messages_fts",
            "conversations_fts",
            "conversations_updated_at",
            "messages_conversation_id",
            "messages_response_id",
        } <= tables
    finally:
        conn.close()

    s2 = Store.open(db_path)  # reopen: nothing re-applied, data intact
    try:
        assert s2.get_conversation(c.id) is not None
        assert s2.schema_version == newest
    finally:
        s2.close()
    assert count(db_path, "_foundry_migrations") == len(numbers)  # none ran again


def test_newer_schema_unknown_migration_leaves_file_untouched(db_path: Path) -> None:
    Store.open(db_path).close()
    conn = raw_connect(db_path)
    conn.execute("INSERT INTO _foundry_migrations (name, applied_at) VALUES ('m999_future', 'x')")
    conn.close()
    before = sha256(db_path)
    with pytest.raises(NewerSchemaError) as info:
        Store.open(db_path)
    assert str(db_path) in str(info.value)
    assert info.value.path == db_path
    assert "m999_future" in info.value.unknown_migrations
    assert sha256(db_path) == before
    with pytest.raises(NewerSchemaError):  # still refuses, still untouched
        Store.open(db_path)
    assert sha256(db_path) == before


def test_newer_schema_user_version_rollback_journal_untouched(db_path: Path) -> None:
    conn = raw_connect(db_path)  # a rollback-journal db: WAL would rewrite its header
    conn.execute("CREATE TABLE x (y)")
    conn.execute(f"PRAGMA user_version = {migrations.SCHEMA_VERSION + 1}")
    conn.close()
    before = sha256(db_path)
    with pytest.raises(NewerSchemaError):
        Store.open(db_path)
    assert sha256(db_path) == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["history.db"]


def test_migrate_refuses_newer_schema_directly(db_path: Path) -> None:
    """migrations.migrate() guards itself too (e.g. a newer app migrated meanwhile)."""
    from sqlite_utils import Database

    conn = raw_connect(db_path)
    conn.execute(f"PRAGMA user_version = {migrations.SCHEMA_VERSION + 5}")
    with pytest.raises(migrations.SchemaTooNewError):
        migrations.migrate(Database(conn, execute_plugins=False))
    conn.close()


# ---------------------------------------------------------------------------
# Corruption


def test_random_bytes_is_corrupt_and_untouched(db_path: Path) -> None:
    db_path.write_bytes(os.urandom(8192))
    before = sha256(db_path)
    with pytest.raises(CorruptDatabaseError) as info:
        Store.open(db_path)
    assert info.value.path == db_path
    assert str(db_path) in str(info.value)
    assert isinstance(info.value, StoreError)
    assert sha256(db_path) == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["history.db"]

    fresh = Store.fresh_path_beside(db_path)
    assert fresh.parent == db_path.parent and not fresh.exists() and fresh != db_path
    assert fresh.name.startswith("history-") and fresh.suffix == ".db"
    fresh.touch()
    assert Store.fresh_path_beside(db_path) not in (fresh, db_path)
    fresh.unlink()
    with Store.open(fresh) as s:
        s.create_conversation(profile="p", settings=SETTINGS)
    assert sha256(db_path) == before


def test_damaged_schema_page_is_corrupt_and_untouched(db_path: Path) -> None:
    with Store.open(db_path) as s:
        s.create_conversation(profile="p", settings=SETTINGS)
    data = bytearray(db_path.read_bytes())
    data[100:4096] = os.urandom(3996)  # keep the header, wreck the schema page
    db_path.write_bytes(bytes(data))
    before = sha256(db_path)
    with pytest.raises(CorruptDatabaseError):
        Store.open(db_path)
    assert sha256(db_path) == before


# ---------------------------------------------------------------------------
# Write failures


def test_disk_full_leaves_no_partial_rows(store: Store, db_path: Path) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS)
    first = store.add_message(conversation_id=c.id, role=USER, text="small", status=COMPLETED)
    conn = store._conn
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")

    with pytest.raises(StoreWriteError) as info:
        store.add_message(conversation_id=c.id, role=ASSISTANT, text="x" * 200_000, status=PENDING)
    assert "disk is full" in str(info.value) and str(db_path) in str(info.value)
    with pytest.raises(StoreWriteError):
        store.update_message(first.id, text="y" * 200_000)

    # nothing of the failed writes is visible, here or to another connection
    conv = store.get_conversation(c.id)
    assert conv is not None and conv.head_message_id == first.id
    assert [m.id for m in store.transcript(c.id)] == [first.id]
    got = store.get_message(first.id)
    assert got is not None and got.text == "small"
    assert count(db_path, "messages") == 1
    assert store.list_conversations(search="small")

    # the store keeps working once there is room again
    conn.execute("PRAGMA max_page_count = 1073741823")
    store.add_message(conversation_id=c.id, role=ASSISTANT, text="x" * 200_000, status=PENDING)
    assert count(db_path, "messages") == 2


def test_read_only_maps_to_store_write_error(store: Store, db_path: Path) -> None:
    c = store.create_conversation(profile="p", settings=SETTINGS)
    conn = store._conn
    assert conn is not None
    conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreWriteError) as info:
        store.add_message(conversation_id=c.id, role=USER, text="hello", status=COMPLETED)
    assert "read-only" in str(info.value) and str(db_path) in str(info.value)
    with pytest.raises(StoreWriteError):
        store.rename_conversation(c.id, "new")
    assert store.list_conversations()[0].title == ""  # reads still work
    assert count(db_path, "messages") == 0
    conn.execute("PRAGMA query_only = OFF")
    store.rename_conversation(c.id, "new")


def test_cannot_create_parent_is_store_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(StoreWriteError) as info:
        Store.open(blocker / "sub" / "history.db")
    assert str(blocker / "sub" / "history.db") in str(info.value)


def test_closed_store_raises_store_error(db_path: Path) -> None:
    s = Store.open(db_path)
    s.close()
    s.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        s.list_conversations()


# ---------------------------------------------------------------------------
# File system


def test_file_and_directory_modes(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    path = existing / "a" / "b" / "history.db"
    with Store.open(path) as s:
        s.create_conversation(profile="p", settings=SETTINGS)
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if p.exists():
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((existing / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((existing / "a" / "b").stat().st_mode) == 0o700
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755  # not ours: untouched


def test_import_touches_nothing(tmp_path: Path) -> None:
    import subprocess

    code = "import foundry_tui.store, foundry_tui.store.migrations"
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    env["PYTHONPATH"] = str(root)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# Concurrency


def test_two_stores_writing_concurrently(db_path: Path) -> None:
    s1 = Store.open(db_path)
    s2 = Store.open(db_path)
    try:
        shared = s1.create_conversation(profile="p", settings=SETTINGS)
        errors: list[BaseException] = []
        per_thread = 200

        def work(store: Store, tag: str) -> None:
            try:
                own = store.create_conversation(profile=tag, settings=SETTINGS)
                for i in range(per_thread):
                    store.add_message(
                        conversation_id=shared.id, role=USER, text=f"{tag} {i}", status=COMPLETED
                    )
                    m = store.add_message(
                        conversation_id=own.id, role=ASSISTANT, text="", status=PENDING
                    )
                    store.update_message(m.id, text=f"{tag} reply {i}", status=COMPLETED)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(s1, "one")),
            threading.Thread(target=work, args=(s2, "two")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []

        # the shared conversation is one unbroken chain holding every message
        chain = s2.transcript(shared.id)
        assert len(chain) == 2 * per_thread
        assert {m.text for m in chain} == {
            f"{t} {i}" for t in ("one", "two") for i in range(per_thread)
        }
        assert chain[0].parent_id is None
        assert all(b.parent_id == a.id for a, b in itertools.pairwise(chain))
        assert count(db_path, "messages") == 4 * per_thread
        assert len(s1.list_conversations()) == 3
        assert len(s1.list_conversations(search="reply")) == 2
    finally:
        s1.close()
        s2.close()


def test_one_store_shared_by_threads(store: Store) -> None:
    errors: list[BaseException] = []
    n_threads, per_thread = 8, 40
    stop = threading.Event()

    def writer(k: int) -> None:
        try:
            c = store.create_conversation(profile=f"t{k}", settings=SETTINGS)
            for i in range(per_thread):
                store.add_message(
                    conversation_id=c.id, role=USER, text=f"w{k} {i}", status=COMPLETED
                )
                store.set_server_state(c.id, ServerState.LIVE)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                for summary in store.list_conversations(search="w"):
                    store.transcript(summary.id)
                    store.conversation_usage(summary.id)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(n_threads)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    summaries = store.list_conversations()
    assert len(summaries) == n_threads
    for s in summaries:
        assert len(store.transcript(s.id)) == per_thread
        assert s.server_state is ServerState.LIVE
