"""Compare: one prompt sent to 2 or 3 contenders at once, each reply a sibling branch.

A contender is a backend and the settings to send with: a deployment of the profile
shares the conversation's backend with another ``model``; the bundled local model has
a backend of its own. The prompt is saved once, as a child of the conversation's head;
each contender's reply is saved under it, streamed and saved as it comes exactly as a
turn's reply is (`ChatSession._stream_turn`: partial saves, a cancelled reply saved with
what arrived, a failure with its error). Each contender's history is the path to the
prompt, and each chains from that path's last kept reply where its backend can (a
stateless backend replays the transcript).

    comparison = Comparison(session, [Contender("gpt-4o", s1, backend), ...])
    async for event in comparison.run("Why is the sky blue?"):
        ...  # PromptSaved, then ColumnEvent(index, TurnStarted | ReplyDelta | ...),
        ...  # and one ColumnClosed per column, in whatever order the streams go
    await comparison.choose(1)  # that reply becomes the head, its model the conversation's

Cancelling the task that iterates ``run`` (or closing it) cancels every stream; each
reply is saved as cancelled with its text so far. A reply the user did not choose stays
where it was saved, a sibling of the chosen one. Closed without a choice
(`settle_unchosen`), the first column's reply that has text becomes the head, so the
chat shows an answer and the others are its siblings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from foundry_tui.core.logs import report_bug
from foundry_tui.core.models import (
    BackendError,
    GenerationSettings,
    Message,
    MessageRole,
    MessageStatus,
    StorageError,
)
from foundry_tui.core.session import (
    ReplyDelta,
    SendMode,
    ThinkingDelta,
    TurnEnded,
    TurnEvent,
    TurnStarted,
)

if TYPE_CHECKING:
    from foundry_tui.core.session import ChatSession, ResponsesBackend

__all__ = [
    "MAX_CONTENDERS",
    "MIN_CONTENDERS",
    "Chosen",
    "ColumnClosed",
    "ColumnEvent",
    "CompareEvent",
    "Comparison",
    "Contender",
    "LocalModel",
    "Preparing",
    "PromptSaved",
    "local_settings",
]

MIN_CONTENDERS = 2
MAX_CONTENDERS = 3
# The longest one column hands on deltas without letting the others (and the UI) run.
RUN_SECONDS = 0.002
# Statuses of a reply worth continuing from.
_ANSWERED = frozenset({MessageStatus.COMPLETED, MessageStatus.INCOMPLETE})


@runtime_checkable
class Preparable(Protocol):
    """A backend that must start something first (the local model's server)."""

    async def prepare(self, progress: Callable[[str], None]) -> None: ...


@dataclass(frozen=True)
class Contender:
    """One column: who answers (``label``: the deployment's or the local model's name, as
    the header shows it), with which settings, through which backend."""

    label: str
    settings: GenerationSettings
    backend: ResponsesBackend
    # The bundled local model: continuing with it leaves the conversation's model alone
    # (the profile's deployments cannot reach it).
    local: bool = False


@dataclass(frozen=True)
class PromptSaved:
    """The prompt is in the conversation; every column's reply will be its child."""

    user: Message


@dataclass(frozen=True)
class Preparing:
    """The column's backend is starting (the local model loading): what to show."""

    text: str


@dataclass(frozen=True)
class ColumnEvent:
    """What one column's turn yielded (the session's turn events), tagged with the column."""

    index: int
    event: TurnEvent | Preparing


@dataclass(frozen=True)
class ColumnClosed:
    """The column is over, however it ended (one per column). ``stopped``: its reply as
    saved when it stopped before its end (cancelled); ``problem``: what went wrong that is
    not the server's answer (the disk, a bug), said in one line."""

    index: int
    stopped: Message | None = None
    problem: str | None = None


CompareEvent = PromptSaved | ColumnEvent | ColumnClosed


@dataclass(frozen=True)
class Chosen:
    """The reply continued with, and what the chat should say about it."""

    reply: Message
    notice: str
    settings: GenerationSettings  # the conversation's settings from now on


def local_settings(conversation: GenerationSettings, model: str) -> GenerationSettings:
    """What the local model is sent in a comparison: the conversation's instructions and
    sampling, none of the reasoning options (llama.cpp takes none of them)."""
    return GenerationSettings(
        model=model,
        instructions=conversation.instructions,
        temperature=conversation.temperature,
        top_p=conversation.top_p,
        max_output_tokens=conversation.max_output_tokens,
    )


class _Column:
    """What is known of one column while it streams: its reply and live figures."""

    def __init__(self) -> None:
        self.reply: Message | None = None
        self.error: BackendError | None = None
        self.started_at: float | None = None
        self.first_at: float | None = None
        self.characters = 0
        self.ended = False
        # Set once its reply row is saved (or none will be soon): the next column saves
        # its row after this one's, so the replies' order as branches is the columns'.
        self.placed = asyncio.Event()


class Comparison:
    """One prompt to ``contenders`` (2 or 3) of one conversation (``session``)."""

    def __init__(self, session: ChatSession, contenders: Sequence[Contender]) -> None:
        if not MIN_CONTENDERS <= len(contenders) <= MAX_CONTENDERS:
            raise ValueError(
                f"A comparison takes {MIN_CONTENDERS} or {MAX_CONTENDERS} contenders, "
                f"not {len(contenders)}"
            )
        self.session = session
        self.contenders = tuple(contenders)
        self.user: Message | None = None
        self._columns = [_Column() for _ in contenders]

    # -- what is known -------------------------------------------------------------

    def reply(self, index: int) -> Message | None:
        """The column's reply as last seen (pending while it streams), or None yet."""
        return self._columns[index].reply

    def error(self, index: int) -> BackendError | None:
        return self._columns[index].error

    def streaming(self, index: int) -> bool:
        column = self._columns[index]
        return column.started_at is not None and not column.ended

    def live_figures(self, index: int, now: float | None = None) -> tuple[int | None, float | None]:
        """(ms to the first output, estimated tokens per second so far) of a column still
        streaming, from the characters that came (four a token); None where unknown."""
        column = self._columns[index]
        if column.started_at is None or column.first_at is None:
            return None, None
        now = time.monotonic() if now is None else now
        first_ms = round((column.first_at - column.started_at) * 1000)
        seconds = now - column.first_at
        rate = column.characters / 4 / seconds if seconds > 0.05 else None
        return first_ms, rate

    # -- running -------------------------------------------------------------------

    async def run(self, prompt: str) -> AsyncGenerator[CompareEvent, None]:
        """Saves ``prompt`` once, then streams every contender's reply under it."""
        session = self.session
        history = await session.transcript()
        user = await asyncio.to_thread(
            session.store.add_message,
            conversation_id=session.conversation.id,
            role=MessageRole.USER,
            text=prompt,
            status=MessageStatus.COMPLETED,
            model=session.conversation.settings.model,
        )
        self.user = user
        if not session.conversation.title:  # the store titles it from the first prompt
            refreshed = await asyncio.to_thread(
                session.store.get_conversation, session.conversation.id
            )
            session.conversation = refreshed or session.conversation
        yield PromptSaved(user)
        queue: asyncio.Queue[CompareEvent] = asyncio.Queue()
        tasks = [
            asyncio.create_task(self._column(index, contender, user, history, queue))
            for index, contender in enumerate(self.contenders)
        ]
        open_columns = len(tasks)
        try:
            while open_columns:
                event = await queue.get()
                if isinstance(event, ColumnClosed):
                    open_columns -= 1
                yield event
        finally:
            for task in tasks:
                task.cancel()
            # Each stream saves its reply as cancelled as its task ends: wait for that.
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _column(
        self,
        index: int,
        contender: Contender,
        user: Message,
        history: list[Message],
        queue: asyncio.Queue[CompareEvent],
    ) -> None:
        column = self._columns[index]
        session = self.session
        backend = contender.backend
        mode = session.next_send_mode(history)
        if mode != SendMode.NEW:
            if backend.stateless:
                mode = SendMode.LOCAL
            elif mode == SendMode.LOCAL:  # the conversation's backend is the stateless one
                mode = SendMode.REPLAY
        closed = ColumnClosed(index)
        try:
            if index:
                await self._columns[index - 1].placed.wait()
            if isinstance(backend, Preparable):
                column.placed.set()  # starting may take seconds: the others go first
                try:
                    await backend.prepare(
                        lambda text: queue.put_nowait(ColumnEvent(index, Preparing(text)))
                    )
                except BackendError as error:
                    await self._failed_to_start(index, contender, user, mode, error, queue)
                    return
            column.started_at = time.monotonic()
            turn = session._stream_turn(user, history, mode, contender.settings, backend=backend)
            loop = asyncio.get_running_loop()
            ran_since = loop.time()
            async with aclosing(turn):
                async for event in turn:
                    self._observe(column, event)
                    queue.put_nowait(ColumnEvent(index, event))
                    # A fast stream is read in large chunks, a long run of deltas with no
                    # wait between them: the other columns and the keys go in between.
                    if loop.time() - ran_since > RUN_SECONDS:
                        await asyncio.sleep(0)
                        ran_since = loop.time()
        except asyncio.CancelledError:
            closed = ColumnClosed(index, stopped=await self._as_saved(column))
            raise
        except StorageError as error:
            closed = ColumnClosed(index, stopped=column.reply, problem=str(error))
        except Exception as error:
            closed = ColumnClosed(
                index, stopped=column.reply, problem=report_bug(error, "a compare column")
            )
        finally:
            column.ended = True
            column.placed.set()
            queue.put_nowait(closed)

    def _observe(self, column: _Column, event: TurnEvent) -> None:
        if isinstance(event, ReplyDelta | ThinkingDelta):
            if column.first_at is None:
                column.first_at = time.monotonic()
            column.characters += len(event.text)
        elif isinstance(event, TurnStarted):
            column.reply = event.reply
            column.placed.set()
        elif isinstance(event, TurnEnded):
            column.reply = event.reply
            column.error = event.error
            column.ended = True

    async def _as_saved(self, column: _Column) -> Message | None:
        """A cancelled column's reply as its stream saved it."""
        if column.reply is None:
            return None
        try:
            saved = await asyncio.to_thread(self.session.store.get_message, column.reply.id)
        except (StorageError, asyncio.CancelledError):
            saved = None
        column.reply = saved or replace(column.reply, status=MessageStatus.CANCELLED)
        return column.reply

    async def _failed_to_start(
        self,
        index: int,
        contender: Contender,
        user: Message,
        mode: SendMode,
        error: BackendError,
        queue: asyncio.Queue[CompareEvent],
    ) -> None:
        """A backend that could not start (the local model missing): its reply is saved
        as failed with the reason, as any failed reply."""
        store = self.session.store

        def save() -> Message:
            saved = store.add_message(
                conversation_id=self.session.conversation.id,
                role=MessageRole.ASSISTANT,
                text="",
                status=MessageStatus.FAILED,
                model=contender.settings.model,
                parent_id=user.id,
            )
            store.update_message(saved.id, error=error.user_message)
            return replace(saved, error=error.user_message)

        reply = await asyncio.to_thread(save)
        for event in (
            TurnStarted(user=user, reply=reply, mode=mode),
            TurnEnded(reply=reply, error=error, conversation_usage=await self.session.usage()),
        ):
            self._observe(self._columns[index], event)
            queue.put_nowait(ColumnEvent(index, event))

    # -- after -----------------------------------------------------------------------

    async def choose(self, index: int) -> Chosen:
        """Continues the conversation with column ``index``'s reply: it becomes the head,
        and (for a deployment) its model becomes the conversation's. The other replies
        stay, siblings of it. LookupError when that column has no answer to continue."""
        reply = self._columns[index].reply
        contender = self.contenders[index]
        if reply is None or reply.status not in _ANSWERED:
            raise LookupError(f"{contender.label} has no answer to continue with.")
        session = self.session
        await self._move_head(reply)
        others = "The other replies stay as branches of this turn."
        if contender.local:
            notice = (
                f"Continuing with the local model's reply. The conversation keeps its model "
                f"({session.conversation.settings.model}): the local model answered this "
                f"turn only. {others}"
            )
        else:
            model = contender.settings.model
            await session.update_settings(replace(session.conversation.settings, model=model))
            notice = f"Continuing with {model}, now the conversation's model. {others}"
        return Chosen(reply, notice, session.conversation.settings)

    async def settle_unchosen(self) -> Message | None:
        """Closed without a choice: the first column's reply with an answer (else the
        first column's reply) becomes the head; every reply stays as a sibling."""
        replies = [column.reply for column in self._columns if column.reply is not None]
        if not replies:
            return None
        answered = [reply for reply in replies if reply.status in _ANSWERED and reply.text]
        head = (answered or replies)[0]
        await self._move_head(head)
        return head

    async def _move_head(self, reply: Message) -> None:
        session = self.session
        await asyncio.to_thread(session.store.set_head, session.conversation.id, reply.id)
        session.conversation = replace(session.conversation, head_message_id=reply.id)


class LocalModel:
    """The bundled local model as a Compare column of a cloud profile: looked for when
    Compare opens (``find``, in a thread: the model's name, or None when it is not
    installed or cannot run here), started on its first comparison (``make``) and kept for
    the next, until `aclose` (the app's end)."""

    def __init__(
        self,
        find: Callable[[], str | None],
        make: Callable[[], ResponsesBackend],
        model: str,
    ) -> None:
        self._find = find
        self._make = make
        self.model = model
        self._backend: ResponsesBackend | None = None

    async def label(self) -> str | None:
        return await asyncio.to_thread(self._find)

    def contender(self, label: str, conversation: GenerationSettings) -> Contender:
        if self._backend is None:
            self._backend = self._make()
        return Contender(
            f"local model ({label})",
            local_settings(conversation, self.model),
            self._backend,
            local=True,
        )

    async def aclose(self) -> None:
        backend, self._backend = self._backend, None
        close = getattr(backend, "aclose", None)
        if close is not None:
            await close()
