"""The figures behind the store's raw-SQL exceptions to sqlite-utils (foundry_tui/store).

    python benchmarks/store_access.py

Prints, each the median of several tries on this machine:

* ``import sqlite_utils`` in a fresh interpreter (what a path that uses it first pays);
* a turn's writes (one ``add_message`` transaction per message, then an ``update_message``
  of its text and status), 1,000 times, through ``table.insert``/``table.update`` and
  through the raw statements the store uses;
* the history list over 10,000 conversations (its one JSON row) through ``db.query``
  and through ``conn.execute``;
* what ``enable_fts(create_triggers=True)`` would cost the turn path: its update trigger
  re-indexes a message on every UPDATE (a status or token count included), ours only
  when ``text`` changes; timed on a 1 MB reply.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from foundry_tui.core.models import GenerationSettings, MessageStatus
from foundry_tui.store import Store
from foundry_tui.store.rows import now_iso

TRIES = 5


def median_of(fn: Callable[[], float], tries: int = TRIES) -> float:
    return statistics.median(fn() for _ in range(tries))


def import_seconds() -> float:
    code = (
        "import time; t = time.perf_counter(); import sqlite_utils; print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def _fresh(folder: Path) -> tuple[Store, str]:
    store = Store.open(folder / f"{uuid.uuid4().hex}.db")
    conversation = store.create_conversation(profile="p", settings=GenerationSettings(model="m"))
    return store, conversation.id


def _message(conversation_id: str, text: str) -> dict[str, object]:
    now = now_iso()
    return {
        "id": uuid.uuid4().hex,
        "conversation_id": conversation_id,
        "parent_id": None,
        "role": "assistant",
        "text": text,
        "status": MessageStatus.PENDING.value,
        "created_at": now,
        "updated_at": now,
    }


def turn_writes(folder: Path, *, through_sqlite_utils: bool, n: int = 1000) -> float:
    store, cid = _fresh(folder)
    conn = store._connection()
    db = store._db
    columns = ", ".join(_message(cid, "").keys())
    insert_sql = f"INSERT INTO messages ({columns}) VALUES ({', '.join('?' * 8)})"
    start = time.perf_counter()
    for _ in range(n):
        row = _message(cid, "a reply of a few words")
        conn.execute("BEGIN IMMEDIATE")
        if through_sqlite_utils:
            seq = db.table("messages").insert(row).last_pk
            db.table("messages").update(seq, {"status": "completed", "updated_at": now_iso()})
        else:
            conn.execute(insert_sql, list(row.values()))
            conn.execute(
                "UPDATE messages SET status = ?, updated_at = ? WHERE id = ?",
                ["completed", now_iso(), row["id"]],
            )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def history_list(folder: Path, n: int = 10_000) -> tuple[float, float]:
    """(db.query, conn.execute) medians, interleaved on one database."""
    from foundry_tui.store import reads

    store, _ = _fresh(folder)
    conn = store._connection()
    conn.execute("BEGIN")
    for i in range(n):
        conn.execute(
            "INSERT INTO conversations (id, title, profile, model, created_at, updated_at) "
            "VALUES (?, ?, 'p', 'm', ?, ?)",
            [uuid.uuid4().hex, f"conversation {i}", now_iso(), now_iso()],
        )
    conn.execute("COMMIT")
    query = reads.summary_query(None, n)
    assert query is not None
    sql, params = query
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(9):
        for through_sqlite_utils in (True, False):
            start = time.perf_counter()
            if through_sqlite_utils:
                packed = next(iter(next(iter(store._db.query(sql, params))).values()))
            else:
                packed = conn.execute(sql, params).fetchone()[0]
            assert len(reads.summaries_from_json(packed)) == n
            times[through_sqlite_utils].append(time.perf_counter() - start)
    store.close()
    return statistics.median(times[True]), statistics.median(times[False])


def status_update_on_big_reply(folder: Path, *, every_update_reindexes: bool) -> float:
    store, cid = _fresh(folder)
    conn = store._connection()
    if every_update_reindexes:  # the trigger enable_fts(create_triggers=True) makes
        conn.execute("DROP TRIGGER messages_fts_au")
        conn.execute(
            "CREATE TRIGGER messages_fts_au AFTER UPDATE ON messages BEGIN "
            "INSERT INTO messages_fts (messages_fts, rowid, text) "
            "VALUES ('delete', old.seq, old.text); "
            "INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text); END"
        )
    words = " ".join(f"word{i % 5000}" for i in range(120_000))  # ~1.1 MB
    message = store.add_message(
        conversation_id=cid, role="assistant", text=words, status=MessageStatus.PENDING
    )

    def once() -> float:
        start = time.perf_counter()
        store.update_message(message.id, status=MessageStatus.COMPLETED)
        return time.perf_counter() - start

    result = median_of(once)
    store.close()
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        listed = history_list(folder)
        rows = [
            ("import sqlite_utils (fresh interpreter)", median_of(import_seconds)),
            (
                "1,000 turn writes: table.insert + table.update",
                median_of(lambda: turn_writes(folder, through_sqlite_utils=True)),
            ),
            (
                "1,000 turn writes: raw INSERT + UPDATE",
                median_of(lambda: turn_writes(folder, through_sqlite_utils=False)),
            ),
            ("history list, 10,000 conversations: db.query", listed[0]),
            ("history list, 10,000 conversations: conn.execute", listed[1]),
            (
                "status update of a 1 MB reply: enable_fts trigger (any UPDATE)",
                status_update_on_big_reply(folder, every_update_reindexes=True),
            ),
            (
                "status update of a 1 MB reply: our trigger (UPDATE OF text)",
                status_update_on_big_reply(folder, every_update_reindexes=False),
            ),
        ]
    for name, seconds in rows:
        print(f"{name:<66} {seconds * 1000:9.2f} ms")


if __name__ == "__main__":
    main()
