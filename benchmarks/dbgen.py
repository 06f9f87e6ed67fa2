"""History databases for the benchmarks, built once and cached under the temp dir.

* ``long_conversation_db``: one conversation of N turns, written through the public
  ``Store`` API (``create_conversation`` + ``add_message``), ~300-word prompts and replies.
* ``big_history_db``: many conversations and messages. ``Store.open`` creates and migrates
  the file; the rows then go in with batched ``INSERT``s on a second connection (one
  transaction per few thousand rows: one ``add_message`` transaction per row would take
  minutes), filling the same columns ``Store.add_message`` fills, and the result is
  checked through ``Store`` (``list_conversations``, ``transcript``, search).

Cache files are keyed by size, generator version and the app's schema version.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sqlite3
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from textgen import markdown_text, prose

from foundry_tui.core.models import GenerationSettings, MessageRole, MessageStatus
from foundry_tui.store import Store, migrations, title_from_prompt

#: bump when what a generator writes changes (invalidates that kind of cached db)
CONVERSATION_VERSION = 6
HISTORY_VERSION = 7
CACHE_DIR = Path(tempfile.gettempdir()) / "foundry-tui-bench-cache"

#: in the first prompt's second line: in the transcript, not in the title (first line)
FIRST_TURN_MARK = "FIRSTTURNMARK"
LATEST_TURN_MARK = "LATESTTURNMARK"
#: The search benchmark types this word letter by letter (no generated word starts with z).
SEARCH_WORD = "zymurgist"


def _schema_key() -> str:
    names = ",".join(sorted(migrations.KNOWN_MIGRATIONS))
    return hashlib.sha256(f"{migrations.SCHEMA_VERSION}:{names}".encode()).hexdigest()[:10]


def _cache_path(kind: str, version: int, *sizes: int) -> Path:
    size = "x".join(str(s) for s in sizes)
    return CACHE_DIR / f"{kind}-{size}-g{version}-s{_schema_key()}.db"


def _finish(tmp: Path, final: Path) -> None:
    """Checkpoints the WAL into the file and moves it into place atomically."""
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{tmp}{suffix}")
    os.replace(tmp, final)


def _scratch(final: Path) -> Path:
    CACHE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Older generator/schema versions of the same kind and size are of no further use.
    prefix = final.name.split("-g", 1)[0] + "-g"
    for old in CACHE_DIR.glob(prefix + "*"):
        if old.stem != final.stem and ".building-" not in old.name:
            with contextlib.suppress(OSError):
                old.unlink()
    tmp = final.with_name(f"{final.stem}.building-{os.getpid()}.db")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{tmp}{suffix}")
    return tmp


# ---------------------------------------------------------------------------


@dataclass
class LongConversation:
    path: Path
    conversation_id: str
    turns: int
    words: int
    build_seconds: float  # 0 when it came from the cache


def long_conversation_db(turns: int) -> LongConversation:
    final = _cache_path("conversation", CONVERSATION_VERSION, turns)
    meta = final.with_suffix(".meta")
    if final.exists() and meta.exists():
        cid, n_words = meta.read_text().split()
        return LongConversation(final, cid, turns, int(n_words), 0.0)
    start = time.monotonic()
    tmp = _scratch(final)
    rng = random.Random(turns)
    words = 0
    with Store.open(tmp) as store:
        conversation = store.create_conversation(
            profile="local", settings=GenerationSettings(model="gpt-4o")
        )
        for turn in range(turns):
            # Prompts: a mix of short questions and pasted text; replies ~300 words.
            n_prompt = rng.choice((20, 60, 150, 300, 450, 600, 550))
            prompt = prose(n_prompt, seed=turn * 2)
            if turn == 0:
                prompt = f"The first question\n{FIRST_TURN_MARK} {prose(40, seed=0)}"
            n_reply = rng.randint(220, 380)
            reply = markdown_text(n_reply, seed=turn * 2 + 1)
            if turn == turns - 1:
                reply = f"{reply}\n\nThe end {LATEST_TURN_MARK}"
            words += len(prompt.split()) + len(reply.split())
            store.add_message(
                conversation_id=conversation.id,
                role=MessageRole.USER,
                text=prompt,
                status=MessageStatus.COMPLETED,
                model="gpt-4o",
            )
            previous = f"resp_bench{turn - 1:06d}" if turn else None
            store.add_message(
                conversation_id=conversation.id,
                role=MessageRole.ASSISTANT,
                text=reply,
                status=MessageStatus.COMPLETED,
                model="gpt-4o",
                previous_response_id=previous,
                response_id=f"resp_bench{turn:06d}",
            )
        assert len(store.transcript(conversation.id)) == 2 * turns
    _finish(tmp, final)
    meta.write_text(f"{conversation.id} {words}")
    return LongConversation(final, conversation.id, turns, words, time.monotonic() - start)


# ---------------------------------------------------------------------------


@dataclass
class BigHistory:
    path: Path
    conversations: int
    messages: int
    words: int
    newest_tag: str
    #: for each prefix length j (1..len(SEARCH_WORD)): the tag of the conversation that
    #: must be first in the list once SEARCH_WORD[:j] is typed into the filter
    search_tops: list[str]
    build_seconds: float


def _tag(index: int) -> str:
    return f"c{index:05d}"


def _search_plan(n_conversations: int) -> tuple[dict[int, str], list[str]]:
    """Which conversation gets which planted word, and the expected top tag per prefix.

    Prefix j of SEARCH_WORD matches the decoys diverging at position >= j and the word
    itself. The decoy diverging at j is planted in a newer conversation than the one
    diverging at j+1, so every keystroke changes the first entry of the list. Older
    conversations get the decoys and the word too (round robin), so the short prefixes
    match a full list (1,000 rows) and the long ones a few hundred, as real searches do.
    """
    length = len(SEARCH_WORD)

    def word_for(j: int) -> str:
        if j < length:
            other = "a" if SEARCH_WORD[j] != "a" else "e"
            return SEARCH_WORD[:j] + other + "lk"
        return SEARCH_WORD

    step = max(1, n_conversations // (length + 3))
    planted: dict[int, str] = {}
    tops: list[str] = []
    for j in range(1, length + 1):
        index = n_conversations - 1 - j * step
        planted[index] = word_for(j)
        tops.append(_tag(index))
    oldest_top = n_conversations - 1 - length * step
    for index in range(oldest_top - 1):
        planted[index] = word_for(index % length + 1)
    return planted, tops


def big_history_db(n_conversations: int, n_messages: int) -> BigHistory:
    final = _cache_path("history", HISTORY_VERSION, n_conversations, n_messages)
    meta = final.with_suffix(".meta")
    planted, tops = _search_plan(n_conversations)
    if final.exists() and meta.exists():
        words = int(meta.read_text().split()[0])
        return BigHistory(
            final, n_conversations, n_messages, words, _tag(n_conversations - 1), tops, 0.0
        )
    start = time.monotonic()
    tmp = _scratch(final)
    Store.open(tmp).close()  # creates and migrates the schema
    per_conversation = max(2, n_messages // n_conversations)
    rng = random.Random(n_conversations * 31 + n_messages)
    words = 0
    # Text generation costs more than SQLite here: draw from pools of generated texts.
    prompts = [prose(rng.randint(8, 60), seed) for seed in range(2000)]
    replies = [markdown_text(rng.randint(40, 200), seed) for seed in range(3000)]
    base = datetime.now(UTC) - timedelta(days=365)
    span = timedelta(days=364).total_seconds()
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN")
        pending = 0
        for index in range(n_conversations):
            moment = base + timedelta(seconds=span * index / n_conversations)
            conversation_id = uuid.uuid4().hex
            parent: str | None = None
            messages = []
            first_prompt = ""
            for m in range(per_conversation):
                role = MessageRole.USER if m % 2 == 0 else MessageRole.ASSISTANT
                if role is MessageRole.USER:
                    text = rng.choice(prompts)
                    if m == 0:
                        text = f"{_tag(index)} {text}"
                        first_prompt = text
                else:
                    text = rng.choice(replies)
                if m == 7 and index in planted:
                    text = f"{text}\n\nSee also {planted[index]} for details."
                words += len(text.split())
                message_id = uuid.uuid4().hex
                created = (moment + timedelta(seconds=20 * m)).isoformat(timespec="microseconds")
                messages.append(
                    (
                        message_id,
                        conversation_id,
                        parent,
                        role.value,
                        text,
                        MessageStatus.COMPLETED.value,
                        "gpt-4o",
                        f"resp_{message_id}" if role is MessageRole.ASSISTANT else None,
                        created,
                        created,
                    )
                )
                parent = message_id
            updated = messages[-1][8]
            conn.execute(
                "INSERT INTO conversations (id, title, profile, model, server_state, "
                "head_message_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    conversation_id,
                    title_from_prompt(first_prompt),
                    "local",
                    "gpt-4o",
                    "unknown",
                    parent,
                    messages[0][8],
                    updated,
                ],
            )
            conn.executemany(
                "INSERT INTO messages (id, conversation_id, parent_id, role, text, status, "
                "model, response_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                messages,
            )
            pending += len(messages)
            if pending >= 5000:
                conn.execute("COMMIT")
                conn.execute("BEGIN")
                pending = 0
        conn.execute("COMMIT")
    finally:
        conn.close()
    # Check the result through the app's own store.
    with Store.open(tmp) as store:
        newest = store.list_conversations(limit=1)
        assert newest and newest[0].title.startswith(_tag(n_conversations - 1)), newest
        assert len(store.transcript(newest[0].id)) == per_conversation
        hits = store.list_conversations(search=SEARCH_WORD)
        assert hits and hits[0].title.startswith(tops[-1]), (hits[:2], tops[-1])
        first = store.list_conversations(search=SEARCH_WORD[:1])
        assert first and first[0].title.startswith(tops[0]), (first[:2], tops[0])
    _finish(tmp, final)
    meta.write_text(f"{words}")
    return BigHistory(
        final,
        n_conversations,
        per_conversation * n_conversations,
        words,
        _tag(n_conversations - 1),
        tops,
        time.monotonic() - start,
    )
