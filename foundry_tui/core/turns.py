"""The turn policy: what a turn sends, what it leaves behind, and what the user may do next.

One `Turns` drives the turns of one `ChatSession`, for the chat screen and for a subcommand
alike; neither decides anything about a turn itself::

    turns = Turns(session, await session.transcript())
    async for event in turns.send("Why is the sky blue?", settings):
        ...  # TurnStarted, ReplyDelta..., TurnEnded: the dataclasses of core.session
    turns.last_reply.status  # completed, incomplete, failed or cancelled, as saved
    turns.remedy  # None, or what to offer: Remedy.RETRY, RESEND_WITHOUT, CONTINUE, LARGER_BUDGET
    turns.next_mode  # how the next send reaches the server (SendMode), for a status line
    await turns.next_request("Why?")  # what that send would hand the backend (View code)

The API:

* ``Turns(session, transcript=())``: ``transcript`` is the conversation so far, oldest
  first (what the user sees); ``add_older(messages)`` puts earlier messages before it.
* ``send(prompt, settings=None, attachments=())``, ``retry(settings=None)``,
  ``regenerate(reply=None, settings=None)``, ``edit(prompt, text, settings=None,
  attachments=())`` and ``continue_reply(settings=None)`` return async generators of
  ``TurnEvent``; a regenerated reply or an edited prompt is a new branch beside the old
  one, which stays. ``switch_to(message_id)`` shows another branch, ``siblings()`` says
  where the path shown has alternatives. Given
  ``settings`` are saved with the conversation before the request leaves; None sends with
  the conversation's own. ``retry`` resends the prompt of the last reply (``can_retry``:
  failed, cancelled, cut off or interrupted); after a deployment refused a parameter the
  user set (``Remedy.RESEND_WITHOUT``: ``refused`` names it, with temperature and top_p
  together) it resends without it and yields ``SettingsChanged`` first.
  ``continue_reply`` asks the model to go on after a reply cut off (``can_continue``) with
  ``CONTINUE_PROMPT``. ``retry_with_budget`` resends a reply that spent its output budget
  reasoning (``Remedy.LARGER_BUDGET``) with ``larger_budget`` max output tokens, after a
  ``SettingsChanged``. They raise LookupError at once when there is nothing to resend.
* A parameter a deployment refused is remembered for it (core.session); every send to it
  leaves the parameter out, and one the settings would send is cleared from them first,
  with a ``SettingsChanged`` saying so.
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
    Siblings,
)
from foundry_tui.core.parameters import SETTING_FIELDS, family, named, set_in, without
from foundry_tui.core.session import (
    CUT_OFF_AT_MAX_TOKENS,
    ChatSession,
    NextRequest,
    ReplyDelta,
    SendMode,
    SettingsChanged,
    TurnEnded,
    TurnEvent,
    TurnStarted,
)

__all__ = [
    "CONTINUE_PROMPT",
    "RETRYABLE",
    "SAMPLING_DROPPED",
    "Remedy",
    "Turns",
    "budget_note",
    "spent_on_reasoning",
]

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
# A reply cut off at max_output_tokens with fewer words than this spent its budget on
# reasoning (or nearly): a larger budget is what helps, more than going on.
FEW_WORDS = 20
# The budget offered when none was set and the server did not say how much was used.
UNSET_BUDGET_FALLBACK = 16_384


class Remedy(StrEnum):
    """What the user can do about the last reply; the face words it and binds the keys."""

    RETRY = "retry"  # send its prompt again
    RESEND_WITHOUT = "resend_without"  # the deployment refused a parameter: see Turns.refused
    RESEND_WITHOUT_SAMPLING = "resend_without"  # its name when only temperature/top_p were
    CONTINUE = "continue"  # cut off: ask the model to go on (retrying works too)
    LARGER_BUDGET = "larger_budget"  # the output budget went on reasoning: resend with more


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
        if self.refused:
            return Remedy.RESEND_WITHOUT
        if reply.status == MessageStatus.INCOMPLETE:
            return Remedy.LARGER_BUDGET if spent_on_reasoning(reply) else Remedy.CONTINUE
        return Remedy.RETRY

    @property
    def refused(self) -> tuple[str, ...]:
        """The parameters (API names) a resend leaves out: what the last turn's deployment
        refused (temperature and top_p go together; so they do when the server named
        none), or () when it refused none of the app's."""
        error = self._last_error
        if error is None or error.kind != ErrorKind.UNSUPPORTED_PARAMETER:
            return ()
        if error.param is None:
            return family("temperature")
        return family(error.param) if error.param in SETTING_FIELDS else ()

    def larger_budget(self, settings: GenerationSettings | None = None) -> int:
        """The max output tokens a resend with a larger budget asks for: twice the budget
        set (in ``settings``, else the conversation's), or, with none set, four times the
        output the reply used (UNSET_BUDGET_FALLBACK when the server did not say)."""
        base = settings or self.session.conversation.settings
        if base.max_output_tokens is not None:
            return base.max_output_tokens * 2
        used = self._last_reply.usage.output_tokens if self._last_reply is not None else None
        return used * 4 if used else UNSET_BUDGET_FALLBACK

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

    async def next_request(
        self, prompt: str, settings: GenerationSettings | None = None
    ) -> NextRequest:
        """What ``send(prompt, settings)`` would hand the backend now; sends nothing."""
        return await self.session.next_request(self._path, prompt, settings)

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
        if remedy == Remedy.RESEND_WITHOUT:
            base = settings or self.session.conversation.settings
            dropped = set_in(base, self.refused)
            if dropped:
                settings = without(base, dropped)
                changed = SettingsChanged(settings, f"Resending without {named(dropped)}.")
        return self._play(settings, lambda: self.session.retry(reply), first=changed)

    def retry_with_budget(
        self, settings: GenerationSettings | None = None
    ) -> AsyncGenerator[TurnEvent, None]:
        """Resends the prompt of a reply that spent its output budget reasoning, with
        ``larger_budget`` max output tokens."""
        reply = self._last_reply
        if reply is None or self.remedy != Remedy.LARGER_BUDGET:
            raise LookupError("The last reply did not run out of its output budget reasoning.")
        base = settings or self.session.conversation.settings
        budget = self.larger_budget(base)
        was = (
            f"twice {base.max_output_tokens:,}"
            if base.max_output_tokens is not None
            else "four times the output it used; none was set"
            if reply.usage.output_tokens
            else "none was set"
        )
        changed = SettingsChanged(
            replace(base, max_output_tokens=budget),
            f"Resending with max output tokens {budget:,} ({was}).",
        )
        return self._play(changed.settings, lambda: self.session.retry(reply), first=changed)

    def regenerate(
        self, reply: Message | None = None, settings: GenerationSettings | None = None
    ) -> AsyncGenerator[TurnEvent, None]:
        """A new reply to ``reply``'s prompt (the last reply when None), beside it: the
        old one stays as a sibling branch."""
        reply = reply or self._last_reply
        if reply is None or reply.role != MessageRole.ASSISTANT:
            raise LookupError("There is no reply to regenerate.")
        return self._play(settings, lambda: self.session.retry(reply))

    def edit(
        self,
        prompt: Message,
        text: str,
        settings: GenerationSettings | None = None,
        attachments: Sequence[FileToAttach] = (),
    ) -> AsyncGenerator[TurnEvent, None]:
        """Sends ``text`` in place of the earlier ``prompt``: a new branch beside it."""
        return self._play(settings, lambda: self.session.edit(prompt, text, attachments))

    async def switch_to(self, message_id: str) -> list[Message]:
        """Shows the branch through ``message_id`` (see ChatSession.switch_to)."""
        self._path = await self.session.switch_to(message_id, self._path)
        self._last_reply = _newest_reply(self._path)
        self._last_error = None
        return list(self._path)

    async def switch_to_match(self, search: str) -> list[Message] | None:
        """Shows the branch with the newest message ``search`` finds, if not shown."""
        path = await self.session.switch_to_match(search)
        if path is not None:
            self._path = path
            self._last_reply = _newest_reply(path)
            self._last_error = None
        return path

    async def siblings(self) -> dict[str, Siblings]:
        """The alternatives of each message on the path shown, by its id."""
        return await self.session.siblings(self._path)

    @property
    def path(self) -> list[Message]:
        """The messages shown, oldest first."""
        return list(self._path)

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
        base = settings or self.session.conversation.settings
        refused = set_in(base, await self.session.refused_parameters(base.model))
        if refused:
            settings = without(base, refused)
            yield SettingsChanged(
                settings,
                f"{base.model} refused {named(refused)} before: sent without "
                f"{'them' if len(refused) > 1 else 'it'}.",
            )
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
        gives_way = event.replaces.id if event.replaces is not None else event.user.id
        if gives_way in ids:  # a new branch: what it takes the place of goes
            del self._path[ids.index(gives_way) :]
        if not self._path or self._path[-1].id != event.user.id:
            self._path.append(event.user)
        self._path.append(event.reply)
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


