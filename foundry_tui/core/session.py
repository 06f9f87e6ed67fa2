"""One conversation, without a terminal: what to send, what to save and when, how to resume.

The rules that keep a user's work safe live here, not in widgets:

* the prompt is saved before the request leaves, with an empty PENDING reply row under it;
* the reply text is flushed to that row while it streams (a crash loses well under a second),
  and its final status (completed / incomplete / failed / cancelled) is saved when it ends;
* a turn chains with ``previous_response_id`` while the server still holds the head response;
  when it no longer does (404 on retrieve, or a 400 ``previous_response_not_found`` on create),
  the local transcript is replayed as input and a new chain starts.

Every store call runs in a thread (``asyncio.to_thread``) so a slow disk never stalls the UI.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, TypeVar

from foundry_tui.core.coerce import (
    DROPPED_DETAILS_NOTE,
    UNSAVED_DETAILS_NOTE,
    short_string,
    storable_text,
    usage_of,
)
from foundry_tui.core.logs import debugging, get_logger
from foundry_tui.core.models import (
    Answered,
    BackendError,
    BackendEvent,
    ContextTrimmed,
    Conversation,
    ErrorKind,
    GenerationSettings,
    InputMessage,
    InputMessages,
    Message,
    MessageRole,
    MessageStatus,
    ReasoningDelta,
    ResponseFinished,
    ResponseStarted,
    RetrievedResponse,
    Retrying,
    ServerState,
    StorageError,
    TextDelta,
    Usage,
    Waiting,
)

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
class TurnStarted:
    user: Message
    reply: Message
    mode: SendMode
    # A retry: the earlier reply to the same prompt, which this one takes the place of.
    replaces: Message | None = None


@dataclass(frozen=True)
class ReplyDelta:
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
class TurnEnded:
    reply: Message
    error: BackendError | None
    conversation_usage: Usage


TurnEvent = (
    TurnStarted
    | SettingsChanged
    | ReplyDelta
    | ModeChanged
    | ContextTrimmed
    | Retrying
    | Waiting
    | Answered
    | TurnEnded
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

    # -- sending -------------------------------------------------------------------

    async def send(self, prompt: str) -> AsyncGenerator[TurnEvent, None]:
        """Saves the prompt, streams the reply, saves it; yields what the UI shows.

        Cancelling the task that iterates this saves the partial reply as CANCELLED and
        re-raises CancelledError; so does closing it (``aclose``) before its end.
        """
        settings = self.conversation.settings
        history = await self.transcript()
        mode = self.next_send_mode(history)
        user = await _in_thread(
            self.store.add_message,
            conversation_id=self.conversation.id,
            role=MessageRole.USER,
            text=prompt,
            status=MessageStatus.COMPLETED,
            model=settings.model,
        )
        if not self.conversation.title:  # the store titles it from the first prompt
            refreshed = await _in_thread(self.store.get_conversation, self.conversation.id)
            self.conversation = refreshed or self.conversation
        async with aclosing(self._stream_turn(user, history, mode, settings)) as turn:
            async for event in turn:
                yield event

    async def retry(self, reply: Message) -> AsyncGenerator[TurnEvent, None]:
        """Sends the prompt of a failed or cancelled reply again, as a new branch under it."""
        if reply.parent_id is None:
            raise LookupError("That reply has no prompt to resend")
        user = await _in_thread(self.store.get_message, reply.parent_id)
        if user is None:
            raise LookupError("The prompt of that reply is no longer saved")
        path = await self.transcript()
        history = path[: next(i for i, m in enumerate(path) if m.id == user.id)]
        await _in_thread(self.store.set_head, self.conversation.id, user.id)
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
    ) -> AsyncGenerator[TurnEvent, None]:
        previous_response_id, context = _request_context(history, mode)
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
        writer = _ReplyWriter(self.store, reply)
        try:
            yield TurnStarted(user=user, reply=reply, mode=mode, replaces=replaces)
            try:
                async for delta in self._pump(writer, settings, context, user):
                    yield delta
            except BackendError as error:
                if error.kind != ErrorKind.PREVIOUS_RESPONSE_NOT_FOUND or writer.text:
                    raise
                # The server forgot the chain (expired or deleted): replay the transcript.
                await self._set_server_state(ServerState.EXPIRED)
                writer.previous_response_id = None
                yield ModeChanged(
                    mode=SendMode.REPLAY,
                    reason="The server no longer has this conversation; "
                    "sending the saved transcript instead.",
                )
                _, context = _request_context(history, SendMode.REPLAY)
                async for delta in self._pump(writer, settings, context, user):
                    yield delta
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

    async def _pump(
        self,
        writer: _ReplyWriter,
        settings: GenerationSettings,
        context: list[InputMessage],
        user: Message,
    ) -> AsyncIterator[ReplyDelta | ContextTrimmed | Retrying | Waiting | Answered]:
        if writer.sent_at is None:  # a replay after a lost chain is still the same wait
            writer.sent_at = _clock()
        stream = self.backend.stream_reply(
            settings=settings,
            input=[*context, InputMessage(role=MessageRole.USER, text=user.text)],
            previous_response_id=writer.previous_response_id,
            store=not self.backend.stateless,
        )
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
                # Not shown or saved yet: the Thinking block comes with issue 13's work.
                continue
            else:
                writer.observe(event)


class _ReplyWriter:
    """Accumulates a streaming reply and writes it to its row at a bounded rate."""

    def __init__(self, store: Store, reply: Message) -> None:
        self.store = store
        self.reply = reply
        self.previous_response_id = reply.previous_response_id
        self.parts: list[str] = []
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finished: ResponseFinished | None = None
        # When the request left, its first text (or reasoning) came and the stream ended.
        self.sent_at: float | None = None
        self.first_at: float | None = None
        self.ended_at: float | None = None
        self._saved_length = 0
        self._last_save = time.monotonic()
        self._save_interval = PARTIAL_SAVE_INTERVAL

    @property
    def text(self) -> str:
        return "".join(self.parts)

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
        if len(text) == self._saved_length:
            return
        self.parts[:] = [text]
        self._saved_length = len(text)
        try:
            await _in_thread(self.store.update_message, self.reply.id, text=text)
        except StorageError:
            raise
        except Exception:
            # Text SQLite cannot take (a lone surrogate from a JSON escape): keep what it can.
            await _in_thread(self.store.update_message, self.reply.id, text=storable_text(text))
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
                first_token_ms=first_token_ms,
                duration_ms=duration_ms,
            )
        except Exception as first:
            note = f"{note} {UNSAVED_DETAILS_NOTE}" if note else UNSAVED_DETAILS_NOTE
            text = storable_text(text)
            try:
                self.store.update_message(self.reply.id, text=text, status=status, error=note)
            except Exception:
                raise first from None
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
    history: list[Message], mode: SendMode
) -> tuple[str | None, list[InputMessage]]:
    """(previous_response_id, input messages to send before the new prompt)."""
    anchor = _chain_anchor(history) if mode == SendMode.CHAIN else None
    if anchor is not None:
        # Turns after the anchor (a failed or cancelled one) never reached the server's
        # chain: send them along so the model sees what the user sees.
        after = history[history.index(anchor) + 1 :]
        return anchor.response_id, _as_input(after)
    return None, _as_input(history)


def _as_input(messages: list[Message]) -> list[InputMessage]:
    return [InputMessage(role=m.role, text=m.text) for m in _replayed(messages) if m.text.strip()]


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
        return "Cut off at the max output tokens limit."
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
    return await _in_thread(_save_imported, store, profile, settings, chain, fresh)


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
) -> Conversation:
    conversation = store.create_conversation(profile=profile, settings=settings)
    for response, request_input in zip(chain, inputs, strict=True):
        for item in request_input:
            store.add_message(
                conversation_id=conversation.id,
                role=item.role,
                text=item.text,
                status=MessageStatus.COMPLETED,
                model=response.model,
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
    store.set_server_state(conversation.id, ServerState.LIVE)
    found = store.get_conversation(conversation.id)
    assert found is not None
    return found


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
