"""One conversation, without a terminal: what to send, what to save and when, how to resume.

The rules that keep a user's work safe live here, not in widgets:

* the prompt is saved before the request leaves, with an empty PENDING reply row under it;
* the reply text is flushed to that row while it streams (a crash loses well under a second),
  and its final status (completed / incomplete / failed / cancelled) is saved when it ends;
* a turn chains with ``previous_response_id`` while the server still holds the head response;
  when it no longer does (404 on retrieve, or a 400 ``previous_response_not_found`` on create),
  the local transcript is replayed as input and a new chain starts;
* a request parameter the deployment refuses (400 unsupported_parameter) is remembered for
  the profile's deployment in the store and left out of every later request to it; one the
  app sends by itself (``prompt_cache_key``, ``include``) is dropped and the turn sent again
  at once (``ParameterDropped``), one the user set fails the turn for core/turns.py to offer
  a resend without it.

Every store call runs in a thread (``asyncio.to_thread``) so a slow disk never stalls the UI.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

from foundry_tui.core.attachments import (
    AttachmentRejected,
    FileToAttach,
    check_together,
    data_url,
    decoded_data_url,
    describe,
    hashed_data_url,
)
from foundry_tui.core.branches import Tree, shared_prefix
from foundry_tui.core.coerce import (
    DROPPED_DETAILS_NOTE,
    UNSAVED_DETAILS_NOTE,
    short_string,
    storable_text,
    usage_of,
)
from foundry_tui.core.logs import debugging, get_logger
from foundry_tui.core.models import (
    ROOT,
    Answered,
    Attachment,
    BackendError,
    BackendEvent,
    ContextTrimmed,
    Conversation,
    EncodedFile,
    ErrorKind,
    FetchedFile,
    GenerationSettings,
    InputMessage,
    InputMessages,
    Message,
    MessageRole,
    MessageStatus,
    ReasoningDelta,
    ReasoningItem,
    ReasoningStarted,
    ResponseFinished,
    ResponseStarted,
    RetrievedResponse,
    Retrying,
    ServerState,
    Siblings,
    StorageError,
    TextDelta,
    Usage,
    Waiting,
)
from foundry_tui.core.parameters import AUTOMATIC, REFUSABLE, family, named

if TYPE_CHECKING:
    from foundry_tui.core.usage import TurnFigures
    from foundry_tui.store import Store

_T = TypeVar("_T")

# How often a streaming reply's text is written to the database. Small enough that a
# crash loses almost nothing, large enough that a 2,000 tokens/s stream costs few writes.
PARTIAL_SAVE_INTERVAL = 0.3
# Each save rewrites the whole text (and its full-text index), so a huge reply's saves
# grow with it: the next one waits this many times as long as the last took. Saving then
# takes at most a fifth of the stream's time, and a reply's saves add up to a few times
# its final save rather than growing with the square of its length.
SAVE_TIME_FACTOR = 4.0

# Saved as the note of a reply the server cut off at its max_output_tokens.
CUT_OFF_AT_MAX_TOKENS = "Cut off at the max output tokens limit."
# The clock a reply's timings are read from (time to first token, duration); one name, so
# that a test can fix the figures a picture shows.
_clock = time.monotonic

# Statuses whose response the server kept and a next turn can chain from.
_CHAINABLE = frozenset({MessageStatus.COMPLETED, MessageStatus.INCOMPLETE})


class ResponsesBackend(Protocol):
    """What the session needs from a backend (see backend.Backend).

    A ``stateless`` backend (the local model) keeps nothing between requests: every turn
    replays the transcript and nothing is stored or retrieved on the server.
    """

    stateless: bool

    def stream_reply(
        self,
        *,
        settings: GenerationSettings,
        input: list[InputMessage],
        previous_response_id: str | None,
        store: bool = True,
        prompt_cache_key: str | None = None,
        omit: Collection[str] = (),
    ) -> AsyncIterator[BackendEvent]: ...

    async def retrieve(self, response_id: str) -> RetrievedResponse | None: ...

    async def holds(self, response_id: str) -> bool:
        """Whether the server still has that response (without reading it)."""
        ...

    async def input_messages(self, response_id: str) -> list[InputMessage]: ...


class SendMode(StrEnum):
    """How a turn's context reaches the server; the UI shows it."""

    NEW = "new"  # first turn of a conversation
    CHAIN = "chain"  # previous_response_id
    REPLAY = "replay"  # the local transcript sent as input items
    LOCAL = "local"  # a stateless backend: the transcript is sent every turn


@dataclass(frozen=True)
class NextRequest:
    """What a send would hand the backend (`ChatSession.next_request`, `first_request`)."""

    mode: SendMode
    input: list[InputMessage]
    previous_response_id: str | None
    store: bool
    prompt_cache_key: str | None = None
    # Parameters left out: those the deployment refused before (see refused_parameters).
    omit: tuple[str, ...] = ()


def first_request(prompt: str, *, stateless: bool, omit: Collection[str] = ()) -> NextRequest:
    """The first turn of a conversation not started yet (its id, the cache key, is not
    known before it is)."""
    return NextRequest(
        SendMode.NEW,
        [InputMessage(MessageRole.USER, prompt)],
        None,
        not stateless,
        omit=tuple(omit),
    )


# How many messages of another branch `branch_preview` reads: more than a screen shows
# where the branches part.
PREVIEW_MESSAGES = 12
# A switch's new messages up to this many are read by id (a statement each, tens of µs);
# more are read as the path's newest (one statement that walks the whole path, ~2 ms).
TAIL_READ_ONE_BY_ONE = 40


@dataclass(frozen=True)
class TurnStarted:
    user: Message
    reply: Message
    mode: SendMode
    # A new branch: the message it takes the place of on screen (a retried or regenerated
    # reply, an edited prompt); that message and all that followed it give way.
    replaces: Message | None = None


@dataclass(frozen=True)
class ReplyDelta:
    text: str


