"""Writing the history database: conversation and message rows, each function one step
of a caller's ``BEGIN IMMEDIATE`` transaction on the connection or ``Database`` it is
given. A turn's writes are plain statements on the connection (see ``foundry_tui.store``
for the figures); the others go through sqlite-utils, whose methods join the open
transaction as a savepoint."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foundry_tui.core.models import (
    ROOT,
    Attachment,
    Conversation,
    GenerationSettings,
    Message,
    MessageRole,
    MessageStatus,
    ServerState,
    Usage,
)
from foundry_tui.store.errors import NotFoundError
from foundry_tui.store.rows import title_from_prompt

if TYPE_CHECKING:
    from sqlite_utils import Database


def insert_conversation(
    conn: sqlite3.Connection,
    conversation_id: str,
    now: str,
    *,
    profile: str,
    settings: GenerationSettings,
    title: str,
) -> None:
    conn.execute(
        "INSERT INTO conversations (id, title, profile, model, instructions, "
        "temperature, top_p, max_output_tokens, reasoning_effort, reasoning_summary, "
        "verbosity, server_state, head_message_id, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
        [
            conversation_id,
            title,
            profile,
            settings.model,
            settings.instructions,
            settings.temperature,
            settings.top_p,
            settings.max_output_tokens,
            settings.reasoning_effort,
            settings.reasoning_summary,
            settings.verbosity,
            ServerState.UNKNOWN.value,
            now,
            now,
        ],
    )


def settings_values(settings: GenerationSettings) -> dict[str, Any]:
    """The conversations columns a ``GenerationSettings`` fills."""
    return {
        "model": settings.model,
        "instructions": settings.instructions,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_output_tokens": settings.max_output_tokens,
        "reasoning_effort": settings.reasoning_effort,
        "reasoning_summary": settings.reasoning_summary,
        "verbosity": settings.verbosity,
    }


def update_conversation(db: Database, conversation_id: str, values: dict[str, Any]) -> None:
    """Sets ``values`` on the conversation; no-op if it does not exist.

    sqlite-utils addresses a row by its primary key, ``seq``; ``id`` is the public key.
    Name ``title`` in ``values`` only when it changes: its FTS trigger fires on it.
    """
    conversations = db.table("conversations")
    found = next(conversations.rows_where("id = ?", [conversation_id], select="seq"), None)
    if found is not None:
        conversations.update(found["seq"], values)


def set_server_state(conn: sqlite3.Connection, conversation_id: str, state: ServerState) -> None:
    conn.execute(
        "UPDATE conversations SET server_state = ? WHERE id = ?",
        [ServerState(state).value, conversation_id],
    )


def delete_conversation(db: Database, conversation_id: str) -> None:
    db.table("messages").delete_where("conversation_id = ?", [conversation_id])
    db.table("conversations").delete_where("id = ?", [conversation_id])


def _not_in_conversation(path: Path, message_id: str, conversation_id: str) -> NotFoundError:
    return NotFoundError(
        f"Message {message_id} is not part of conversation {conversation_id} "
        f"in the history database {path}.",
        path,
    )


def set_head(conn: sqlite3.Connection, path: Path, conversation_id: str, message_id: str) -> None:
    row = conn.execute("SELECT conversation_id FROM messages WHERE id = ?", [message_id]).fetchone()
    if row is None or row[0] != conversation_id:
        raise _not_in_conversation(path, message_id, conversation_id)
    conn.execute(
        "UPDATE conversations SET head_message_id = ? WHERE id = ?",
        [message_id, conversation_id],
    )


def insert_message(
    conn: sqlite3.Connection,
    path: Path,
    *,
    message_id: str,
    now: str,
    conversation_id: str,
    role: MessageRole,
    text: str,
    status: MessageStatus,
    model: str | None,
    previous_response_id: str | None,
    response_id: str | None,
    parent_id: str | None,
) -> str | None:
    """Insert the message and make it the head (see ``Store.add_message``); returns its
    parent's id (None for a root)."""
    conversation = conn.execute(
        "SELECT head_message_id, title FROM conversations WHERE id = ?",
        [conversation_id],
    ).fetchone()
    if conversation is None:
        raise NotFoundError(
            f"Conversation {conversation_id} is not in the history database "
            f"{path}; it may have been deleted.",
            path,
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
            raise _not_in_conversation(path, parent_id, conversation_id)
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
            "UPDATE conversations SET head_message_id = ?, updated_at = ?, title = ? WHERE id = ?",
            [message_id, now, new_title, conversation_id],
        )
    else:
        conn.execute(
            "UPDATE conversations SET head_message_id = ?, updated_at = ? WHERE id = ?",
            [message_id, now, conversation_id],
        )
    return parent


def message_update(
    *,
    text: str | None,
    status: MessageStatus | None,
    response_id: str | None,
    response_model: str | None,
    usage: Usage | None,
    error: str | None,
    reasoning: str | None = None,
    first_token_ms: int | None = None,
    duration_ms: int | None = None,
) -> tuple[list[str], list[Any]]:
    """The ``SET`` assignments and their parameters for the fields given (not None)."""
    assignments: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("text", text),
        ("status", MessageStatus(status).value if status is not None else None),
        ("response_id", response_id),
        ("response_model", response_model),
        ("error", error),
        ("reasoning", reasoning),
        ("first_token_ms", first_token_ms),
        ("duration_ms", duration_ms),
    ):
        if value is not None:
            assignments.append(f"{column} = ?")
            params.append(value)
    if usage is not None:
        assignments += [
            "input_tokens = ?",
            "output_tokens = ?",
            "total_tokens = ?",
            "cached_input_tokens = ?",
            "reasoning_tokens = ?",
        ]
        params += [
            usage.input_tokens,
            usage.output_tokens,
            usage.total_tokens,
            usage.cached_input_tokens,
            usage.reasoning_tokens,
        ]
    return assignments, params


