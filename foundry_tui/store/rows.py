"""Row <-> model conversion for the history database: column lists, ids, timestamps,
titles, and ``sqlite3.Row`` to ``Conversation``/``Message``."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from foundry_tui.core import models

TITLE_MAX_CHARS: Final = 60

CONVERSATION_COLUMNS: Final = (
    "id, title, profile, model, instructions, temperature, top_p, max_output_tokens, "
    "reasoning_effort, reasoning_summary, verbosity, "
    "server_state, head_message_id, created_at, updated_at"
)
MESSAGE_COLUMNS: Final = (
    "id, conversation_id, parent_id, role, text, status, model, response_model, "
    "response_id, previous_response_id, input_tokens, output_tokens, total_tokens, "
    "cached_input_tokens, reasoning_tokens, error, reasoning, first_token_ms, duration_ms, "
    "created_at"
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_id() -> str:
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


def server_state(value: Any) -> models.ServerState:
    try:
        return models.ServerState(value)
    except ValueError:
        return models.ServerState.UNKNOWN


def conversation_from_row(row: sqlite3.Row) -> models.Conversation:
    return models.Conversation(
        id=row["id"],
        title=row["title"],
        profile=row["profile"],
        settings=models.GenerationSettings(
            model=row["model"],
            instructions=row["instructions"],
            temperature=row["temperature"],
            top_p=row["top_p"],
            max_output_tokens=row["max_output_tokens"],
            reasoning_effort=row["reasoning_effort"],
            reasoning_summary=row["reasoning_summary"],
            verbosity=row["verbosity"],
        ),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        head_message_id=row["head_message_id"],
        server_state=server_state(row["server_state"]),
    )


def message_from_row(row: sqlite3.Row | Mapping[str, Any]) -> models.Message:
    return models.Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        parent_id=row["parent_id"],
        role=models.MessageRole(row["role"]),
        text=row["text"],
        status=models.MessageStatus(row["status"]),
        created_at=row["created_at"],
        model=row["model"],
        response_model=row["response_model"],
        response_id=row["response_id"],
        previous_response_id=row["previous_response_id"],
        usage=models.Usage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            total_tokens=row["total_tokens"],
            cached_input_tokens=row["cached_input_tokens"],
            reasoning_tokens=row["reasoning_tokens"],
        ),
        error=row["error"],
        reasoning=row["reasoning"] or "",
        first_token_ms=row["first_token_ms"],
        duration_ms=row["duration_ms"],
    )


def fetch_rows(conn: sqlite3.Connection, sql: str, params: Any = ()) -> list[sqlite3.Row]:
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, params).fetchall()


def fetch_row(conn: sqlite3.Connection, sql: str, params: Any = ()) -> sqlite3.Row | None:
    rows = fetch_rows(conn, sql, params)
    return rows[0] if rows else None
