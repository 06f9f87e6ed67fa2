"""Draws a turn on the chat screen: applies its messages (turn_flow) to the transcript,
the status line and the prompt, and words what the turn policy decided."""

from __future__ import annotations

from typing import TYPE_CHECKING

from foundry_tui.core.logs import report_bug
from foundry_tui.core.models import (
    Answered,
    BackendError,
    ContextTrimmed,
    MessageStatus,
    Retrying,
    StorageError,
    Waiting,
)
from foundry_tui.core.parameters import named
from foundry_tui.core.session import (
    ModeChanged,
    ParameterDropped,
    SendMode,
    SettingsChanged,
    ThinkingStarted,
    TurnStarted,
)
from foundry_tui.core.text import sanitize
from foundry_tui.core.turns import Remedy, budget_note
from foundry_tui.ui.screens.turn_flow import (
    ReplyText,
    ThinkingText,
    TurnClosed,
    TurnMessage,
    TurnSettled,
    TurnUpdate,
)
from foundry_tui.ui.widgets.message_block import MessageBlock
from foundry_tui.ui.widgets.prompt import PromptInput
from foundry_tui.ui.widgets.status import StatusLine
from foundry_tui.ui.widgets.transcript import Transcript

if TYPE_CHECKING:
    from foundry_tui.ui.screens.chat import ChatScreen

_MODE_TEXT = {
    SendMode.NEW: "new conversation",
    SendMode.CHAIN: "chained on the server",
    SendMode.REPLAY: "not on the server: resends the transcript",
    SendMode.LOCAL: "local model: sends the transcript each turn",
}
# What the status line says when it is too narrow for the above.
_MODE_SHORT = {
    SendMode.NEW: "new",
    SendMode.CHAIN: "chained",
    SendMode.REPLAY: "resends",
    SendMode.LOCAL: "local",
}
REMEDY_HINT = {
    Remedy.RETRY: "Press Ctrl+R to retry.",
    Remedy.RESEND_WITHOUT: "Press Ctrl+R to resend without {refused}.",
    Remedy.CONTINUE: "Press Ctrl+G to ask the model to go on, or Ctrl+R to try again.",
    Remedy.LARGER_BUDGET: "Press F4 to resend with a larger budget ({budget:,} tokens), "
    "or Ctrl+G to ask it to go on.",
}
CHAIN_LOST_NOTICE = "the server had lost the chain: the transcript was resent"


def show_mode(status: StatusLine, mode: SendMode) -> None:
    status.mode = _MODE_TEXT[mode]
    status.mode_short = _MODE_SHORT[mode]


def failure_text(error: BaseException, where: str) -> str:
    """What a failed worker's notification says: the server's or the disk's words, or, for
    a bug, one line naming the log that holds its traceback."""
    if isinstance(error, BackendError):
        return error.user_message
    if isinstance(error, StorageError):
        return str(error)
    return report_bug(error, where)