def update_message(conn: sqlite3.Connection, assignments: list[str], params: list[Any]) -> None:
    conn.execute(f"UPDATE messages SET {', '.join(assignments)} WHERE id = ?", params)


def mark_interrupted(conn: sqlite3.Connection, now: str) -> int:
    cursor = conn.execute(
        "UPDATE messages SET status = ?, updated_at = ? WHERE status = 'pending' AND role = ?",
        [MessageStatus.INTERRUPTED.value, now, MessageRole.ASSISTANT.value],
    )
    return cursor.rowcount


def insert_whole_conversation(
    conn: sqlite3.Connection,
    conversation: Conversation,
    messages: Sequence[Message],
    message_ids: Mapping[str, str],
) -> None:
    """Inserts ``conversation`` (already under its new id and head) and ``messages``
    (parents first) under ``message_ids``, the new id for each old one; times, statuses,
    response ids and usage as given."""
    settings = conversation.settings
    conn.execute(
        "INSERT INTO conversations (id, title, profile, model, instructions, "
        "temperature, top_p, max_output_tokens, reasoning_effort, reasoning_summary, "
        "verbosity, server_state, head_message_id, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
        [
            conversation.id,
            conversation.title,
            conversation.profile,
            settings.model,
            settings.instructions,
            settings.temperature,
            settings.top_p,
            settings.max_output_tokens,
            settings.reasoning_effort,
            settings.reasoning_summary,
            settings.verbosity,
            ServerState(conversation.server_state).value,
            conversation.created_at,
            conversation.updated_at,
        ],
    )
    conn.executemany(
        "INSERT INTO messages (id, conversation_id, parent_id, role, text, status, model, "
        "response_model, response_id, previous_response_id, input_tokens, output_tokens, "
        "total_tokens, cached_input_tokens, reasoning_tokens, error, reasoning, "
        "first_token_ms, duration_ms, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            [
                message_ids[message.id],
                conversation.id,
                message_ids[message.parent_id] if message.parent_id is not None else None,
                MessageRole(message.role).value,
                message.text,
                MessageStatus(message.status).value,
                message.model,
                message.response_model,
                message.response_id,
                message.previous_response_id,
                message.usage.input_tokens,
                message.usage.output_tokens,
                message.usage.total_tokens,
                message.usage.cached_input_tokens,
                message.usage.reasoning_tokens,
                message.error,
                message.reasoning,
                message.first_token_ms,
                message.duration_ms,
                message.created_at,
                message.created_at,
            ]
            for message in messages
        ),
    )
    for message in messages:
        if message.attachments:
            link_attachments(conn, message_ids[message.id], message.attachments, message.created_at)
    if conversation.head_message_id is not None:
        conn.execute(
            "UPDATE conversations SET head_message_id = ? WHERE id = ?",
            [conversation.head_message_id, conversation.id],
        )


def reject_parameter(
    conn: sqlite3.Connection, profile: str, model: str, parameter: str, reason: str, now: str
) -> None:
    conn.execute(
        "INSERT INTO rejected_parameters (profile, model, parameter, reason, created_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (profile, model, parameter) "
        "DO UPDATE SET reason = excluded.reason",
        (profile, model, parameter, reason, now),
    )


def save_reasoning_items(conn: sqlite3.Connection, message_id: str, items_json: str) -> None:
    conn.execute("UPDATE messages SET reasoning_items = ? WHERE id = ?", [items_json, message_id])


def link_attachments(
    conn: sqlite3.Connection, message_id: str, attachments: Sequence[Attachment], now: str
) -> None:
    """Records the kept files (``attachments`` rows, once per content) and links them to
    the message in their order."""
    conn.executemany(
        "INSERT OR IGNORE INTO attachments (sha256, media_type, size, created_at) "
        "VALUES (?, ?, ?, ?)",
        [(a.sha256, a.media_type, a.size, now) for a in attachments],
    )
    conn.executemany(
        "INSERT INTO message_attachments (message_id, position, sha256, name) VALUES (?, ?, ?, ?)",
        [(message_id, position, a.sha256, a.name) for position, a in enumerate(attachments)],
    )


def hashes_of_conversation(conn: sqlite3.Connection, conversation_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT ma.sha256 FROM messages AS m "
        "JOIN message_attachments AS ma ON ma.message_id = m.id "
        "WHERE m.conversation_id = ? AND m.role = ?",
        [conversation_id, MessageRole.USER.value],
    ).fetchall()
    return [row[0] for row in rows]


def drop_unused_attachments(conn: sqlite3.Connection, hashes: Sequence[str]) -> list[str]:
    """Deletes the ``attachments`` rows among ``hashes`` that no message links any more;
    returns their hashes (whose files can go)."""
    dropped: list[str] = []
    for sha256 in hashes:
        cursor = conn.execute(
            "DELETE FROM attachments WHERE sha256 = ? AND NOT EXISTS "
            "(SELECT 1 FROM message_attachments WHERE sha256 = ?)",
            [sha256, sha256],
        )
        if cursor.rowcount:
            dropped.append(sha256)
    return dropped