@dataclass(frozen=True)
class ThinkingStarted:
    """The model began to reason; its summary (if any) follows as `ThinkingDelta`s."""


@dataclass(frozen=True)
class ThinkingDelta:
    """A piece of the model's reasoning summary (or open-weight reasoning text)."""

    text: str


@dataclass(frozen=True)
class ModeChanged:
    """The server had forgotten the chain mid-send; the turn is being replayed."""

    mode: SendMode
    reason: str


@dataclass(frozen=True)
class SettingsChanged:
    """The turn goes out with other settings than it was asked with (core/turns.py)."""

    settings: GenerationSettings
    reason: str


@dataclass(frozen=True)
class ParameterDropped:
    """The deployment refused a parameter the app sends by itself (``prompt_cache_key``,
    ``include``): the turn is sent again without it, and it is left out from now on."""

    parameter: str
    reason: str


@dataclass(frozen=True)
class TurnEnded:
    reply: Message
    error: BackendError | None
    conversation_usage: Usage


TurnEvent = (
    TurnStarted
    | SettingsChanged
    | ReplyDelta
    | ThinkingStarted
    | ThinkingDelta
    | ModeChanged
    | ParameterDropped
    | ContextTrimmed
    | Retrying
    | Waiting
    | Answered
    | TurnEnded
)


# What a reply's stream yields to the turn while it lasts.
_StreamedEvent = (
    ReplyDelta | ThinkingStarted | ThinkingDelta | ContextTrimmed | Retrying | Waiting | Answered
)


async def _in_thread(function: Callable[..., _T], *args: object, **kwargs: object) -> _T:
    return await asyncio.to_thread(function, *args, **kwargs)


