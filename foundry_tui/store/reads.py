"""Reading the history database: one conversation or message, the history list (with
full-text search) and transcripts, each many-row read fetched as one JSON row.

A turn's reads are plain statements on the connection (see ``foundry_tui.store`` for
the figures); the history list, its search and the recalled prompts go through
sqlite-utils."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from foundry_tui.core.models import Attachment, ConversationSummary, Message, MessageRole
from foundry_tui.store.rows import (
    CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
    fetch_row,
    message_from_row,
    server_state,
)

if TYPE_CHECKING:
    from sqlite_utils import Database

# The history list comes back as ONE row holding a JSON array: the query runs in a worker
# thread, and Python's sqlite3 releases and retakes the GIL at every row it steps, so
# fetching hundreds of rows while the UI thread (or an import on another thread) holds
# the GIL waits up to a switch interval per row; one row waits once.
_SUMMARY_JSON: Final = (
    "SELECT json_group_array(json_array(id, title, model, updated_at, server_state, seq)) "
    "AS packed FROM ({rows})"
)
# Listed and archived conversations are two lists; each condition matches a partial index
# of m005, which SQLite walks in `updated_at` order (see benchmarks, big_history).
_LISTED: Final = "archived_at IS NULL"
_ARCHIVED: Final = "archived_at IS NOT NULL"
_LIST_ROWS: Final = (
    "SELECT id, title, model, updated_at, server_state, seq FROM conversations "
    "WHERE {which} ORDER BY updated_at DESC, seq DESC LIMIT :limit"
)
# Matching messages are read newest first (FTS5 walks its doclists by rowid DESC) and the
# walk stops at `limit` distinct conversations, so a broad term costs about as much as a
# narrow one. ORDER BY and LIMIT are SQLite's (a top-N sort over the matches).
# Hits in the other list's conversations are skipped inside the walk (one probe of the
# conversations' id index each), so they do not use up `limit`.
_SEARCH_ROWS: Final = """
    WITH message_hits (conversation_id) AS (
        SELECT DISTINCT m.conversation_id
        FROM messages_fts JOIN messages AS m ON m.seq = messages_fts.rowid
        WHERE messages_fts MATCH :q AND EXISTS (
            SELECT 1 FROM conversations AS c WHERE c.id = m.conversation_id AND c.{which}
        )
        ORDER BY messages_fts.rowid DESC
        LIMIT :limit
    )
    SELECT id, title, model, updated_at, server_state, seq FROM conversations
    WHERE (id IN (SELECT conversation_id FROM message_hits)
       OR seq IN (SELECT rowid FROM conversations_fts WHERE conversations_fts MATCH :q))
      AND {which}
    ORDER BY updated_at DESC, seq DESC
    LIMIT :limit
"""
_LIST_SQL: Final = {
    archived: _SUMMARY_JSON.format(rows=_LIST_ROWS.format(which=which))
    for archived, which in ((False, _LISTED), (True, _ARCHIVED))
}
_SEARCH_SQL: Final = {
    archived: _SUMMARY_JSON.format(rows=_SEARCH_ROWS.replace("{which}", which))
    for archived, which in ((False, _LISTED), (True, _ARCHIVED))
}

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

_MESSAGE_NAMES: Final = tuple(c.strip() for c in MESSAGE_COLUMNS.split(","))


def fts_query(search: str) -> str:
    """Each whitespace-separated term as a quoted prefix phrase; all must match."""
    terms = [term for term in search.split() if any(ch.isalnum() for ch in term)]
    return " ".join('"' + term.replace('"', '""') + '"*' for term in terms)


def summary_query(
    search: str | None, limit: int, *, archived: bool = False
) -> tuple[str, dict[str, Any]] | None:
    """The history list's SQL and parameters (``archived``: the archived conversations'
    list instead); None when ``search`` can match nothing."""
    if search is not None and search.strip():
        match = fts_query(search)
        if not match:
            return None
        return _SEARCH_SQL[archived], {"q": match, "limit": limit}
    return _LIST_SQL[archived], {"limit": limit}


def summaries_json(db: Database, sql: str, params: dict[str, Any]) -> str | None:
    """Runs a ``summary_query``: the one JSON row's text."""
    row = next(db.query(sql, params))
    return row["packed"]  # type: ignore[no-any-return]


