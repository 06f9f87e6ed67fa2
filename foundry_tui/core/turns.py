"""The turn policy: what a turn sends, what it leaves behind, and what the user may do next.

One `Turns` drives the turns of one `ChatSession`, for the chat screen and for a subcommand
alike; neither decides anything about a turn itself::

    turns = Turns(session, await session.transcript())
    async for event in turns.send("Why is the sky blue?", settings):
        ...  # TurnStarted, ReplyDelta..., TurnEnded: the dataclasses of core.session
    turns.last_reply.status  # completed, incomplete, failed or cancelled, as saved
    turns.remedy  # None, or what to offer: Remedy.RETRY, RESEND_WITHOUT_SAMPLING, CONTINUE
    turns.next_mode  # how the next send reaches the server (SendMode), for a status line

The API:

* ``Turns(session, transcript=())``: ``transcript`` is the conversation so far, oldest
  first (what the user sees); ``add_older(messages)`` puts earlier messages before it.
* ``send(prompt, settings=None, attachments=())``, ``retry(settings=None)`` and
  ``continue_reply(settings=None)`` return async generators of ``TurnEvent``. Given
  ``settings`` are saved with the conversation before the request leaves; None sends with
  the conversation's own. ``retry`` resends the prompt of the last reply (``can_retry``:
  failed, cancelled, cut off or interrupted); after a model refused temperature or top_p
  (``Remedy.RESEND_WITHOUT_SAMPLING``) it resends without them and yields
  ``SettingsChanged`` first. ``continue_reply`` asks the model to go on after a reply cut
  off (``can_continue``) with ``CONTINUE_PROMPT``. Both raise LookupError at once when
  there is nothing to retry or continue.
* Cancelling the task that iterates a turn, or closing its generator (``aclose``) before
  its end, saves the reply so far as CANCELLED, and ``last_reply`` is that reply. A turn
  that stops on any other exception (the disk is full) leaves ``last_reply`` FAILED.
* ``last_reply``, ``last_error`` (the BackendError of the last turn, if it failed),
  ``remedy``, ``can_retry``, ``can_continue``, ``next_mode``: always about the newest turn,
  updated before each event is yielded.
* ``await check_server()`` asks the server whether it still holds the chain (saving the
  answer) and returns ``next_mode``; BackendError when the server cannot be asked.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import replace
from enum import StrEnum

from foundry_tui.core.attachments import FileToAttach
from foundry_tui.core.models import (
    BackendError,
    ErrorKind,
    GenerationSettings,
    Message,
    MessageRole,
    MessageStatus,
)
from foundry_tui.core.session import (
    ChatSession,
    ReplyDelta,
    SendMode,
    SettingsChanged,
    TurnEnded,
    TurnEvent,
    TurnStarted,
)

__all__ = ["CONTINUE_PROMPT", "RETRYABLE", "SAMPLING_DROPPED", "Remedy", "Turns"]

# Sent as the user's prompt to have a cut-off reply go on.
CONTINUE_PROMPT = "Continue exactly where you stopped."
# Replies whose prompt can be sent again.
RETRYABLE = frozenset(
    {
        MessageStatus.FAILED,
        MessageStatus.CANCELLED,
        MessageStatus.INCOMPLETE,
        MessageStatus.INTERRUPTED,
    }
)
SAMPLING_DROPPED = "Resending without temperature and top_p."


class Remedy(StrEnum):
    """What the user can do about the last reply; the face words it and binds the keys."""

    RETRY = "retry"  # send its prompt again
    RESEND_WITHOUT_SAMPLING = "resend_without_sampling"  # the model refused temperature/top_p
    CONTINUE = "continue"  # cut off: ask the model to go on (retrying works too)


class Turns:
    """Sends the turns of one conversation and keeps what the user can do after each."""

    def __init__(self, session: ChatSession, transcript: Iterable[Message] = ()) -> None:
        self.session = session
        self._path = list(transcript)
        self._last_reply = _newest_reply(self._path)
        self._last_error: BackendError | None = None

    def add_older(self, messages: Iterable[Message]) -> None:
        """Messages that come before the transcript given so far (a long one read in two)."""
        self._path[:0] = messages
        if self._last_reply is None:
            self._last_reply = _newest_reply(self._path)

    # -- what the last turn left -----------------------------------------------------

    @property
    def last_reply(self) -> Message | None:
        return self._last_reply

    @property
    def last_error(self) -> BackendError | None:
        return self._last_error

    @property
    def remedy(self) -> Remedy | None:
        reply = self._last_reply
        if reply is None or reply.status not in RETRYABLE:
            return None
        error = self._last_error
        if error is not None and error.kind == ErrorKind.UNSUPPORTED_PARAMETER:
            return Remedy.RESEND_WITHOUT_SAMPLING
        if reply.status == MessageStatus.INCOMPLETE:
            return Remedy.CONTINUE
        return Remedy.RETRY

    @property
    def can_retry(self) -> bool:
        return self.remedy is not None

    @property
    def can_continue(self) -> bool:
        return self._last_reply is not None and self._last_reply.status == MessageStatus.INCOMPLETE

    @property
    def next_mode(self) -> SendMode:
        # From the whole transcript: after a failed turn the next send still chains from
        # the last reply the server kept.
        return self.session.next_send_mode(self._path)

    async def check_server(self) -> SendMode:
        await self.session.check_server_state()
        return self.next_mode

    # -- sending -----------------------------------------------------------------------

    def send(
        self,
        prompt: str,
        settings: GenerationSettings | None = None,
        attachments: Sequence[FileToAttach] = (),
    ) -> AsyncGenerator[TurnEvent, None]:
        """``attachments``: files ``check_file`` accepted, sent with the prompt (and again
        by a retry); AttachmentRejected from the first step when they cannot go."""
        return self._play(settings, lambda: self.session.send(prompt, attachments))

    def retry(self, settings: GenerationSettings | None = None) -> AsyncGenerator[TurnEvent, None]:
        reply = self._last_reply
        remedy = self.remedy
        if reply is None or remedy is None:
            raise LookupError("There is no failed, cancelled or cut-off reply to resend.")
        changed = None
        if remedy == Remedy.RESEND_WITHOUT_SAMPLING:
            base = settings or self.session.conversation.settings
            if base.temperature is not None or base.top_p is not None:
                settings = replace(base, temperature=None, top_p=None)
                changed = SettingsChanged(settings, SAMPLING_DROPPED)
        return self._play(settings, lambda: self.session.retry(reply), first=changed)

    def continue_reply(
        self, settings: GenerationSettings | None = None
    ) -> AsyncGenerator[TurnEvent, None]:
        if not self.can_continue:
            raise LookupError("The last reply was not cut off.")
        return self.send(CONTINUE_PROMPT, settings)

    async def _play(
        self,
        settings: GenerationSettings | None,
        start: Callable[[], AsyncGenerator[TurnEvent, None]],
        *,
        first: SettingsChanged | None = None,
    ) -> AsyncGenerator[TurnEvent, None]:
        if first is not None:
            yield first
        if settings is not None:
            await self.session.update_settings(settings)
        events = start()
        started: Message | None = None
        ended = False
        stopped: BaseException | None = None
        try:
            async for event in events:
                if not isinstance(event, ReplyDelta):  # the hot path passes straight on
                    if isinstance(event, TurnStarted):
                        started = event.reply
                        self._began(event)
                    elif isinstance(event, TurnEnded):
                        ended = True
                        self._settle(event.reply)
                        self._last_error = event.error
                yield event
        except BaseException as error:  # cancelled, closed (GeneratorExit), or a failure
            stopped = error
            raise
        finally:
            # Closing the session's turn is what saves a cancelled reply.
            await events.aclose()
            if stopped is not None and started is not None and not ended:
                self._settle(self._left_by(started, stopped))

    def _began(self, event: TurnStarted) -> None:
        ids = [message.id for message in self._path]
        if event.user.id in ids:  # a retry: a new reply under the same prompt
            del self._path[ids.index(event.user.id) :]
        self._path += [event.user, event.reply]
        self._last_reply = event.reply
        self._last_error = None

    def _settle(self, reply: Message) -> None:
        for index in range(len(self._path) - 1, -1, -1):
            if self._path[index].id == reply.id:
                self._path[index] = reply
                break
        self._last_reply = reply

    def _left_by(self, reply: Message, stopped: BaseException) -> Message:
        """The reply a turn stopped before its end leaves behind."""
        if isinstance(stopped, Exception):  # not a cancel: the session saved it failed
            return replace(reply, status=MessageStatus.FAILED, error=str(stopped) or None)
        saved = self.session.cancelled_reply
        if saved is not None and saved.id == reply.id:
            return saved
        return replace(reply, status=MessageStatus.CANCELLED)


def _newest_reply(messages: list[Message]) -> Message | None:
    return next((m for m in reversed(messages) if m.role == MessageRole.ASSISTANT), None)