class ChatSession:
    """Sends turns of one saved conversation and keeps its transcript in the store."""

    def __init__(self, store: Store, backend: ResponsesBackend, conversation: Conversation) -> None:
        self.store = store
        self.backend = backend
        self.conversation = conversation
        # What the user should know that the transcript does not show: set when the
        # conversation was rebuilt from the server only in part.
        self.notes: list[str] = []
        # The reply of the last turn cancelled (or closed) before its end, as it was saved.
        self.cancelled_reply: Message | None = None
        # The files of the prompt being sent, encoded as they were kept; used once.
        self._encoded: dict[str, EncodedFile] = {}
        # The conversation's tree and the version it was read at (see _current_tree).
        self._tree: tuple[int, Tree] | None = None
        # The head a branch switch moved to and the tree it read: the siblings asked for
        # next are read from it, without another trip to the store (see siblings).
        self._switched_tree: tuple[str, Tree] | None = None

    # -- opening -----------------------------------------------------------------

    @classmethod
    async def start_new(
        cls, store: Store, backend: ResponsesBackend, *, profile: str, settings: GenerationSettings
    ) -> ChatSession:
        conversation = await _in_thread(
            store.create_conversation, profile=profile, settings=settings
        )
        return cls(store, backend, conversation)

    @classmethod
    async def open(
        cls, store: Store, backend: ResponsesBackend, conversation_id: str
    ) -> ChatSession:
        conversation = await _in_thread(store.get_conversation, conversation_id)
        if conversation is None:
            raise LookupError(f"No saved conversation with id {conversation_id}")
        return cls(store, backend, conversation)

    async def transcript(self, *, newest: int | None = None) -> list[Message]:
        """The conversation's messages, oldest first; only the latest ``newest`` if given."""
        return await _in_thread(self.store.transcript, self.conversation.id, newest=newest)

    async def usage(self) -> Usage:
        return await _in_thread(self.store.conversation_usage, self.conversation.id)

    # -- branches --------------------------------------------------------------------

    async def tree(self) -> Tree:
        return await _in_thread(self._current_tree)

    def _current_tree(self) -> Tree:
        """The conversation's tree, read again only when a message was added since (by
        this session or another process): a 1,000-turn tree takes a few ms to read and
        build, its version a few µs. Runs off the UI loop."""
        version = self.store.tree_version(self.conversation.id)
        known = self._tree
        if known is not None and known[0] == version:
            return known[1]
        tree = Tree(self.store.tree(self.conversation.id))
        self._tree = (version, tree)
        return tree

    async def siblings(self, path: Sequence[Message]) -> dict[str, Siblings]:
        """The alternatives of each message on ``path`` that has any, by its id."""
        switched, self._switched_tree = self._switched_tree, None
        if switched is not None and path and path[-1].id == switched[0]:
            # Asked right after a switch to this path: the tree the switch read (the
            # head it moved to is still the path's end, so nothing was added since).
            return switched[1].siblings_on(path)
        return (await self.tree()).siblings_on(path)

    async def switch_to(self, message_id: str, shown: Sequence[Message] = ()) -> list[Message]:
        """Shows the branch through ``message_id``: the head moves to the end of that
        branch written to last, and is remembered. Returns the new path, oldest first.
        ``shown``: the path shown now; what the two share is not read again (a 1,000-turn
        path takes about 0.1 s to read, its new tail well under a ms).

        The server may hold one branch and not another (each chains from its own parent
        reply): whether it holds this one is asked again, or found out on the next send.
        """
        shown_ids = [message.id for message in shown]
        # One trip off the UI loop for all of it: each trip costs the loop a wake-up.
        head, tree, ids, common, tail = await _in_thread(
            self._switch_in_store, message_id, shown_ids
        )
        if head != self.conversation.head_message_id:
            self._head_is(head)
            self.conversation = replace(self.conversation, server_state=ServerState.UNKNOWN)
        self._switched_tree = (head, tree)
        if tail is None or [message.id for message in tail] != ids[common:]:
            return await self.transcript()  # nothing shared, or written to meanwhile
        return [*shown[:common], *tail]

    def _switch_in_store(
        self, message_id: str, shown_ids: list[str]
    ) -> tuple[str, Tree, list[str], int, list[Message] | None]:
        """Moves the head to the newest leaf under ``message_id`` and reads the messages
        of the new path after what it shares with ``shown_ids`` (None: read it whole)."""
        tree = self._current_tree()
        if message_id not in tree:
            raise LookupError("That message is not part of this conversation any more.")
        head = tree.newest_leaf_under(message_id)
        if head != self.conversation.head_message_id:
            self.store.set_head(self.conversation.id, head, server_state=ServerState.UNKNOWN)
        ids = tree.path_to(head)
        common = shared_prefix(ids, shown_ids)
        new = ids[common:]
        if common == 0:
            return head, tree, ids, 0, None
        if len(new) <= TAIL_READ_ONE_BY_ONE:
            tail = self.store.messages(new)
        else:
            tail = self.store.transcript(self.conversation.id, newest=len(new))
        return head, tree, ids, common, tail

    async def branch_preview(
        self, message_id: str, shown: Sequence[Message], limit: int = PREVIEW_MESSAGES
    ) -> list[Message]:
        """The first ``limit`` messages a switch to ``message_id`` would show after what it
        shares with ``shown``; moves nothing (the screen renders them ahead of the switch)."""
        tree = await self.tree()
        if message_id not in tree:
            return []
        ids = tree.path_to(tree.newest_leaf_under(message_id))
        common = shared_prefix(ids, [message.id for message in shown])
        return await _in_thread(self.store.messages, ids[common : common + limit])

    def _head_is(self, message_id: str) -> None:
        """Keeps ``conversation.head_message_id`` as the store has it, after the session
        moved the head (a message added, a branch shown)."""
        self.conversation = replace(self.conversation, head_message_id=message_id)

    async def switch_to_match(self, search: str) -> list[Message] | None:
        """Shows the branch holding the newest message ``search`` finds (as the history
        list searches); None when no message matches or it is on the path already."""
        found = await _in_thread(self.store.newest_match, self.conversation.id, search)
        if found is None:
            return None
        tree = await self.tree()
        if found in tree.path_to(self.conversation.head_message_id or ""):
            return None
        return await self.switch_to(found)

    async def usage_table(self) -> tuple[list[TurnFigures], Usage]:
        """A row per reply on the transcript's path, and the conversation's sums."""
        from foundry_tui.core.usage import turn_figures  # only when the table is asked for

        rows = turn_figures(await self.transcript())
        return rows, await self.usage()

    # -- settings ----------------------------------------------------------------

    async def update_settings(self, settings: GenerationSettings) -> None:
        """Applies from the next turn; saved with the conversation."""
        if settings == self.conversation.settings:
            return
        await _in_thread(self.store.update_settings, self.conversation.id, settings)
        self.conversation = replace(self.conversation, settings=settings)

    async def rename(self, title: str) -> None:
        await _in_thread(self.store.rename_conversation, self.conversation.id, title)
        self.conversation = replace(self.conversation, title=title)

    # -- what the deployment refused ------------------------------------------------

    async def refused_parameters(self, model: str) -> dict[str, str]:
        """The parameters (API names) the profile's deployment ``model`` refused before,
        each with what the server said; they are left out of every request to it. Read
        afresh each time: another conversation (or `ask`) may have learnt one since."""
        return await _in_thread(self.store.rejected_parameters, self.conversation.profile, model)

    async def _remember_refusal(self, model: str, parameter: str, reason: str) -> None:
        for member in family(parameter):
            await _in_thread(
                self.store.reject_parameter, self.conversation.profile, model, member, reason
            )

    # -- server state --------------------------------------------------------------

    async def check_server_state(self) -> ServerState:
        """Asks the server whether it still holds the head response; saves the answer.

        Raises BackendError when the server cannot be asked (network, auth): the state
        then stays as it was, and a failed chain still falls back at send time.
        """
        if self.backend.stateless:
            return self.conversation.server_state
        anchor = _chain_anchor(await self.transcript())
        if anchor is None or anchor.response_id is None:
            return self.conversation.server_state
        held = await self.backend.holds(anchor.response_id)
        state = ServerState.LIVE if held else ServerState.EXPIRED
        await self._set_server_state(state)
        return state

    async def _set_server_state(self, state: ServerState) -> None:
        if state == self.conversation.server_state:
            return
        await _in_thread(self.store.set_server_state, self.conversation.id, state)
        self.conversation = replace(self.conversation, server_state=state)

    def next_send_mode(self, transcript: list[Message]) -> SendMode:
        """How the next turn after ``transcript`` (the whole path shown) reaches the server."""
        if not _replayed(transcript):
            return SendMode.NEW
        if self.backend.stateless:
            return SendMode.LOCAL
        if self.conversation.server_state == ServerState.EXPIRED:
            return SendMode.REPLAY
        return SendMode.CHAIN if _chain_anchor(transcript) is not None else SendMode.REPLAY

    async def next_request(
        self, transcript: list[Message], prompt: str, settings: GenerationSettings | None = None
    ) -> NextRequest:
        """What sending ``prompt`` after ``transcript`` with ``settings`` (else the
        conversation's) would hand the backend, as `_stream_turn` and `_pump` build it;
        saves and sends nothing (the palette's "View code" shows it)."""
        settings = settings or self.conversation.settings
        mode = self.next_send_mode(transcript)
        reasoning = await self._reasoning_items(transcript, mode, settings)
        previous_response_id, context = _request_context(transcript, mode, reasoning)
        messages = [*context, InputMessage(role=MessageRole.USER, text=prompt)]
        if self.backend.stateless:
            messages = [_text_only(message) for message in messages]
        return NextRequest(
            mode=mode,
            input=messages,
            previous_response_id=previous_response_id,
            store=not self.backend.stateless,
            prompt_cache_key=self.conversation.id,
            omit=tuple(await self.refused_parameters(settings.model)),
        )

    # -- sending -------------------------------------------------------------------

    async def send(
        self, prompt: str, attachments: Sequence[FileToAttach] = ()
    ) -> AsyncGenerator[TurnEvent, None]:
        """Saves the prompt, streams the reply, saves it; yields what the UI shows.

        ``attachments`` (files ``check_file`` accepted) are checked together, kept beside
        the database and linked to the prompt before the request leaves; AttachmentRejected
        (nothing saved) when they pass a request's limits, cannot be read any more, or
        the backend is the local model, which reads text only.

        Cancelling the task that iterates this saves the partial reply as CANCELLED and
        re-raises CancelledError; so does closing it (``aclose``) before its end.
        """
        settings = self.conversation.settings
        self._check_new_files(attachments)
        kept = [await self._keep(file) for file in attachments]
        history = await self.transcript()
        mode = self.next_send_mode(history)
        user = await _in_thread(
            self.store.add_message,
            conversation_id=self.conversation.id,
            role=MessageRole.USER,
            text=prompt,
            status=MessageStatus.COMPLETED,
            model=settings.model,
            attachments=kept,
        )
        self._head_is(user.id)
        if not self.conversation.title:  # the store titles it from the first prompt
            refreshed = await _in_thread(self.store.get_conversation, self.conversation.id)
            self.conversation = refreshed or self.conversation
        async with aclosing(self._stream_turn(user, history, mode, settings)) as turn:
            async for event in turn:
                yield event

    def _check_new_files(self, attachments: Sequence[FileToAttach]) -> None:
        if not attachments:
            return
        check_together(attachments)
        if self.backend.stateless:
            # Sent without them, the model would answer about files it never saw.
            raise AttachmentRejected(
                "The local model reads text only: it cannot take images or PDFs. "
                "Remove the attachments, or switch to a deployment that reads them."
            )

    async def _keep(self, file: FileToAttach) -> Attachment:
        """Keeps the file and, at the same time in another thread, encodes it for the
        request (about 0.1 s each for 20 MB, the hashing of both outside the GIL). The
        encoding is used if it is of the bytes kept (the file may change meanwhile)."""
        attachment, (url, sha256) = await asyncio.gather(
            _in_thread(self.store.keep_attachment, file),
            _in_thread(hashed_data_url, file.path, file.media_type),
        )
        if sha256 == attachment.sha256 and file.media_type == attachment.media_type:
            self._encoded[sha256] = url
        return attachment

    async def edit(
        self, prompt: Message, text: str, attachments: Sequence[FileToAttach] = ()
    ) -> AsyncGenerator[TurnEvent, None]:
        """Sends ``text`` in place of the earlier ``prompt``, as a new branch beside it
        (same parent); the original prompt and all that followed it stay, one branch over.
        The prompt's own files go with the new one, and ``attachments`` after them.

        TurnStarted.replaces is ``prompt``: it and what followed it give way on screen.
        """
        if prompt.role != MessageRole.USER:
            raise LookupError("Only a prompt can be edited; a reply can be regenerated.")
        path = await self.transcript()
        ids = [message.id for message in path]
        if prompt.id not in ids:
            path = await self.switch_to(prompt.id)
            ids = [message.id for message in path]
        history = path[: ids.index(prompt.id)]
        settings = self.conversation.settings
        self._check_new_files(attachments)
        kept = [*prompt.attachments, *[await self._keep(file) for file in attachments]]
        mode = self.next_send_mode(history)
        user = await _in_thread(
            self.store.add_message,
            conversation_id=self.conversation.id,
            role=MessageRole.USER,
            text=text,
            status=MessageStatus.COMPLETED,
            model=settings.model,
            attachments=kept,
            parent_id=prompt.parent_id or ROOT,
        )
        self._head_is(user.id)
        async with aclosing(
            self._stream_turn(user, history, mode, settings, replaces=prompt)
        ) as turn:
            async for event in turn:
                yield event

    async def retry(self, reply: Message) -> AsyncGenerator[TurnEvent, None]:
        """Sends the prompt of ``reply`` again: a new reply beside it (a failed or
        cancelled one retried, or any one regenerated); ``reply`` stays, one branch over."""
        if reply.parent_id is None:
            raise LookupError("That reply has no prompt to resend")
        user = await _in_thread(self.store.get_message, reply.parent_id)
        if user is None:
            raise LookupError("The prompt of that reply is no longer saved")
        path = await self.transcript()
        history = path[: next(i for i, m in enumerate(path) if m.id == user.id)]
        await _in_thread(self.store.set_head, self.conversation.id, user.id)
        self._head_is(user.id)
        mode = self.next_send_mode(history)
        turn = self._stream_turn(user, history, mode, self.conversation.settings, replaces=reply)
        async with aclosing(turn):
            async for event in turn:
                yield event

    async def _stream_turn(
        self,
        user: Message,
        history: list[Message],
        mode: SendMode,
        settings: GenerationSettings,
        *,
        replaces: Message | None = None,
        backend: ResponsesBackend | None = None,
    ) -> AsyncGenerator[TurnEvent, None]:
        """Streams one reply to ``user`` and saves it; ``backend``: another than the
        conversation's (a Compare column, core/compare.py)."""
        reasoning = await self._reasoning_items(history, mode, settings)
        previous_response_id, context = _request_context(history, mode, reasoning)
        reply = await _in_thread(
            self.store.add_message,
            conversation_id=self.conversation.id,
            role=MessageRole.ASSISTANT,
            text="",
            status=MessageStatus.PENDING,
            model=settings.model,
            previous_response_id=previous_response_id,
            parent_id=user.id,
        )
        self._head_is(reply.id)
        writer = _ReplyWriter(self.store, reply)
        try:
            yield TurnStarted(user=user, reply=reply, mode=mode, replaces=replaces)
            replayed = False
            while True:
                try:
                    async for delta in self._pump(writer, settings, context, user, backend):
                        yield delta
                    break
                except BackendError as error:
                    if writer.text:
                        raise
                    if error.kind == ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND and not replayed:
                        # The server forgot the chain (expired or deleted): replay the
                        # transcript.
                        replayed = True
                        await self._set_server_state(ServerState.EXPIRED)
                        writer.previous_response_id = None
                        yield ModeChanged(
                            mode=SendMode.REPLAY,
                            reason="The server no longer has this conversation; "
                            "sending the saved transcript instead.",
                        )
                        reasoning = await self._reasoning_items(history, SendMode.REPLAY, settings)
                        _, context = _request_context(history, SendMode.REPLAY, reasoning)
                        continue
                    dropped = await self._refused_by(error, settings.model)
                    if dropped is None:
                        raise
                    yield dropped
        except (asyncio.CancelledError, GeneratorExit):
            # Cancelled, or closed before its end (the caller was cancelled while it drew
            # an event). Saved synchronously: the task is being torn down.
            self.cancelled_reply = writer.finish_now(MessageStatus.CANCELLED, error=None)
            raise
        except BackendError as error:
            saved = await writer.finish(MessageStatus.FAILED, error=error.user_message)
            yield TurnEnded(reply=saved, error=error, conversation_usage=await self.usage())
            return
        except Exception as error:
            # A bug must still not lose the reply: save what arrived, then let it surface.
            await writer.finish(MessageStatus.FAILED, error=f"Unexpected error: {error}")
            raise
        finished = writer.finished
        if finished is None:  # the backend guarantees a terminal event; be safe anyway
            saved = await writer.finish(MessageStatus.FAILED, error="The reply ended unexpectedly.")
            yield TurnEnded(reply=saved, error=None, conversation_usage=await self.usage())
            return
        saved = await writer.finish(
            finished.status,
            error=finished.error or _incomplete_note(finished),
            finished=finished,
        )
        if finished.response_id and finished.status in _CHAINABLE:
            await self._set_server_state(ServerState.LIVE)
        failure = (
            BackendError(
                ErrorKind.STREAM, "The server could not finish the reply.", finished.error or ""
            )
            if finished.status == MessageStatus.FAILED
            else None
        )
        yield TurnEnded(reply=saved, error=failure, conversation_usage=await self.usage())

    async def _refused_by(self, error: BackendError, model: str) -> ParameterDropped | None:
        """Remembers a parameter the deployment refused. One the app sends by itself is
        dropped at once (the ParameterDropped to announce before sending again); one the
        user set fails the turn (None), for the user to resend without it."""
        parameter = error.param
        if error.kind != ErrorKind.UNSUPPORTED_PARAMETER or parameter not in REFUSABLE:
            return None
        known = parameter in await self.refused_parameters(model)
        # A refused value (xhigh where only low..high are taken) is not a refused parameter.
        if error.code != "unsupported_value":
            await self._remember_refusal(model, parameter, error.title)
        if parameter not in AUTOMATIC or known:
            return None
        return ParameterDropped(
            parameter,
            f"{model} does not accept {named([parameter])}: sent again without it, and left "
            "out from now on.",
        )

    async def _reasoning_items(
        self, history: list[Message], mode: SendMode, settings: GenerationSettings
    ) -> dict[str, tuple[ReasoningItem, ...]]:
        """The saved reasoning items of the replies a replay sends, by message id: only
        a replay sends them (a chained turn's server has them), and only those of the
        model asked now (another model cannot read them)."""
        if mode not in (SendMode.REPLAY, SendMode.LOCAL):
            return {}
        ids = [
            m.id for m in history if m.role == MessageRole.ASSISTANT and m.model == settings.model
        ]
        if not ids:
            return {}
        return await _in_thread(self.store.reasoning_items, ids)

    async def _pump(
        self,
        writer: _ReplyWriter,
        settings: GenerationSettings,
        context: list[InputMessage],
        user: Message,
        backend: ResponsesBackend | None = None,
    ) -> AsyncIterator[_StreamedEvent]:
        backend = backend or self.backend
        if writer.sent_at is None:  # a replay after a lost chain is still the same wait
            writer.sent_at = _clock()
        messages = [
            *context,
            InputMessage(role=MessageRole.USER, text=user.text, attachments=user.attachments),
        ]
        if backend.stateless:
            messages = [_text_only(message) for message in messages]
        elif any(message.attachments for message in messages):
            # Read and base64-encoded here, in a thread: the body is built on the loop.
            encoded, self._encoded = self._encoded, {}
            messages = await _in_thread(_with_data, self.store, messages, encoded)
        stream = backend.stream_reply(
            settings=settings,
            input=messages,
            previous_response_id=writer.previous_response_id,
            store=not backend.stateless,
            prompt_cache_key=self.conversation.id,
            omit=tuple(await self.refused_parameters(settings.model)),
        )
        try:
            async for event in self._relay(writer, stream):
                yield event
        except BackendError as error:
            raise _naming_the_file(error, messages) from error

    async def _relay(
        self, writer: _ReplyWriter, stream: AsyncIterator[BackendEvent]
    ) -> AsyncIterator[_StreamedEvent]:
        async for event in stream:
            if isinstance(event, TextDelta):
                if writer.first_at is None:
                    writer.first_at = _clock()
                writer.parts.append(event.text)
                yield ReplyDelta(event.text)
                await writer.flush_if_due()
            elif isinstance(event, ContextTrimmed | Retrying | Waiting | Answered):
                yield event
            elif isinstance(event, ReasoningDelta):
                if writer.first_at is None:  # thinking is the model's first output
                    writer.first_at = _clock()
                writer.reasoning.append(event.text)
                yield ThinkingDelta(event.text)
                await writer.flush_if_due()
            elif isinstance(event, ReasoningStarted):
                yield ThinkingStarted()
            else:
                writer.observe(event)