class TurnView:
    """The streaming reply's block and what the screen shows while a turn runs."""

    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self.transcript = screen.query_one(Transcript)
        self.status = screen.query_one(StatusLine)
        self.prompt = screen.query_one(PromptInput)
        self.block: MessageBlock | None = None
        self._blinks: bool | None = None
        self._thinking = False  # the model reasons and its answer has not begun

    async def apply(self, message: TurnMessage) -> None:
        if isinstance(message, ReplyText):
            text = message.take()
            if self.block is not None:
                if self._thinking and text:
                    self._end_thinking(fold=True)
                self.transcript.write(self.block, text)
        elif isinstance(message, ThinkingText):
            text = message.take()
            if self.block is not None and text:
                if not self._thinking:
                    self._start_thinking()
                self.status.clear_wait()  # its text shows: no need to count
                self.transcript.write_thinking(self.block, text)
        elif isinstance(message, TurnUpdate):
            event = message.event
            if isinstance(event, TurnStarted):
                await self._started(event)
            else:
                self._progress(event)
        elif isinstance(message, TurnSettled):
            await self._settled(message)
        elif isinstance(message, TurnClosed):
            self._closed(message)

    async def _started(self, event: TurnStarted) -> None:
        transcript, status = self.transcript, self.status
        status.notice = ""
        if event.replaces is not None and (old := transcript.view_for(event.replaces.id)):
            await transcript.remove_from(old)  # a new branch: what followed goes too
        if transcript.view_for(event.user.id) is None:
            await transcript.add(event.user)
        self.block = await transcript.add(event.reply)
        transcript.jump_to_end()
        show_mode(status, event.mode)
        status.last_status = MessageStatus.PENDING
        status.last_usage = None  # the last turn's figures are not this turn's
        status.show_timing(None)
        # A blinking cursor repaints twice a second: not while a reply streams.
        self._blinks = self.prompt.cursor_blink
        self.prompt.cursor_blink = False
        self.screen.conversations.show_title()

    def _start_thinking(self) -> None:
        self._thinking = True
        if self.block is not None:
            self.transcript.start_thinking(self.block)
        self.screen.refresh_bindings()

    def _end_thinking(self, *, fold: bool) -> None:
        self._thinking = False
        self.status.clear_wait()
        if self.block is not None:
            self.transcript.end_thinking(self.block, fold=fold)

    def _progress(self, event: object) -> None:
        status = self.status
        if isinstance(event, ThinkingStarted):
            if not self._thinking:
                self._start_thinking()
                status.show_thinking()
        elif isinstance(event, SettingsChanged):
            self.screen.show_settings(event.settings)
            self.screen.notify(event.reason)
        elif isinstance(event, ParameterDropped | ContextTrimmed):
            status.notice = event.reason
            self.screen.notify(event.reason)
        elif isinstance(event, ModeChanged):
            show_mode(status, event.mode)
            status.notice = CHAIN_LOST_NOTICE
            self.screen.notify(event.reason)
        elif isinstance(event, Retrying):
            status.show_retry(event.reason, event.wait_seconds, event.attempt, event.attempts)
        elif isinstance(event, Waiting):
            status.show_waiting(event.seconds)
        elif isinstance(event, Answered):
            status.clear_wait()

    async def _settled(self, message: TurnSettled) -> None:
        end, status = message.end, self.status
        reply = end.reply
        if self._thinking:
            self._end_thinking(fold=bool(reply.text.strip()))
        if self.block is not None:
            await self.transcript.finish(self.block)
            self.transcript.update(self.block, reply)
        status.last_status = reply.status
        status.last_usage = reply.usage
        status.show_timing(reply)
        status.conversation_usage = end.conversation_usage
        show_mode(status, message.next_mode)
        self.screen.conversations.show_title()
        hint = self._hint(message.remedy)
        if message.remedy == Remedy.LARGER_BUDGET:
            self.screen.notify(
                f"{budget_note(reply, self.screen.pending_settings)} {hint}",
                title="No answer within the budget",
                severity="warning",
                timeout=15,
            )
        elif end.error is not None:
            # The prompt stays in the transcript, with its failed reply, for Ctrl+R to
            # resend; it is not also put back in the box, where Enter would send it again.
            self.screen.notify(
                f"{sanitize(end.error.detail)}\n{hint}".strip(),
                title=sanitize(end.error.title),
                severity="error",
                timeout=15,
            )
        elif reply.status == MessageStatus.INCOMPLETE:
            self.screen.notify(
                f"{reply.error or 'The reply stopped early.'} {hint}",
                title="Reply cut off",
                severity="warning",
                timeout=12,
            )

    def _hint(self, remedy: Remedy | None) -> str:
        turns = self.screen.turns
        if remedy is None or turns is None:
            return ""
        return REMEDY_HINT[remedy].format(
            refused=named(turns.refused) or "it",
            budget=turns.larger_budget(self.screen.pending_settings),
        )

    def _closed(self, message: TurnClosed) -> None:
        if self._thinking:
            self._end_thinking(fold=False)
        block, self.block = self.block, None
        if message.stopped is not None and block is not None:
            self.transcript.stop(block)
            self.transcript.update(block, message.stopped)
            self.status.last_status = message.stopped.status
            self.status.show_timing(message.stopped)
        if message.problem is not None:
            self.screen.notify(
                message.problem, title="Could not save", severity="error", timeout=15
            )
        if message.unsent is not None:
            self.restore_prompt(message.unsent)
        self.status.clear_wait()
        if self._blinks is not None:
            self.prompt.cursor_blink, self._blinks = self._blinks, None
        self.screen.refresh_bindings()
        self.screen.refresh_history()

    def restore_prompt(self, text: str) -> None:
        """A prompt that never got into the conversation, back in an empty box."""
        if not self.prompt.text.strip():
            self.prompt.text = text
            self.prompt.move_cursor(self.prompt.document.end)
