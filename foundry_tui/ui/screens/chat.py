"""The chat screen: history on the left, transcript and prompt in the middle, settings right.

Threading rule: the reply streams in an async worker (exclusive, group "turn") on the UI
loop, so it may update widgets directly; the session does its SQLite work in threads.
Everything else that waits (history, opening, server checks) runs in async workers too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message as TextualMessage
from textual.screen import Screen
from textual.widgets import Input, OptionList, Static
from textual.worker import Worker, WorkerState

from foundry_tui.core.logs import report_bug
from foundry_tui.core.models import (
    Answered,
    BackendError,
    ContextTrimmed,
    ErrorKind,
    GenerationSettings,
    Message,
    MessageRole,
    MessageStatus,
    Retrying,
    ServerState,
    StorageError,
    Waiting,
)
from foundry_tui.core.session import (
    ChatSession,
    ModeChanged,
    ReplyDelta,
    SendMode,
    TurnEnded,
    TurnEvent,
    TurnStarted,
)
from foundry_tui.core.text import one_line, sanitize
from foundry_tui.ui.screens.dialogs import ConfirmScreen, RenameScreen
from foundry_tui.ui.screens.recall import PromptRecall
from foundry_tui.ui.widgets.footer import KeyFooter
from foundry_tui.ui.widgets.history import ConversationList, HistoryPanel
from foundry_tui.ui.widgets.message_block import MessageBlock
from foundry_tui.ui.widgets.plain import plain_line
from foundry_tui.ui.widgets.prompt import PromptInput
from foundry_tui.ui.widgets.sidebar import SettingsSidebar
from foundry_tui.ui.widgets.status import StatusLine
from foundry_tui.ui.widgets.transcript import Transcript

if TYPE_CHECKING:
    from foundry_tui.core.workspace import Workspace

# Wide terminals show both panels from the start; narrow ones keep the transcript roomy.
SIDEBAR_MIN_WIDTH = 120
HISTORY_MIN_WIDTH = 150

# Replies that Ctrl+R can send again.
_RETRYABLE = frozenset(
    {
        MessageStatus.FAILED,
        MessageStatus.CANCELLED,
        MessageStatus.INCOMPLETE,
        MessageStatus.INTERRUPTED,
    }
)
CONTINUE_PROMPT = "Continue exactly where you stopped."
# How many of its newest messages a conversation opens with; the rest follow at once.
OPENING_MESSAGES = 40
# The longest the UI loop handles deltas without letting other work (keys) run.
DELTA_RUN_SECONDS = 0.005
# How many prompts of other conversations Up on an empty prompt can go back through.
RECALL_ROWS = 200
NO_MODEL_HINT = (
    "This endpoint has no model (deployment) set. Pick one in the list with the arrow keys "
    "and Enter, or type its name; then Ctrl+L goes back to the prompt."
)

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


class ChatScreen(Screen[None]):
    CSS_PATH = "chat.tcss"
    # Focused as the screen is composed, so the first frame already shows the prompt
    # focused (rather than the first focusable widget, then the prompt a frame later).
    AUTO_FOCUS = "#prompt"

    BINDINGS = [
        Binding(
            "escape",
            "cancel_reply",
            "Cancel reply",
            id="chat.cancel",
            tooltip="Stop the streaming reply; its text so far is kept",
        ),
        Binding(
            "ctrl+n", "new_conversation", "New", id="chat.new", tooltip="Start a new conversation"
        ),
        Binding(
            "ctrl+b",
            "toggle_sidebar",
            "Settings",
            id="chat.toggle_sidebar",
            tooltip="Go to the settings sidebar (from there: hide it)",
        ),
        Binding(
            "ctrl+o",
            "toggle_history",
            "History",
            id="chat.toggle_history",
            tooltip="Go to the conversation history (from there: hide it)",
        ),
        Binding(
            "ctrl+l",
            "focus_prompt",
            "Prompt",
            id="chat.focus_prompt",
            tooltip="Move the cursor to the prompt",
        ),
        Binding(
            "ctrl+r",
            "retry",
            "Retry",
            id="chat.retry",
            tooltip="Resend the last failed, cancelled or cut-off turn without retyping it",
        ),
        Binding(
            "ctrl+g",
            "continue_reply",
            "Continue",
            id="chat.continue",
            tooltip="Ask the model to go on after a reply cut off at the token limit",
        ),
        Binding(
            "f2",
            "rename",
            "Rename",
            id="chat.rename",
            show=False,
            tooltip="Rename this conversation",
        ),
    ]

    class Ready(TextualMessage):
        """The screen is composed and mounted (sent to the app, which starts its warm-up)."""

        def __init__(self, chat: ChatScreen) -> None:
            super().__init__()
            self.chat = chat

    def __init__(self, workspace: Workspace, *, resume: str | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        self.session: ChatSession | None = None
        self.resume_target = resume
        self._pending_settings = workspace.default_settings()
        self._history_search = ""
        self._last_reply: Message | None = None
        self._last_error: BackendError | None = None
        self._recall: PromptRecall | None = None

    # -- layout ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-body"):
            yield HistoryPanel(id="history")
            with Vertical(id="chat-main"):
                yield Static("", id="conversation-title")
                yield Transcript(id="transcript")
                yield StatusLine(id="status")
                yield PromptInput(id="prompt")
            yield SettingsSidebar(id="sidebar")
        # On a narrow terminal these go first (Quit and the palette key always stay).
        yield KeyFooter(
            drop_first=(
                "chat.focus_prompt",
                "chat.toggle_history",
                "chat.new",
                "chat.toggle_sidebar",
            )
        )

    async def on_mount(self) -> None:
        width = self.app.size.width
        sidebar_pref = getattr(self.app, "sidebar_preference", None)
        self.query_one("#sidebar").display = (
            sidebar_pref if sidebar_pref is not None else width >= SIDEBAR_MIN_WIDTH
        )
        history_shown = width >= HISTORY_MIN_WIDTH
        self.query_one("#history").display = history_shown
        if history_shown or self.resume_target is not None:
            self.workspace.open_history()
        sidebar = self.query_one(SettingsSidebar)
        sidebar.show_settings(self._pending_settings)
        sidebar.show_models(self.workspace.profile.deployments, ())
        self._show_title()
        self.query_one(PromptInput).focus()
        if self.resume_target is not None:
            self.resume_conversation(self.resume_target)
        else:
            await self.query_one(Transcript).show([])
            if not self._pending_settings.model:
                self._ask_for_model()
        self.refresh_history()
        self.post_message(self.Ready(self))

    # -- sending -----------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        return any(
            worker.group == "turn" and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)
            for worker in self.workers
        )

    @on(PromptInput.Submitted)
    def _prompt_submitted(self, event: PromptInput.Submitted) -> None:
        if self.streaming:
            event.prompt.put_back(event.text)
            self.notify("A reply is still streaming: press Escape to stop it first.")
            return
        sidebar = self.query_one(SettingsSidebar)
        settings = sidebar.read_settings()
        if settings is None:
            sidebar.display = True
            if not sidebar.query_one("#model-input", Input).value.strip():
                sidebar.query_one("#model-input", Input).focus()
                message = "Type or pick a deployment (model) name in the sidebar first."
            else:
                message = "Fix the highlighted setting in the sidebar before sending."
            event.prompt.put_back(event.text)
            self.notify(message, severity="error")
            return
        self.send_prompt(event.text, settings)

    @on(PromptInput.RecallWanted)
    def _recall_wanted(self, event: PromptInput.RecallWanted) -> None:
        recall = self._recall
        if recall is None or not event.stepping:
            recall = self._recall = PromptRecall(
                (
                    message.text
                    for message in reversed(self.current_messages())
                    if message.role == MessageRole.USER
                ),
                skip=frozenset({CONTINUE_PROMPT}),
            )
            self.read_older_prompts(recall)
        if not event.older:
            event.prompt.show_recalled(recall.newer())
        elif (text := recall.older()) is not None:
            event.prompt.show_recalled(text)

    @work(exclusive=True, group="recall", exit_on_error=False)
    async def read_older_prompts(self, recall: PromptRecall) -> None:
        current = self.session.conversation.id if self.session else None
        try:
            older = await self.workspace.recent_prompts(current, RECALL_ROWS)
        except StorageError:
            older = []  # recalling is a convenience; the problem shows where it matters
        if recall is not self._recall:
            return
        prompt = self.query_one(PromptInput)
        text = recall.add_older(older)
        if text is not None and (prompt.recalling or not prompt.text):
            prompt.show_recalled(text)

    async def _session_for(self, settings: GenerationSettings) -> ChatSession | None:
        """The current session (created on the first send) with ``settings`` applied."""
        try:
            if self.session is None:
                self.session = await self.workspace.new_session(settings)
            else:
                await self.session.update_settings(settings)
        except StorageError as error:
            self.notify(str(error), title="Could not save", severity="error", timeout=15)
            return None
        return self.session

    @work(exclusive=True, group="turn", exit_on_error=False)
    async def send_prompt(self, text: str, settings: GenerationSettings) -> None:
        session = await self._session_for(settings)
        if session is None:
            self._restore_prompt(text)
            return
        await self._play_turn(session.send(text), prompt=text)

    @work(exclusive=True, group="turn", exit_on_error=False)
    async def retry_reply(self, reply: Message, settings: GenerationSettings) -> None:
        session = await self._session_for(settings)
        if session is not None:
            await self._play_turn(session.retry(reply), replacing=reply)

    async def _play_turn(
        self,
        events: AsyncIterator[TurnEvent],
        *,
        prompt: str | None = None,
        replacing: Message | None = None,
    ) -> None:
        """Shows one turn's events as they come: the messages, the stream, the outcome."""
        transcript = self.query_one(Transcript)
        status = self.query_one(StatusLine)
        view: MessageBlock | None = None
        status.notice = ""
        self._last_error = None
        prompt_box = self.query_one(PromptInput)
        blinks = prompt_box.cursor_blink
        loop = asyncio.get_running_loop()
        yielded_at = loop.time()
        try:
            async for event in events:
                if isinstance(event, ReplyDelta):
                    if view is not None:
                        transcript.write(view, event.text)
                    # A fast stream read in one large chunk is a long run of deltas with
                    # no wait between them: keys would wait for the whole run.
                    if loop.time() - yielded_at > DELTA_RUN_SECONDS:
                        await asyncio.sleep(0)
                        yielded_at = loop.time()
                elif isinstance(event, TurnStarted):
                    if replacing is not None and (old := transcript.view_for(replacing.id)):
                        await transcript.remove_block(old)
                    if transcript.view_for(event.user.id) is None:
                        await transcript.add(event.user)
                    view = await transcript.add(event.reply)
                    transcript.jump_to_end()
                    self._show_mode(event.mode)
                    status.last_status = MessageStatus.PENDING
                    # The last turn's figures are not this turn's.
                    status.last_usage = None
                    # A blinking cursor repaints twice a second: not while a reply streams.
                    prompt_box.cursor_blink = False
                    self._show_title()
                elif isinstance(event, ContextTrimmed):
                    status.notice = event.reason
                    self.notify(event.reason)
                elif isinstance(event, ModeChanged):
                    self._show_mode(event.mode)
                    status.notice = "the server had lost the chain: the transcript was resent"
                    self.notify(event.reason)
                elif isinstance(event, Retrying):
                    status.show_retry(
                        event.reason, event.wait_seconds, event.attempt, event.attempts
                    )
                elif isinstance(event, Waiting):
                    status.show_waiting(event.seconds)
                elif isinstance(event, Answered):
                    status.clear_wait()
                elif isinstance(event, TurnEnded):
                    if view is not None:
                        await transcript.finish(view)
                        transcript.update(view, event.reply)
                    self._turn_ended(event)
        except StorageError as error:
            self.notify(str(error), title="Could not save", severity="error", timeout=15)
            if prompt is not None and view is None:
                self._restore_prompt(prompt)
        except BaseException as stopped:
            if isinstance(stopped, asyncio.CancelledError):
                await _pass_on_cancel(events)
            if view is not None and view.message.status == MessageStatus.PENDING:
                transcript.stop(view)
                cancelled = replace(view.message, status=MessageStatus.CANCELLED)
                transcript.update(view, cancelled)
                self._last_reply = cancelled
                status.last_status = MessageStatus.CANCELLED
            raise
        finally:
            status.clear_wait()
            prompt_box.cursor_blink = blinks
            self.refresh_bindings()
            self.refresh_history()

    def _turn_ended(self, event: TurnEnded) -> None:
        status = self.query_one(StatusLine)
        reply = event.reply
        self._last_reply = reply
        self._last_error = event.error
        status.last_status = reply.status
        status.last_usage = reply.usage
        status.conversation_usage = event.conversation_usage
        if self.session is not None:
            # From the whole transcript: after a failed turn the next send still chains
            # from the last reply the server kept.
            self._show_mode(self.session.next_send_mode(self.current_messages()))
        self._show_title()
        if event.error is not None:
            # The prompt stays in the transcript, with its failed reply, for Ctrl+R to
            # resend; it is not also put back in the box, where Enter would send it again.
            self._show_error(event.error)
        elif reply.status == MessageStatus.INCOMPLETE:
            self.notify(
                f"{reply.error or 'The reply stopped early.'} Press Ctrl+G to ask the model to "
                "go on, or Ctrl+R to try again.",
                title="Reply cut off",
                severity="warning",
                timeout=12,
            )

    # -- retry and continue ---------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_reply":
            # Shown only while there is a reply to cancel (the key bar follows the turn
            # worker's state: see on_worker_state_changed).
            return self.streaming
        if action == "retry":
            return self._last_reply is not None and self._last_reply.status in _RETRYABLE
        if action == "continue_reply":
            last = self._last_reply
            return last is not None and last.status == MessageStatus.INCOMPLETE
        return True

    def action_retry(self) -> None:
        """Resends the prompt of the last failed, cancelled or cut-off reply."""
        reply = self._last_reply
        if reply is None or reply.status not in _RETRYABLE or self.streaming:
            return
        sidebar = self.query_one(SettingsSidebar)
        error = self._last_error
        if error is not None and error.kind == ErrorKind.UNSUPPORTED_PARAMETER:
            # The model refuses sampling settings: resend without them, and say so.
            current = sidebar.read_settings() or self._pending_settings
            sidebar.show_settings(replace(current, temperature=None, top_p=None))
            self.notify("Resending without temperature and top_p.")
        settings = sidebar.read_settings()
        if settings is None:
            self.notify("Fix the highlighted setting in the sidebar first.", severity="error")
            return
        self.retry_reply(reply, settings)

    def action_continue_reply(self) -> None:
        """Asks the model to go on after a reply was cut off at the token limit."""
        reply = self._last_reply
        if reply is None or reply.status != MessageStatus.INCOMPLETE or self.streaming:
            return
        settings = self.query_one(SettingsSidebar).read_settings()
        if settings is not None:
            self.send_prompt(CONTINUE_PROMPT, settings)

    def _show_error(self, error: BackendError) -> None:
        hint = (
            "Press Ctrl+R to resend without them."
            if error.kind == ErrorKind.UNSUPPORTED_PARAMETER
            else "Press Ctrl+R to retry."
        )
        self.notify(
            f"{sanitize(error.detail)}\n{hint}".strip(),
            title=sanitize(error.title),
            severity="error",
            timeout=15,
        )

    def _restore_prompt(self, text: str) -> None:
        prompt = self.query_one(PromptInput)
        if not prompt.text.strip():
            prompt.text = text
            prompt.move_cursor(prompt.document.end)

    def action_cancel_reply(self) -> None:
        for worker in self.workers:
            if worker.group == "turn" and worker.state == WorkerState.RUNNING:
                worker.cancel()
                self.notify("Reply cancelled; the text so far is saved.")

    # -- settings ----------------------------------------------------------------

    @on(SettingsSidebar.SettingsEdited)
    def _settings_edited(self, event: SettingsSidebar.SettingsEdited) -> None:
        self._pending_settings = event.settings
        if self.session is not None:
            self.save_settings(self.session, event.settings)

    @work(group="settings", exit_on_error=False)
    async def save_settings(self, session: ChatSession, settings: GenerationSettings) -> None:
        await session.update_settings(settings)

    def _ask_for_model(self) -> None:
        """No model configured: the first send could only fail, so the model list (or the
        name field, while the endpoint's list is not in yet) gets the cursor at once."""
        sidebar = self.query_one(SettingsSidebar)
        sidebar.display = True
        self._focus_model_list()
        self.notify(NO_MODEL_HINT, title="Choose a model", timeout=30)

    def _focus_model_list(self) -> None:
        sidebar = self.query_one(SettingsSidebar)
        models = sidebar.query_one("#model-list", OptionList)
        if models.option_count:
            if models.highlighted is None:
                models.highlighted = 0
            models.focus()
        else:
            sidebar.query_one("#model-input", Input).focus()

    def show_models(self, deployments: tuple[str, ...], endpoint_models: tuple[str, ...]) -> None:
        """The profile's deployments and what the endpoint lists, in the sidebar."""
        sidebar = self.query_one(SettingsSidebar)
        sidebar.show_models(deployments, endpoint_models)
        name_field = sidebar.query_one("#model-input", Input)
        # Still no model, and the cursor still waits in the empty name field for one.
        if self.focused is name_field and not name_field.value.strip():
            self._focus_model_list()

    # -- history -------------------------------------------------------------------

    @work(exclusive=True, group="history", exit_on_error=False)
    async def refresh_history(self) -> None:
        panel = self.query_one(HistoryPanel)
        if not panel.display:
            # A hidden list is filled once the history is open; it does not open it.
            await self.workspace.history_opened()
        conversations = await self.workspace.conversations(
            self._history_search or None, limit=panel.rows_wanted
        )
        current = self.session.conversation.id if self.session else None
        panel.show(conversations, current)

    @on(HistoryPanel.FilterChanged)
    def _filter_changed(self, event: HistoryPanel.FilterChanged) -> None:
        self._history_search = event.text
        self.refresh_history()

    @on(HistoryPanel.MoreWanted)
    def _more_history_wanted(self, event: HistoryPanel.MoreWanted) -> None:
        self.refresh_history()

    @on(HistoryPanel.Opened)
    def _opened(self, event: HistoryPanel.Opened) -> None:
        if self.streaming:
            self.notify("A reply is still streaming: press Escape to stop it first.")
            return
        self.open_conversation(event.conversation_id)

    @work(exclusive=True, group="open", exit_on_error=False)
    async def open_conversation(self, conversation_id: str) -> None:
        try:
            session = await self.workspace.open_session(conversation_id)
        except LookupError as error:
            self.notify(str(error), severity="error")
            return
        await self._show_session(session)

    @work(exclusive=True, group="open", exit_on_error=False)
    async def resume_conversation(self, target: str) -> None:
        """`--resume`: a conversation id, or a response id (rebuilt from the server)."""
        status = self.query_one(StatusLine)
        status.notice = f"Opening {target}…"
        try:
            session = await self.workspace.resume(target)
        except (LookupError, BackendError) as error:
            status.notice = ""
            await self.query_one(Transcript).show([])
            message = error.user_message if isinstance(error, BackendError) else str(error)
            self.notify(sanitize(message), title="Could not resume", severity="error", timeout=12)
            return
        status.notice = ""
        await self._show_session(session)
        if session.notes:
            self.notify(
                sanitize(" ".join(session.notes)),
                title="Rebuilt in part",
                severity="warning",
                timeout=20,
            )
        self.refresh_history()

    async def _show_session(self, session: ChatSession) -> None:
        self.session = session
        self._recall = None
        transcript = self.query_one(Transcript)
        # The newest messages first, on screen at once; the rest of a long conversation
        # is read after them and put above.
        messages = await session.transcript(newest=OPENING_MESSAGES)
        await transcript.show(messages)
        if len(messages) == OPENING_MESSAGES:
            everything = await session.transcript()
            if session is not self.session:
                return
            # What comes before the first message shown (a turn sent meanwhile is after).
            first = next(
                (i for i, message in enumerate(everything) if message.id == messages[0].id), 0
            )
            transcript.prepend(everything[:first])
            messages = everything
        self._pending_settings = session.conversation.settings
        self.query_one(SettingsSidebar).show_settings(session.conversation.settings)
        status = self.query_one(StatusLine)
        last_reply = next((m for m in reversed(messages) if m.role.value == "assistant"), None)
        self._last_reply = last_reply
        self._last_error = None
        self.refresh_bindings()
        status.last_status = last_reply.status if last_reply else None
        status.last_usage = last_reply.usage if last_reply else None
        status.conversation_usage = await session.usage()
        self._show_mode(session.next_send_mode(messages))
        self._show_title()
        self.query_one(PromptInput).focus()
        if messages:
            self.check_server(session)

    @work(exclusive=True, group="server-check", exit_on_error=False)
    async def check_server(self, session: ChatSession) -> None:
        status = self.query_one(StatusLine)
        status.notice = "checking the server…"
        try:
            state = await session.check_server_state()
        except BackendError as error:
            status.notice = f"could not check the server: {sanitize(error.title)}"
            return
        if session is not self.session:
            return
        status.notice = ""
        if state == ServerState.EXPIRED:
            self._show_mode(SendMode.REPLAY)
        elif state == ServerState.LIVE:
            self._show_mode(SendMode.CHAIN)

    def action_new_conversation(self) -> None:
        if self.streaming:
            self.notify("A reply is still streaming: press Escape to stop it first.")
            return
        self.start_new_conversation()

    @work(exclusive=True, group="open", exit_on_error=False)
    async def start_new_conversation(self) -> None:
        await self._start_afresh()
        self.query_one(PromptInput).focus()
        self.refresh_history()

    async def _start_afresh(self) -> None:
        """An empty conversation in place of the open one (new, or the open one deleted):
        nothing of the last turn stays on the status line."""
        self.session = None
        self._last_reply = None
        self._last_error = None
        self._recall = None
        self.refresh_bindings()
        self._pending_settings = replace(
            self.workspace.default_settings(), model=self._pending_settings.model
        )
        self.query_one(SettingsSidebar).show_settings(self._pending_settings)
        status = self.query_one(StatusLine)
        status.last_status = None
        status.last_usage = None
        status.conversation_usage = None
        status.notice = ""
        self._show_mode(SendMode.NEW)
        await self.query_one(Transcript).show([])
        self._show_title()

    @on(ConversationList.DeleteRequested)
    def _delete_requested(self, event: ConversationList.DeleteRequested) -> None:
        title = one_line(event.title, 80) or "this conversation"

        def deleted(confirmed: bool | None) -> None:
            if confirmed:
                self.delete_conversation(event.conversation_id)

        self.app.push_screen(ConfirmScreen(f"Delete “{title}” and all its messages?"), deleted)

    @work(group="history-edit", exit_on_error=False)
    async def delete_conversation(self, conversation_id: str) -> None:
        await self.workspace.delete(conversation_id)
        if self.session is not None and self.session.conversation.id == conversation_id:
            await self._start_afresh()
        self.notify("Conversation deleted.")
        self.refresh_history()

    @on(ConversationList.RenameRequested)
    def _rename_requested(self, event: ConversationList.RenameRequested) -> None:
        self._ask_rename(event.conversation_id, event.title)

    def action_rename(self) -> None:
        if self.session is None:
            self.notify("Send a first message to start a conversation you can rename.")
            return
        self._ask_rename(self.session.conversation.id, self.session.conversation.title)

    def _ask_rename(self, conversation_id: str, title: str) -> None:
        def renamed(new_title: str | None) -> None:
            if new_title:
                self.rename_conversation(conversation_id, new_title)

        self.app.push_screen(RenameScreen(title), renamed)

    @work(group="history-edit", exit_on_error=False)
    async def rename_conversation(self, conversation_id: str, title: str) -> None:
        if self.session is not None and self.session.conversation.id == conversation_id:
            await self.session.rename(title)
        else:
            await self.workspace.rename(conversation_id, title)
        self._show_title()
        self.refresh_history()

    # -- panels ----------------------------------------------------------------------

    # A panel's key goes to the panel: it shows it, or moves the cursor into it when it is
    # shown elsewhere; only a press from inside the panel hides it.

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one(SettingsSidebar)
        if sidebar.display and sidebar.has_focus_within:
            sidebar.display = False
            self.query_one(PromptInput).focus()
            return
        sidebar.display = True
        sidebar.query_one("#model-input").focus()

    def action_toggle_history(self) -> None:
        history = self.query_one(HistoryPanel)
        if history.display and history.has_focus_within:
            history.display = False
            self.query_one(PromptInput).focus()
            return
        history.display = True
        conversations = history.query_one(ConversationList)
        if conversations.highlighted is None and conversations.option_count:
            conversations.highlighted = 0
        conversations.focus()

    def action_focus_prompt(self) -> None:
        self.query_one(PromptInput).focus()

    def _show_mode(self, mode: SendMode) -> None:
        status = self.query_one(StatusLine)
        status.mode = _MODE_TEXT[mode]
        status.mode_short = _MODE_SHORT[mode]

    def _show_title(self) -> None:
        title = self.session.conversation.title if self.session else ""
        # One line high and as wide as the pane (chat.tcss): a new title needs a repaint,
        # not a layout of the whole screen.
        self.query_one("#conversation-title", Static).update(
            plain_line(title) if title else Content("New conversation"), layout=False
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR and worker.error is not None:
            error = worker.error
            if isinstance(error, BackendError):
                message = error.user_message
            elif isinstance(error, StorageError):
                message = str(error)
            else:  # a bug: the traceback goes to the log, one line to the screen
                message = report_bug(error, f"the {worker.group} worker")
            self.notify(
                sanitize(message), title="Something went wrong", severity="error", timeout=12
            )
        if worker.group == "turn":
            # Cancel reply comes and goes with the reply.
            self.refresh_bindings()
            if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
                self.query_one(StatusLine).refresh()

    def palette_commands(self) -> Iterator[SystemCommand]:
        """Commands the command palette offers beyond the key bindings."""
        yield SystemCommand(
            "Show status",
            "The whole status line, however narrow the terminal",
            self.action_show_status,
        )
        from foundry_tui.ui.screens.export import export_commands  # when the palette opens

        yield from export_commands(self)

    def action_show_status(self) -> None:
        self.notify(self.query_one(StatusLine).full_text, title="Status", timeout=15)

    def current_messages(self) -> list[Message]:
        """What the transcript shows, for tests and exports."""
        return [block.message for block in self.query_one(Transcript).blocks]


async def _pass_on_cancel(events: AsyncIterator[TurnEvent]) -> None:
    """A cancel that lands while an event is drawn does not reach the session's stream,
    which waits at its last event: closing it there saves the reply so far (cancelled)."""
    if isinstance(events, AsyncGenerator):
        await events.aclose()