class _ReplyWriter:
    """Accumulates a streaming reply and writes it to its row at a bounded rate."""

    def __init__(self, store: Store, reply: Message) -> None:
        self.store = store
        self.reply = reply
        self.previous_response_id = reply.previous_response_id
        self.parts: list[str] = []
        self.reasoning: list[str] = []  # the reasoning summary's (or text's) pieces
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finished: ResponseFinished | None = None
        # When the request left, its first text (or reasoning) came and the stream ended.
        self.sent_at: float | None = None
        self.first_at: float | None = None
        self.ended_at: float | None = None
        self._saved_length = 0
        self._saved_reasoning = 0
        self._last_save = time.monotonic()
        self._save_interval = PARTIAL_SAVE_INTERVAL

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning)

    def observe(self, event: ResponseStarted | ResponseFinished) -> None:
        if isinstance(event, ResponseStarted):
            self.response_id = event.response_id
            self.response_model = event.model
        else:
            self.finished = event
            self.ended_at = _clock()

    def timings(self) -> tuple[int | None, int | None]:
        """(first_token_ms, duration_ms) from the request leaving; None where unknown. A
        stream that ended without a final event ends now."""
        if self.sent_at is None:
            return None, None
        ended = self.ended_at if self.ended_at is not None else _clock()
        first = None if self.first_at is None else _ms(self.first_at - self.sent_at)
        return first, _ms(ended - self.sent_at)

    async def flush_if_due(self) -> None:
        started = time.monotonic()
        if started - self._last_save < self._save_interval:
            return
        text = self.text
        thought = self.reasoning_text if self.reasoning else ""
        if len(text) == self._saved_length and len(thought) == self._saved_reasoning:
            return
        self.parts[:] = [text]
        self._saved_length = len(text)
        # The reasoning is written with the text, and only when it grew.
        reasoning: str | None = None
        if len(thought) != self._saved_reasoning:
            self.reasoning[:] = [thought]
            self._saved_reasoning = len(thought)
            reasoning = thought
        try:
            await _in_thread(
                self.store.update_message, self.reply.id, text=text, reasoning=reasoning
            )
        except StorageError:
            raise
        except Exception:
            # Text SQLite cannot take (a lone surrogate from a JSON escape): keep what it can.
            await _in_thread(
                self.store.update_message,
                self.reply.id,
                text=storable_text(text),
                reasoning=None if reasoning is None else storable_text(reasoning),
            )
        self._last_save = time.monotonic()
        took = self._last_save - started
        self._save_interval = max(PARTIAL_SAVE_INTERVAL, SAVE_TIME_FACTOR * took)

    async def finish(
        self,
        status: MessageStatus,
        *,
        error: str | None = None,
        finished: ResponseFinished | None = None,
    ) -> Message:
        return await _in_thread(self.finish_now, status, error=error, finished=finished)

    def finish_now(
        self,
        status: MessageStatus,
        *,
        error: str | None = None,
        finished: ResponseFinished | None = None,
    ) -> Message:
        """Writes the whole text and the final status in one transaction.

        Whatever the backend let through, the text and the status are saved: fields unfit
        to keep are dropped with a note, and if the row still cannot take the rest, the
        text and status are saved without it.
        """
        notes = [error] if error else []
        if finished is not None:
            notes += finished.notes
        response_id = (finished.response_id if finished else None) or self.response_id
        model = (finished.model if finished else None) or self.response_model
        usage, usage_dropped = usage_of(finished.usage) if finished else (None, False)
        dropped = [
            name
            for name, value, kept in (
                ("response id", response_id, short_string(response_id)),
                ("model", model, short_string(model)),
            )
            if value not in (None, "") and kept is None  # "": none given (local model)
        ]
        if usage_dropped:
            dropped.append("token counts")
        if dropped:
            notes.append(DROPPED_DETAILS_NOTE.format(", ".join(dropped)))
        note = " ".join(notes) or None
        text = self.text
        thought = self.reasoning_text or None
        first_token_ms, duration_ms = self.timings()
        if debugging():
            get_logger(__name__).debug("reply %s (%s): %r", self.reply.id, status, text)
        try:
            self.store.update_message(
                self.reply.id,
                text=text,
                status=status,
                response_id=short_string(response_id),
                response_model=short_string(model),
                usage=usage,
                error=note,
                reasoning=thought,
                first_token_ms=first_token_ms,
                duration_ms=duration_ms,
            )
        except Exception as first:
            note = f"{note} {UNSAVED_DETAILS_NOTE}" if note else UNSAVED_DETAILS_NOTE
            text = storable_text(text)
            try:
                self.store.update_message(
                    self.reply.id,
                    text=text,
                    status=status,
                    error=note,
                    reasoning=None if thought is None else storable_text(thought),
                )
            except Exception:
                raise first from None
        if finished is not None and finished.reasoning_items:
            try:
                self.store.save_reasoning_items(self.reply.id, finished.reasoning_items)
            except StorageError as error:
                # The reply is saved; a replay only sends it without its reasoning.
                get_logger(__name__).warning("reasoning items not saved: %s", error)
        saved = self.store.get_message(self.reply.id)
        if saved is None:  # the conversation was deleted while the reply streamed
            return replace(self.reply, text=text, status=status, error=note)
        return saved


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _chain_anchor(transcript: list[Message]) -> Message | None:
    """The newest reply the server kept, from which a next turn can chain."""
    for message in reversed(transcript):
        if (
            message.role == MessageRole.ASSISTANT
            and message.response_id
            and message.status in _CHAINABLE
        ):
            return message
    return None