def spent_on_reasoning(reply: Message) -> bool:
    """A reply cut off at its max output tokens with no answer, or with a few words after
    reasoning (``usage.reasoning_tokens``): the budget went on reasoning. A few words
    without reasoning are the start of an answer, better continued."""
    if reply.status != MessageStatus.INCOMPLETE:
        return False
    if not (reply.error or "").startswith(CUT_OFF_AT_MAX_TOKENS):
        return False
    words = len(reply.text.split())
    return words == 0 or (words < FEW_WORDS and bool(reply.usage.reasoning_tokens))


def budget_note(reply: Message, settings: GenerationSettings) -> str:
    """What happened to a reply that spent its budget reasoning, in one plain sentence."""
    budget = settings.max_output_tokens or reply.usage.output_tokens
    whole = f"its whole budget of {budget:,} output tokens" if budget else "its whole budget"
    reasoning = reply.usage.reasoning_tokens
    spent = f" ({reasoning:,} reasoning tokens)" if reasoning else ""
    wrote = "wrote no answer" if not reply.text.strip() else "wrote only a few words"
    return f"The model used {whole} reasoning{spent} and {wrote}."


def _newest_reply(messages: list[Message]) -> Message | None:
    return next((m for m in reversed(messages) if m.role == MessageRole.ASSISTANT), None)