def summaries_from_json(packed: str | None) -> list[ConversationSummary]:
    """The history list from the one JSON row ``summary_query`` returns."""
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
            server_state=server_state(state),
        )
        for id_, title, model, updated_at, state, _seq in rows
    ]


def get_conversation(conn: sqlite3.Connection, conversation_id: str) -> sqlite3.Row | None:
    return fetch_row(
        conn,
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?",
        [conversation_id],
    )


def find_conversation_by_response_id(
    conn: sqlite3.Connection, response_id: str
) -> sqlite3.Row | None:
    return fetch_row(
        conn,
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ("
        "SELECT conversation_id FROM messages WHERE response_id = ? LIMIT 1)",
        [response_id],
    )


def get_message(conn: sqlite3.Connection, message_id: str) -> sqlite3.Row | None:
    return fetch_row(conn, f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", [message_id])


# A text longer than this (in characters) leaves the JSON row and is read on its own:
# decoding a string out of JSON is Python's work with the GIL held (a 50 MB reply froze
# the screen 0.4-0.6 s on reopening), while a text column comes out of SQLite in one copy.
BIG_TEXT = 1 << 20


def transcript_json(conn: sqlite3.Connection, conversation_id: str, newest: int | None) -> Any:
    """The transcript's messages as one JSON row (see _SUMMARY_JSON), or None. A text
    over BIG_TEXT is NULL there: `big_texts` reads it."""
    names = _MESSAGE_NAMES
    columns = ", ".join(
        f"CASE WHEN length(m.text) > {BIG_TEXT} THEN NULL ELSE m.text END AS text"
        if name == "text"
        else f"m.{name}"
        for name in names
    )
    chain = _CHAIN_CTE
    if newest is not None:
        chain = chain.replace("chain.depth < 1000000", f"chain.depth < {max(0, newest - 1)}")
    return conn.execute(
        f"{chain} SELECT json_group_array(json_array(depth, {', '.join(names)})) "
        "FROM ("
        f"SELECT chain.depth AS depth, {columns} FROM chain JOIN messages AS m "
        "ON m.id = chain.id WHERE m.conversation_id = :cid ORDER BY chain.depth DESC)",
        {"cid": conversation_id},
    ).fetchone()


def all_messages_json(conn: sqlite3.Connection, conversation_id: str) -> Any:
    """Every message of the conversation, every branch, as one JSON row in the shape
    ``transcript_json`` returns, in the order they were written (a parent always before
    its children). The key ``messages_from_json`` sorts on is ``-seq``."""
    names = _MESSAGE_NAMES
    columns = ", ".join(
        f"CASE WHEN length(m.text) > {BIG_TEXT} THEN NULL ELSE m.text END"
        if name == "text"
        else f"m.{name}"
        for name in names
    )
    return conn.execute(
        f"SELECT json_group_array(json_array(-m.seq, {columns})) FROM messages AS m "
        "WHERE m.conversation_id = ?",
        [conversation_id],
    ).fetchone()


def tree_json(conn: sqlite3.Connection, conversation_id: str) -> list[tuple[str, str | None]]:
    """(id, parent_id) of every message of the conversation, oldest first: the shape of
    its branches, read as one row."""
    row = conn.execute(
        "SELECT json_group_array(json_array(id, parent_id)) FROM "
        "(SELECT id, parent_id FROM messages WHERE conversation_id = ? ORDER BY seq)",
        [conversation_id],
    ).fetchone()
    pairs: list[list[Any]] = json.loads(row[0]) if row and row[0] else []
    return [(id_, parent) for id_, parent in pairs]


def tree_version(conn: sqlite3.Connection, conversation_id: str) -> int:
    """The newest message's place in the table (0 with none): one step down the index."""
    row = conn.execute(
        "SELECT max(seq) FROM messages WHERE conversation_id = ?", [conversation_id]
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def newest_match(conn: sqlite3.Connection, conversation_id: str, search: str) -> str | None:
    """The id of the conversation's newest message with a word starting with each term of
    ``search`` (as the history list searches), or None."""
    match = fts_query(search)
    if not match:
        return None
    row = conn.execute(
        "SELECT m.id FROM messages_fts JOIN messages AS m ON m.seq = messages_fts.rowid "
        "WHERE messages_fts MATCH ? AND m.conversation_id = ? "
        "ORDER BY messages_fts.rowid DESC LIMIT 1",
        [match, conversation_id],
    ).fetchone()
    return None if row is None else str(row[0])


def messages_from_json(row: Any, conn: sqlite3.Connection) -> list[Message]:
    """The transcript, oldest first, from the row ``transcript_json`` returns; texts left
    out of it are read from ``conn`` (in the same read)."""
    names = _MESSAGE_NAMES
    rows = json.loads(row[0]) if row and row[0] else []
    # The subquery's order is what json_group_array sees; sorting again makes it a
    # guarantee rather than an SQLite habit.
    rows.sort(key=lambda values: values[0], reverse=True)
    records = [dict(zip(names, values[1:], strict=True)) for values in rows]
    for record in records:
        if record["text"] is None:
            found = conn.execute(
                "SELECT text FROM messages WHERE id = ?", [record["id"]]
            ).fetchone()
            record["text"] = found[0] if found is not None and found[0] is not None else ""
    return [message_from_row(record) for record in records]


def conversation_usage(conn: sqlite3.Connection, conversation_id: str) -> Any:
    """The token sums row over the transcript's assistant messages."""
    return conn.execute(
        f"{_CHAIN_CTE} SELECT SUM(m.input_tokens), SUM(m.output_tokens), "
        "SUM(m.total_tokens), SUM(m.cached_input_tokens), SUM(m.reasoning_tokens) "
        "FROM chain JOIN messages AS m ON m.id = chain.id "
        "WHERE m.conversation_id = :cid AND m.role = :role",
        {"cid": conversation_id, "role": MessageRole.ASSISTANT.value},
    ).fetchone()


def recent_prompts(db: Database, exclude_conversation: str | None, limit: int) -> list[str]:
    """The newest ``limit`` prompts of other conversations, newest first (repeats kept).

    Walks the messages' rowid backwards, so it reads about ``limit`` rows of any history.
    """
    rows = db.table("messages").rows_where(
        "role = :role AND conversation_id != :cid",
        {"role": MessageRole.USER.value, "cid": exclude_conversation or ""},
        order_by="seq DESC",
        select="text",
        limit=limit,
    )
    return [row["text"] for row in rows]


def turn_counts(conn: sqlite3.Connection, conversation_ids: list[str]) -> dict[str, int]:
    """The prompts saved in each of these conversations (every branch), by id; one
    index probe per conversation."""
    rows = conn.execute(
        "SELECT conversation_id, COUNT(*) FROM messages "
        "WHERE role = :role AND conversation_id IN (SELECT value FROM json_each(:ids)) "
        "GROUP BY conversation_id",
        {"role": MessageRole.USER.value, "ids": json.dumps(conversation_ids)},
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def response_ids(conn: sqlite3.Connection, conversation_id: str) -> list[str]:
    """Every response id the conversation's messages hold (all branches), oldest first,
    each once."""
    rows = conn.execute(
        "SELECT response_id FROM messages WHERE conversation_id = ? "
        "AND response_id IS NOT NULL AND response_id != '' ORDER BY seq",
        [conversation_id],
    ).fetchall()
    return list(dict.fromkeys(str(row[0]) for row in rows))


def rejected_parameters(conn: sqlite3.Connection, profile: str, model: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT parameter, reason FROM rejected_parameters WHERE profile = ? AND model = ? "
        "ORDER BY created_at, parameter",
        (profile, model),
    ).fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


# Ids per query when reading reasoning items (SQLite's bound-variable limit is 32,766).
_IDS_PER_QUERY = 500


def reasoning_items(conn: sqlite3.Connection, message_ids: list[str]) -> dict[str, Any]:
    """The saved reasoning items of those messages that have any, as JSON text by id."""
    found: dict[str, Any] = {}
    for start in range(0, len(message_ids), _IDS_PER_QUERY):
        chunk = message_ids[start : start + _IDS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        found.update(
            conn.execute(
                f"SELECT id, reasoning_items FROM messages WHERE id IN ({marks}) "
                "AND reasoning_items IS NOT NULL",
                chunk,
            ).fetchall()
        )
    return found


def reasoning_items_from_json(text: object) -> tuple[dict[str, object], ...]:
    """Reasoning items as saved; anything that is not a list of objects (a damaged or
    hand-edited database) reads as none."""
    if not isinstance(text, str):
        return ()
    try:
        value = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(value, list):
        return ()
    return tuple(
        item for item in value if isinstance(item, dict) and item.get("type") == "reasoning"
    )


# A conversation's attachment rows in one query (not one per message): the prompts'
# index (conversation_id, role), then the link table's primary key per prompt.
_ATTACHMENTS_SQL: Final = (
    "SELECT ma.message_id, ma.name, a.sha256, a.media_type, a.size "
    "FROM messages AS m JOIN message_attachments AS ma ON ma.message_id = m.id "
    "JOIN attachments AS a ON a.sha256 = ma.sha256 "
    "WHERE m.conversation_id = :cid AND m.role = :role ORDER BY ma.message_id, ma.position"
)


def attachments_of_conversation(
    conn: sqlite3.Connection, conversation_id: str
) -> dict[str, tuple[Attachment, ...]]:
    """Every prompt's attachments in the conversation, by message id, in their order."""
    found: dict[str, list[Attachment]] = {}
    for message_id, name, sha256, media_type, size in conn.execute(
        _ATTACHMENTS_SQL, {"cid": conversation_id, "role": MessageRole.USER.value}
    ):
        found.setdefault(message_id, []).append(Attachment(sha256, name, media_type, size))
    return {message_id: tuple(files) for message_id, files in found.items()}


def attachments_of_message(conn: sqlite3.Connection, message_id: str) -> tuple[Attachment, ...]:
    rows = conn.execute(
        "SELECT ma.name, a.sha256, a.media_type, a.size FROM message_attachments AS ma "
        "JOIN attachments AS a ON a.sha256 = ma.sha256 WHERE ma.message_id = ? "
        "ORDER BY ma.position",
        [message_id],
    ).fetchall()
    return tuple(
        Attachment(sha256, name, media_type, size) for name, sha256, media_type, size in rows
    )


def with_attachments(conn: sqlite3.Connection, messages: list[Message]) -> list[Message]:
    """``messages`` (of one conversation) with their attachments; one query, none when
    the conversation has no prompt."""
    if not messages:
        return messages
    found = attachments_of_conversation(conn, messages[0].conversation_id)
    if not found:
        return messages
    return [
        replace(message, attachments=found[message.id]) if message.id in found else message
        for message in messages
    ]


def linked_hashes(conn: sqlite3.Connection, hashes: list[str]) -> set[str]:
    """Those of ``hashes`` an attachment row names (a prompt links them)."""
    found: set[str] = set()
    for start in range(0, len(hashes), 500):  # under SQLite's limit on parameters
        chunk = hashes[start : start + 500]
        rows = conn.execute(
            f"SELECT sha256 FROM attachments WHERE sha256 IN ({', '.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        found.update(row[0] for row in rows)
    return found