def _request_context(
    history: list[Message],
    mode: SendMode,
    reasoning: dict[str, tuple[ReasoningItem, ...]] | None = None,
) -> tuple[str | None, list[InputMessage]]:
    """(previous_response_id, input messages to send before the new prompt); a replayed
    reply carries its saved reasoning items (``reasoning``, by message id)."""
    anchor = _chain_anchor(history) if mode == SendMode.CHAIN else None
    if anchor is not None:
        # Turns after the anchor (a failed or cancelled one) never reached the server's
        # chain: send them along so the model sees what the user sees.
        after = history[history.index(anchor) + 1 :]
        return anchor.response_id, _as_input(after, reasoning or {})
    return None, _as_input(history, reasoning or {})


def _as_input(
    messages: list[Message], reasoning: dict[str, tuple[ReasoningItem, ...]]
) -> list[InputMessage]:
    return [
        InputMessage(
            role=m.role,
            text=m.text,
            attachments=m.attachments,
            reasoning_items=reasoning.get(m.id, ()),
        )
        for m in _replayed(messages)
        if m.text.strip() or m.attachments
    ]


def _with_data(
    store: Store, messages: list[InputMessage], encoded: dict[str, EncodedFile]
) -> list[InputMessage]:
    """``messages`` with their attachments' bytes as data URLs, read from the store's
    files (the same content once) unless ``encoded`` has them already. A file gone from
    the attachments folder fails the turn, named, rather than leaving it out unsaid."""
    encoded = dict(encoded)
    result: list[InputMessage] = []
    for message in messages:
        if not message.attachments:
            result.append(message)
            continue
        for attachment in message.attachments:
            if attachment.sha256 not in encoded:
                path = store.attachment_path(attachment.sha256)
                try:
                    encoded[attachment.sha256] = data_url(path, attachment.media_type)
                except OSError as error:
                    raise BackendError(
                        ErrorKind.CONFIG,
                        f"The file {attachment.name} sent with a prompt of this conversation "
                        "is no longer kept, so the turn cannot carry it.",
                        f"It was at {path} ({error.strerror or error}). Start a new "
                        "conversation, or attach the file again there.",
                    ) from None
        data = tuple(encoded[attachment.sha256] for attachment in message.attachments)
        result.append(replace(message, attachment_data=data))
    return result


