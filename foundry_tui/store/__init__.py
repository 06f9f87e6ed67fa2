"""The history database: ``Store`` is the one entry point other modules use.

One ``Store`` owns one ``sqlite3`` connection (WAL mode, ``synchronous=NORMAL``,
foreign keys on, 10 s busy timeout). Every public method takes the store's ``RLock``,
so one ``Store`` may be shared by any number of threads (``asyncio.to_thread`` workers
included). Several ``Store`` objects, in this or other processes, may use the same
file: every write is one ``BEGIN IMMEDIATE`` transaction, so writers queue on SQLite's
lock instead of failing with "database is locked", and a failed write leaves no
partial rows.

sqlite-utils is the access layer (``Store._db``, a ``sqlite_utils.Database`` over the
same connection): migrations, the history list and search (``db.query``), the prompts
recalled with Up, renaming, settings and deleting (``table.update``/``delete_where``).
Two paths stay on the plain connection, for measured reasons (benchmarks/store_access.py):

* opening a database whose schema is current, and a turn's reads and writes
  (``create_conversation``, ``add_message``, ``update_message``, ``get_message``,
  ``get_conversation``, ``transcript``, ``set_head``, ``set_server_state``,
  ``conversation_usage``, ``find_conversation_by_response_id``, and
  ``mark_interrupted`` at start-up): ``import sqlite_utils`` alone takes ~0.1 s
  (104 ms), more than a third of the 0.25 s from ``foundry-tui ask`` to its first
  token, so the wrapper and its import wait for the first method that uses it;
* and 1,000 turns' writes take 688 ms through ``table.insert``/``table.update``
  against 224 ms as plain statements (their introspection and savepoints).

Only the ``foundry_tui.store`` modules touch SQLite: ``open`` opens the file,
``errors`` names what can go wrong, ``rows`` converts rows to models, ``reads`` and
``writes`` hold the queries. Importing them does not touch the file system, nor
import sqlite_utils; ``Store.open`` opens the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from foundry_tui.core.attachments import AttachmentRejected, FileToAttach
from foundry_tui.core.models import (
    ROOT,
    Attachment,
    Conversation,
    ConversationSummary,
    GenerationSettings,
    Message,
    MessageRole,
    MessageStatus,
    ReasoningItem,
    ServerState,
    Usage,
)
from foundry_tui.store import open as store_open
from foundry_tui.store import reads as store_reads
from foundry_tui.store import writes as store_writes
from foundry_tui.store.errors import (
    BUSY_TIMEOUT_SECONDS,
    CorruptDatabaseError,
    NewerSchemaError,
    NotFoundError,
    StoreError,
    StoreWriteError,
    translate,
)
from foundry_tui.store.files import AttachmentFiles, folder_for
from foundry_tui.store.rows import (
    TITLE_MAX_CHARS,
    conversation_from_row,
    message_from_row,
    new_id,
    now_iso,
    title_from_prompt,
)

if TYPE_CHECKING:
    from sqlite_utils import Database

# A kept file no prompt names is swept once it is this old (seconds): long past any send
# that copied it in and is about to save its prompt.
UNLINKED_FILE_AGE = 24 * 3600

__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "ROOT",
    "TITLE_MAX_CHARS",
    "CorruptDatabaseError",
    "NewerSchemaError",
    "NotFoundError",
    "Store",
    "StoreError",
    "StoreWriteError",
    "title_from_prompt",
    "warm_up_access_layer",
]


def warm_up_access_layer() -> None:
    """Imports sqlite-utils (~0.1 s) now, in the caller's thread: the app's warm-up, so the
    first history list, search or rename does not pay for it. A turn never needs it."""
    import sqlite_utils  # noqa: F401


class Store:
    """The conversation history. Create with ``Store.open(path)``; thread-safe."""

    path: Path

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        """Internal: use ``Store.open``."""
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._database: Database | None = None
        self._lock = threading.RLock()
        # Attached files' bytes, beside the database and named after it.
        self.files = AttachmentFiles(folder_for(path))

    @property
    def _db(self) -> Database:
        """sqlite-utils over the store's connection, made (and sqlite_utils imported) by
        the first method that uses it: see the module's docstring. Call under the lock."""
        if self._database is None:
            self._database = store_open.database(self._connection())
        return self._database

    # -- opening and closing -------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating if needed) and migrate the database at ``path``.

        Raises CorruptDatabaseError (file not touched), NewerSchemaError (file not
        touched) or StoreWriteError (cannot create/open/write).
        """
        path = Path(path).expanduser()
        return cls(path, store_open.open_database(path))

    @classmethod
    def fresh_path_beside(cls, path: Path) -> Path:
        """A not-yet-existing sibling such as ``history-2026-11-27T140501.db``."""
        return store_open.fresh_path_beside(path)

    @classmethod
    def set_aside(cls, path: Path) -> Path:
        """Moves a damaged database (and its -wal/-shm) to a new name beside it, unchanged,
        so a fresh history can start at ``path``. Returns where the old file went."""
        return store_open.set_aside(path)

    def close(self) -> None:
        """Close the connection; safe to call twice. Other calls then raise StoreError."""
        with self._lock:
            conn, self._conn = self._conn, None
            self._database = None
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
                raise translate(exc, self.path, action) from exc

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
                raise translate(exc, self.path, action) from exc

    # -- conversations ---------------------------------------------------------

    def create_conversation(
        self, *, profile: str, settings: GenerationSettings, title: str = ""
    ) -> Conversation:
        conversation_id = new_id()
        now = now_iso()
        with self._write("save the new conversation to") as conn:
            store_writes.insert_conversation(
                conn, conversation_id, now, profile=profile, settings=settings, title=title
            )
        return Conversation(
            id=conversation_id,
            title=title,
            profile=profile,
            settings=settings,
            created_at=now,
            updated_at=now,
        )

    def import_conversation(
        self, conversation: Conversation, messages: Sequence[Message]
    ) -> Conversation:
        """Saves a whole conversation made elsewhere (an export read back) as a new one, in
        one transaction: it and its messages get new ids; their times, statuses, response
        ids and usage are kept. ``messages`` come parents first, and their ``parent_id``
        and the conversation's ``head_message_id`` name messages among them (else
        ValueError, nothing saved)."""
        known: set[str] = set()
        for message in messages:
            if message.parent_id is not None and message.parent_id not in known:
                raise ValueError(f"message {message.id} comes before its parent")
            known.add(message.id)
        head = conversation.head_message_id
        if head is not None and head not in known:
            raise ValueError(f"the head {head} is none of the messages")
        message_ids = {old: new_id() for old in known}
        saved = replace(
            conversation,
            id=new_id(),
            head_message_id=None if head is None else message_ids[head],
        )
        with self._write("save the imported conversation to") as conn:
            store_writes.insert_whole_conversation(conn, saved, messages, message_ids)
        return saved

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        with self._read() as conn:
            row = store_reads.get_conversation(conn, conversation_id)
        return conversation_from_row(row) if row is not None else None

    def list_conversations(
        self, *, limit: int = 1000, search: str | None = None, archived: bool = False
    ) -> list[ConversationSummary]:
        """Newest ``updated_at`` first; the archived conversations with ``archived``, the
        others without.

        ``search``: conversations whose title, or one of whose messages, has a word
        starting with each whitespace-separated term (case- and accent-insensitive;
        FTS syntax is taken literally). Blank = no filter; punctuation only = [].
        When more than ``limit`` conversations match through their messages, those
        with the most recent matching messages are the ones considered.
        """
        query = store_reads.summary_query(search, limit, archived=archived)
        if query is None:
            return []
        sql, params = query
        with self._read("search"):
            packed = store_reads.summaries_json(self._db, sql, params)
        return store_reads.summaries_from_json(packed)

    def turn_counts(self, conversation_ids: list[str]) -> dict[str, int]:
        """How many prompts each of these conversations holds (absent: none)."""
        with self._read() as conn:
            return store_reads.turn_counts(conn, conversation_ids)

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        """No-op if the conversation does not exist."""
        with self._write("rename the conversation in"):
            store_writes.update_conversation(self._db, conversation_id, {"title": title})

    def archive_conversation(self, conversation_id: str) -> None:
        """Hides the conversation from the history list (it stays, whole, in the archived
        list); no-op if it does not exist."""
        with self._write("archive the conversation in"):
            store_writes.update_conversation(self._db, conversation_id, {"archived_at": now_iso()})

    def restore_conversation(self, conversation_id: str) -> None:
        """Brings an archived conversation back to the history list; no-op if it does not
        exist."""
        with self._write("restore the conversation in"):
            store_writes.update_conversation(self._db, conversation_id, {"archived_at": None})

    def is_archived(self, conversation_id: str) -> bool:
        with self._read() as conn:
            row = conn.execute(
                "SELECT archived_at IS NOT NULL FROM conversations WHERE id = ?",
                [conversation_id],
            ).fetchone()
        return bool(row is not None and row[0])

    def response_ids(self, conversation_id: str) -> list[str]:
        """The ids of the responses the server stored for this conversation: every
        message's, on every branch, each once, oldest first."""
        with self._read() as conn:
            return store_reads.response_ids(conn, conversation_id)

    def update_settings(self, conversation_id: str, settings: GenerationSettings) -> None:
        """No-op if the conversation does not exist."""
        with self._write("save the settings to"):
            store_writes.update_conversation(
                self._db, conversation_id, store_writes.settings_values(settings)
            )

    def set_server_state(self, conversation_id: str, state: ServerState) -> None:
        """No-op if the conversation does not exist."""
        with self._write("save the conversation state to") as conn:
            store_writes.set_server_state(conn, conversation_id, state)

    def delete_conversation(self, conversation_id: str) -> None:
        """Deletes the conversation and all its messages; no-op if it does not exist. The
        attached files no other conversation uses are deleted with it."""
        with self._lock:
            with self._write("delete the conversation from") as conn:
                hashes = store_writes.hashes_of_conversation(conn, conversation_id)
                store_writes.delete_conversation(self._db, conversation_id)
                unused = store_writes.drop_unused_attachments(conn, hashes)
            # After the commit, and under the lock that links new prompts to kept files.
            self.files.remove(unused)

    def find_conversation_by_response_id(self, response_id: str) -> Conversation | None:
        with self._read() as conn:
            row = store_reads.find_conversation_by_response_id(conn, response_id)
        return conversation_from_row(row) if row is not None else None

    def set_head(
        self, conversation_id: str, message_id: str, *, server_state: ServerState | None = None
    ) -> None:
        """Make ``message_id`` (a message of this conversation) the current leaf; with
        ``server_state``, set that in the same transaction."""
        with self._write("switch branches in") as conn:
            store_writes.set_head(conn, self.path, conversation_id, message_id)
            if server_state is not None:
                store_writes.set_server_state(conn, conversation_id, server_state)

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
        attachments: Sequence[Attachment] = (),
    ) -> Message:
        """Append a message; it becomes the conversation's head. ``attachments`` (files
        ``keep_attachment`` kept) are linked to it in the same transaction.

        ``parent_id=None`` attaches it to the current head, an explicit id (of a
        message of this conversation) starts a branch there, ``ROOT`` starts a new root.
        Raises NotFoundError for an unknown conversation or parent.
        """
        message_id = new_id()
        now = now_iso()
        role = MessageRole(role)
        status = MessageStatus(status)
        with self._write("save the message to") as conn:
            parent = store_writes.insert_message(
                conn,
                self.path,
                message_id=message_id,
                now=now,
                conversation_id=conversation_id,
                role=role,
                text=text,
                status=status,
                model=model,
                previous_response_id=previous_response_id,
                response_id=response_id,
                parent_id=parent_id,
            )
            if attachments:
                self._check_kept(attachments)
                store_writes.link_attachments(conn, message_id, attachments, now)
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
            attachments=tuple(attachments),
        )

    # -- attachments -------------------------------------------------------------

    def keep_attachment(self, file: FileToAttach) -> Attachment:
        """Copies the file in beside the database (once per content), as it is now.
        Reads and hashes the whole file: call it in a thread. AttachmentRejected when it
        can no longer be read; StoreWriteError when it cannot be written."""
        try:
            sha256, media_type, size = self.files.keep(file)
        except AttachmentRejected:
            raise
        except OSError as exc:
            raise StoreWriteError(
                self.files.root, exc.strerror or str(exc), action="keep an attachment in"
            ) from exc
        return Attachment(sha256=sha256, name=file.name, media_type=media_type, size=size)

    def keep_attachment_bytes(self, data: bytes) -> str:
        """Keeps bytes read from elsewhere (an import), as ``keep_attachment`` keeps a file;
        returns their SHA-256."""
        try:
            return self.files.keep_bytes(data)
        except OSError as exc:
            raise StoreWriteError(
                self.files.root, exc.strerror or str(exc), action="keep an attachment in"
            ) from exc

    def attachment_path(self, sha256: str) -> Path:
        """Where the kept bytes of that content are (they may be gone: deleted by hand)."""
        return self.files.path_of(sha256)

    def read_attachment(self, sha256: str) -> bytes:
        """The kept bytes; FileNotFoundError when they are gone."""
        return self.files.read(sha256)

    def _check_kept(self, attachments: Sequence[Attachment]) -> None:
        # A delete in another thread may have removed a file kept just before (same
        # content): refuse rather than link a file that is not there.
        for attachment in attachments:
            if not self.files.path_of(attachment.sha256).is_file():
                raise AttachmentRejected(
                    f"{attachment.name} was removed from the attachments folder before the "
                    "prompt was saved; attach it again."
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
        reasoning: str | None = None,
        first_token_ms: int | None = None,
        duration_ms: int | None = None,
    ) -> None:
        """Change only the fields given (not None); no-op if the message does not exist."""
        assignments, params = store_writes.message_update(
            text=text,
            status=status,
            response_id=response_id,
            response_model=response_model,
            usage=usage,
            error=error,
            reasoning=reasoning,
            first_token_ms=first_token_ms,
            duration_ms=duration_ms,
        )
        if not assignments:
            return
        assignments.append("updated_at = ?")
        params += [now_iso(), message_id]
        with self._write("save the message to") as conn:
            store_writes.update_message(conn, assignments, params)

    def save_reasoning_items(self, message_id: str, items: Sequence[ReasoningItem]) -> None:
        """Keeps a reply's reasoning items (their encrypted content included), for a
        replay to send back; not read with the transcript (they can be large)."""
        import json

        with self._write("save the message to") as conn:
            store_writes.save_reasoning_items(conn, message_id, json.dumps(list(items)))

    def reasoning_items(self, message_ids: Sequence[str]) -> dict[str, tuple[ReasoningItem, ...]]:
        """The saved reasoning items of those messages that have any, by message id."""
        with self._read() as conn:
            found = store_reads.reasoning_items(conn, list(message_ids))
        items = {key: store_reads.reasoning_items_from_json(text) for key, text in found.items()}
        return {key: value for key, value in items.items() if value}

    def get_message(self, message_id: str) -> Message | None:
        with self._read() as conn:
            row = store_reads.get_message(conn, message_id)
            if row is None:
                return None
            message = message_from_row(row)
            if message.role is MessageRole.USER:
                attachments = store_reads.attachments_of_message(conn, message_id)
                if attachments:
                    message = replace(message, attachments=attachments)
        return message

    def transcript(self, conversation_id: str, *, newest: int | None = None) -> list[Message]:
        """The messages from the root to the head, oldest first ([] if none); with
        ``newest``, only that many of the latest."""
        # One JSON row instead of a row per message (see store_reads._SUMMARY_JSON): a long
        # conversation is read in one step even while another thread holds the GIL.
        with self._read() as conn:
            row = store_reads.transcript_json(conn, conversation_id, newest)
            return store_reads.with_attachments(conn, store_reads.messages_from_json(row, conn))

    def all_messages(self, conversation_id: str) -> list[Message]:
        """Every message of the conversation, on every branch, in the order written (a
        parent before its children)."""
        with self._read() as conn:
            row = store_reads.all_messages_json(conn, conversation_id)
            return store_reads.with_attachments(conn, store_reads.messages_from_json(row, conn))

    def messages(self, message_ids: Sequence[str]) -> list[Message]:
        """The messages with these ids (a few: one statement each), in that order; an id
        no message has is left out."""
        found: list[Message] = []
        for message_id in message_ids:
            message = self.get_message(message_id)
            if message is not None:
                found.append(message)
        return found

    def tree(self, conversation_id: str) -> list[tuple[str, str | None]]:
        """(id, parent_id) of every message of the conversation, oldest first."""
        with self._read() as conn:
            return store_reads.tree_json(conn, conversation_id)

    def tree_version(self, conversation_id: str) -> int:
        """Changes whenever a message is added to the conversation (messages are never
        taken out of one, nor moved): a tree read at one version holds until the next."""
        with self._read() as conn:
            return store_reads.tree_version(conn, conversation_id)

    def newest_match(self, conversation_id: str, search: str) -> str | None:
        """The newest message of the conversation that ``search`` finds (the history
        list's full-text search), on any branch; None if none does."""
        with self._read("search") as conn:
            return store_reads.newest_match(conn, conversation_id, search)

    def recent_prompts(self, *, exclude_conversation: str | None, limit: int) -> list[str]:
        """Prompts sent in other conversations, newest first (for recalling them)."""
        with self._read():
            return store_reads.recent_prompts(self._db, exclude_conversation, limit)

    def sweep_unlinked_files(self, *, min_age: float = UNLINKED_FILE_AGE) -> int:
        """Deletes the kept files no prompt names that were last written over ``min_age``
        seconds ago, and the temporary files of copies that never ended: what a prompt
        that could not be saved, or a crash between copying a file in and saving its
        prompt, left behind. Returns how many went; recent ones may be about to be named."""
        import time

        try:
            hashes, leftovers = self.files.stale(time.time() - min_age)
        except OSError:
            return 0
        unlinked: list[str] = []
        if hashes:
            # Under the lock that links new prompts to kept files.
            with self._read("read the attachments of") as conn:
                linked = store_reads.linked_hashes(conn, hashes)
                unlinked = [sha256 for sha256 in hashes if sha256 not in linked]
                self.files.remove(unlinked)
        for leftover in leftovers:
            with suppress(OSError):
                leftover.unlink()
        return len(unlinked) + len(leftovers)

    def mark_interrupted(self) -> int:
        """At start-up: every PENDING assistant message becomes INTERRUPTED."""
        with self._write("update") as conn:
            return store_writes.mark_interrupted(conn, now_iso())

    def conversation_usage(self, conversation_id: str) -> Usage:
        """Token sums over the transcript's assistant messages (None where none is known)."""
        with self._read() as conn:
            row = store_reads.conversation_usage(conn, conversation_id)
        return Usage(
            input_tokens=row[0],
            output_tokens=row[1],
            total_tokens=row[2],
            cached_input_tokens=row[3],
            reasoning_tokens=row[4],
        )

    # -- what deployments refused ------------------------------------------------

    def rejected_parameters(self, profile: str, model: str) -> dict[str, str]:
        """The request parameters (API names, e.g. ``reasoning.effort``) this profile's
        deployment ``model`` refused, each with the server's reason, oldest first."""
        with self._read() as conn:
            return store_reads.rejected_parameters(conn, profile, model)

    def reject_parameter(self, profile: str, model: str, parameter: str, reason: str) -> None:
        """Remembers that ``model`` refused ``parameter`` (again: the newer reason)."""
        with self._write("save what the deployment refused to") as conn:
            store_writes.reject_parameter(conn, profile, model, parameter, reason, now_iso())