_CONTENT_PART = re.compile(r"input\[(\d+)\]\.content\[(\d+)\]")


def _naming_the_file(error: BackendError, messages: list[InputMessage]) -> BackendError:
    """A 400 whose ``param`` points at an attachment's content part, with the file's name
    in its title (the parts go: the text, if any, then the files in order)."""
    match = _CONTENT_PART.match(error.param or "")
    if error.status_code != 400 or match is None:
        return error
    index, part = int(match.group(1)), int(match.group(2))
    if index >= len(messages) or not messages[index].attachments:
        return error
    message = messages[index]
    position = part - (1 if message.text else 0)
    if not 0 <= position < len(message.attachments):
        return error
    attachment = message.attachments[position]
    return BackendError(
        error.kind,
        f"The server refused the attached file {attachment.name} "
        f"({describe(attachment.media_type, attachment.size)})",
        error.detail,
        status_code=error.status_code,
        code=error.code,
        param=error.param,
        request_id=error.request_id,
    )


def _text_only(message: InputMessage) -> InputMessage:
    """For the local model, which reads text only: the files of earlier prompts become a
    line saying what was attached, so it knows there was something it cannot see."""
    if not message.attachments:
        return message
    listed = "; ".join(
        f"{attachment.name} ({describe(attachment.media_type, attachment.size)})"
        for attachment in message.attachments
    )
    note = f"[Attached, not readable here: {listed}]"
    text = f"{message.text}\n\n{note}" if message.text else note
    return replace(message, text=text, attachments=())


def _replayed(messages: list[Message]) -> list[Message]:
    """The messages a later turn sends as context.

    A turn whose reply failed (a refused request, a content filter, a broken stream) is
    left out, prompt and reply, unless it is resent: the model never answered it, and a
    blocked prompt replayed would be blocked again on every later turn. So is a turn
    cancelled before any text came. A reply cut short with text the user saw (incomplete,
    cancelled, interrupted) is kept, with its prompt: the user may refer to it.
    """
    kept: list[Message] = []
    for index, message in enumerate(messages):
        if message.role == MessageRole.USER:
            reply = messages[index + 1] if index + 1 < len(messages) else None
            if reply is not None and reply.role == MessageRole.ASSISTANT and _dropped(reply):
                continue
        elif _dropped(message):
            continue
        kept.append(message)
    return kept


def _dropped(reply: Message) -> bool:
    if reply.status == MessageStatus.FAILED:
        return True
    return reply.status != MessageStatus.COMPLETED and not reply.text.strip()


def _incomplete_note(finished: ResponseFinished) -> str | None:
    if finished.status != MessageStatus.INCOMPLETE:
        return None
    reason = finished.incomplete_reason or "unknown reason"
    if reason == "max_output_tokens":
        return CUT_OFF_AT_MAX_TOKENS
    return f"The reply stopped early ({reason})."


# Responses walked back at most: a server whose chain loops or never ends is not followed on.
_MAX_CHAIN = 1000
_SHOWN_ID = 48


async def import_from_server(
    store: Store,
    backend: ResponsesBackend,
    response_id: str,
    *,
    profile: str,
    notes: list[str] | None = None,
) -> Conversation:
    """Rebuilds a conversation that only the server knows from its last response id.

    Walks ``previous_response_id`` back to the first response, then saves each request's
    input messages and each response's output in order: the chain decides the order of
    the turns. Raises LookupError when the server does not have ``response_id``. When an
    older response cannot be fetched (expired, or a gateway that rejects the raw ids it
    hands out), or a response's input was given only in part, what was fetched is kept
    and ``notes`` gets a line saying what is missing.
    """
    existing = await _in_thread(store.find_conversation_by_response_id, response_id)
    if existing is not None:
        return existing
    told = notes if notes is not None else []
    chain: list[RetrievedResponse] = []
    visited: set[str] = set()
    next_id: str | None = response_id
    while next_id is not None:
        if next_id in visited or len(chain) >= _MAX_CHAIN:
            told.append(
                f"The server's chain of responses loops or runs past {_MAX_CHAIN} replies: "
                f"it was followed back to response {_shown(next_id)}; older turns are missing."
            )
            break
        visited.add(next_id)
        why = "the server no longer has it"
        try:
            found = await backend.retrieve(next_id)
        except BackendError as error:
            if not chain:
                raise
            found, why = None, error.title
        if found is None:
            if not chain:
                raise LookupError(f"The server has no response {response_id}")
            told.append(
                f"Could not fetch response {_shown(next_id)} ({why}): the turns before it are "
                "missing, except those a later request repeated."
            )
            break  # keep what is there
        chain.append(found)
        next_id = found.previous_response_id
    chain.reverse()
    inputs: list[list[InputMessage]] = []
    for response in chain:
        try:
            inputs.append(await backend.input_messages(response.id))
        except BackendError as error:
            told.append(
                f"Could not read the input of response {_shown(response.id)} ({error.title}): "
                "its prompt is missing."
            )
            inputs.append([])
    fresh, cut = _new_inputs(chain, inputs)
    told += [
        f"The server gave only part of the input of response {_shown(rid)} (it ignores "
        "paging): earlier messages of that request are missing."
        for rid in cut
    ]
    last = chain[-1]
    settings = GenerationSettings(model=last.model or "", instructions=last.instructions)
    return await _in_thread(_save_imported, store, profile, settings, chain, fresh, told)


def _shown(response_id: str) -> str:
    return response_id if len(response_id) <= _SHOWN_ID else response_id[: _SHOWN_ID - 1] + "…"


def _new_inputs(
    chain: list[RetrievedResponse], inputs: list[list[InputMessage]]
) -> tuple[list[list[InputMessage]], list[str]]:
    """Each response's own new input messages, and the ids of responses whose new input
    the server gave only in part.

    Servers differ: OpenAI and agentserver list a chained response's input items starting
    with the whole earlier conversation, others only that request's input, and a gateway
    that ignores paging only the newest items. Whatever repeats the end of the transcript
    so far is dropped, so all give the same transcript. A list that matches the transcript
    better reversed came newest first (a server that ignores `order`): it is turned round.
    """
    seen: list[InputMessage] = []
    result: list[list[InputMessage]] = []
    cut: list[str] = []
    for response, request_input in zip(chain, inputs, strict=True):
        items = list(request_input)
        overlap = _overlap(seen, items)
        flipped = items[::-1]
        if _overlap(seen, flipped) > overlap:
            items, overlap = flipped, _overlap(seen, flipped)
        if isinstance(request_input, InputMessages) and request_input.cut and overlap == 0:
            # Nothing of the earlier transcript at its start: the part left out was this
            # request's own input.
            cut.append(response.id)
        fresh = items[overlap:]
        result.append(fresh)
        seen += [*fresh, InputMessage(role=MessageRole.ASSISTANT, text=response.output_text)]
    return result, cut


def _overlap(seen: list[InputMessage], items: list[InputMessage]) -> int:
    """The length of the longest end of ``seen`` that ``items`` starts with."""
    if not items:
        return 0
    first = items[0]
    for length in range(min(len(seen), len(items)), 0, -1):
        if seen[-length] == first and items[:length] == seen[-length:]:
            return length
    return 0


def _save_imported(
    store: Store,
    profile: str,
    settings: GenerationSettings,
    chain: list[RetrievedResponse],
    inputs: list[list[InputMessage]],
    notes: list[str],
) -> Conversation:
    conversation = store.create_conversation(profile=profile, settings=settings)
    not_rebuilt: list[str] = []
    for response, request_input in zip(chain, inputs, strict=True):
        for item in request_input:
            text, kept = item.text, []
            missing = []
            for fetched in item.fetched_files:
                attachment = _keep_fetched(store, fetched)
                if attachment is None:
                    missing.append(fetched.name)
                else:
                    kept.append(attachment)
            if missing:
                # In the prompt itself: a replay tells the model, and the transcript the
                # user, that something went with it.
                listed = ", ".join(missing)
                text = f"{text}\n\n[Attached on the server, not rebuilt here: {listed}]".strip()
                not_rebuilt += missing
            store.add_message(
                conversation_id=conversation.id,
                role=item.role,
                text=text,
                status=MessageStatus.COMPLETED,
                model=response.model,
                attachments=kept,
            )
        reply = store.add_message(
            conversation_id=conversation.id,
            role=MessageRole.ASSISTANT,
            text=response.output_text,
            status=_status_of(response.status),
            model=response.model,
            previous_response_id=response.previous_response_id,
            response_id=response.id,
        )
        store.update_message(reply.id, response_model=response.model, usage=response.usage)
    if not_rebuilt:
        notes.append(
            f"The server did not give back {len(not_rebuilt)} of the attached images and "
            "files (it listed a file id or a link in their place): their prompts name them."
        )
    store.set_server_state(conversation.id, ServerState.LIVE)
    found = store.get_conversation(conversation.id)
    assert found is not None
    return found


def _keep_fetched(store: Store, fetched: FetchedFile) -> Attachment | None:
    """A rebuilt prompt's image or file, kept beside the database; None when the server
    did not give its bytes back (a file id, a web URL) or they are of no type it takes."""
    found = decoded_data_url(fetched.url)
    if found is None:
        return None
    media_type, data = found
    sha256 = store.keep_attachment_bytes(data)
    name = fetched.name
    if "." not in name:
        name = f"{name}.{_EXTENSIONS[media_type]}"
    return Attachment(sha256=sha256, name=name[:_NAME_CHARS], media_type=media_type, size=len(data))


# The file name extension a rebuilt attachment without one gets, by its media type.
_EXTENSIONS: Final = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "application/pdf": "pdf",
}
_NAME_CHARS: Final = 255


def _status_of(server_status: str | None) -> MessageStatus:
    try:
        status = MessageStatus(server_status or "completed")
    except ValueError:
        return MessageStatus.COMPLETED
    return (
        status
        if status in _CHAINABLE or status == MessageStatus.FAILED
        else MessageStatus.COMPLETED
    )
