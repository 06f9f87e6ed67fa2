"""The chat screen: history on the left, transcript and prompt in the middle, settings right.

It draws and routes. What a turn does is decided by `core.turns.Turns`; a turn runs in an
async worker (exclusive, group "turn") that posts its events back here as messages
(turn_flow), which `TurnView` draws. Opening, listing, renaming and deleting
conversations is in `conversations`. The app tells the screen things with messages
(`ui.messages`) and the screen asks the app only with messages too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message as TextualMessage
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from foundry_tui.core.attachments import FileToAttach
from foundry_tui.core.models import GenerationSettings, Message, StorageError
from foundry_tui.core.session import ChatSession
from foundry_tui.core.text import sanitize
from foundry_tui.core.turns import CONTINUE_PROMPT, Remedy, Turns
from foundry_tui.ui.messages import BackendProgress, HistoryUnusable, ModelsListed
from foundry_tui.ui.screens.attaching import Attaching, send_with_files
from foundry_tui.ui.screens.branching import Branching
from foundry_tui.ui.screens.conversations import Conversations
from foundry_tui.ui.screens.model_choice import ask_for_model, settings_for_send, show_models
from foundry_tui.ui.screens.panels import lay_out_panels, toggle_history, toggle_sidebar
from foundry_tui.ui.screens.recall import PromptRecall
from foundry_tui.ui.screens.recalling import Recalling
from foundry_tui.ui.screens.turn_flow import TurnMessage, post_turn
from foundry_tui.ui.screens.turn_view import TurnView, failure_text
from foundry_tui.ui.widgets.attachment_chips import AttachmentChips
from foundry_tui.ui.widgets.footer import KeyFooter
from foundry_tui.ui.widgets.history import ConversationList, HistoryPanel
from foundry_tui.ui.widgets.prompt import PromptInput
from foundry_tui.ui.widgets.sidebar import SettingsSidebar
from foundry_tui.ui.widgets.status import StatusLine
from foundry_tui.ui.widgets.transcript import Transcript

if TYPE_CHECKING:
    from foundry_tui.core.workspace import Workspace

__all__ = ["CONTINUE_PROMPT", "ChatScreen"]

STILL_STREAMING = "A reply is still streaming: press Escape to stop it first."


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
            "ctrl+r",
            "regenerate_last",
            "Regenerate",
            id="chat.regenerate",
            tooltip="Another reply to the last prompt, as a new branch: the old reply stays "
            "(select it and press ← or → to switch back)",
        ),
        Binding(
            "ctrl+up",
            "select_messages",
            "Messages",
            id="chat.select_messages",
            tooltip="Select the newest message in the transcript: ↑↓ move, c copies, e edits "
            "a prompt, r regenerates a reply, ←→ switch branches, Escape comes back",
        ),
        Binding(
            "escape",
            "cancel_edit",
            "Cancel edit",
            id="chat.cancel_edit",
            tooltip="Stop editing the earlier prompt; the prompt box gets back what it held",
        ),
        Binding(
            "ctrl+g",
            "continue_reply",
            "Continue",
            id="chat.continue",
            tooltip="Ask the model to go on after a reply cut off at the token limit",
        ),
        Binding(
            "f4",
            "larger_budget",
            "Larger budget",
            id="chat.larger_budget",
            tooltip="Resend the last prompt with twice the max output tokens: the model spent "
            "its budget reasoning and wrote (almost) no answer",
        ),
        Binding(
            "ctrl+t",
            "toggle_thinking",
            "Thinking",
            id="chat.toggle_thinking",
            tooltip="Unfold or fold the model's thinking (the selected reply's, else the latest)",
        ),
        Binding(
            "f3",
            "attach",
            "Attach…",
            id="chat.attach",
            tooltip="Pick an image or a PDF to send with the next prompt",
        ),
        Binding(
            "f8",
            "compare",
            "Compare…",
            id="chat.compare",
            show=False,
            tooltip="Send one prompt to 2 or 3 deployments at once and see the replies side "
            "by side; continue with the one you like, the others stay as branches",
        ),
        Binding(
            "f2",
            "rename",
            "Rename",
            id="chat.rename",
            show=False,
            tooltip="Rename this conversation",
        ),
        # A priority binding: the prompt and the one-line fields take Ctrl+E for "end of
        # line" (End still does that).
        Binding(
            "ctrl+e",
            "open_editor",
            "Editor",
            id="chat.open_editor",
            priority=True,
            tooltip="Write the prompt in your editor ($VISUAL or $EDITOR); the app waits for it",
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
        self.turns: Turns | None = None
        self.resume_target = resume
        self.pending_settings = workspace.default_settings()
        self.conversations = Conversations(self)
        self.recalling = Recalling(self)
        self.attaching = Attaching(self)
        self.branching = Branching(self)

    @property
    def session(self) -> ChatSession | None:
        return self.turns.session if self.turns is not None else None

    def use_turns(self, turns: Turns | None) -> None:
        """Another conversation (or none yet) from here on."""
        self.turns = turns
        self.recalling.recall = None
        if self.branching.editing is not None and (
            turns is None or turns.session is not self.branching.session
        ):
            self.branching.cancel_edit()
        self.refresh_bindings()

    # -- layout ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-body"):
            yield HistoryPanel(id="history")
            with Vertical(id="chat-main"):
                yield Static("", id="conversation-title")
                yield Transcript(id="transcript")
                yield StatusLine(id="status")
                yield PromptInput(id="prompt")
                yield AttachmentChips(id="attachments")
            yield SettingsSidebar(id="sidebar")
        # On a narrow terminal these go first (Quit and the palette key always stay).
        yield KeyFooter(
            # Regenerate goes last of these: after a completed reply it is what is done next.
            drop_first=(
                "chat.select_messages",
                "chat.open_editor",
                "chat.focus_prompt",
                "chat.toggle_history",
                "chat.new",
                "chat.toggle_sidebar",
                "chat.regenerate",
            )
        )

    async def on_mount(self) -> None:
        self.turn_view = TurnView(self)
        history_shown = lay_out_panels(
            self, self.app.size.width, getattr(self.app, "sidebar_preference", None)
        )
        self.watch_history()
        if history_shown or self.resume_target is not None:
            self.workspace.open_history()
        self.show_settings(self.pending_settings)
        show_models(self, self.workspace.profile.deployments, ())
        self.conversations.show_title()
        self.query_one(PromptInput).focus()
        if self.resume_target is not None:
            self.resume_conversation(self.resume_target)
        else:
            await self.query_one(Transcript).show([])
            if not self.pending_settings.model:
                ask_for_model(self)
        self.refresh_history()
        self.post_message(self.Ready(self))

    @work(group="history-opening", exit_on_error=False)
    async def watch_history(self) -> None:
        """The history database cannot be used: the app says why and what can be done."""
        try:
            await self.workspace.history_opened()
        except StorageError as error:
            self.post_message(HistoryUnusable(error, self.workspace.profile))

    @on(BackendProgress)
    def _backend_progress(self, message: BackendProgress) -> None:
        self.query_one(StatusLine).notice = message.text

    # -- sending -----------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        return any(
            worker.group == "turn" and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)
            for worker in self.workers
        )

    @on(PromptInput.Submitted)
    def _prompt_submitted(self, event: PromptInput.Submitted) -> None:
        if not self.attaching.typed(event):  # a prompt of only paths: files, maybe
            self.submit(event.prompt, event.text)

    def submit(self, prompt: PromptInput, text: str) -> None:
        if self.streaming:
            prompt.put_back(text)
            self.notify(STILL_STREAMING)
            return
        if self.branching.send_edit(text):
            return
        settings = settings_for_send(self)
        if settings is None:
            prompt.put_back(text)
            return
        files = self.attaching.files
        # Files with no text: the prompt is sent with an empty text and its files.
        self.send_prompt(text if text.strip() or not files else "", settings, files)

    @on(PromptInput.PathsPasted)
    def _paths_pasted(self, event: PromptInput.PathsPasted) -> None:
        self.attaching.pasted(event)

    @on(AttachmentChips.Changed)
    def _attachments_changed(self) -> None:
        self.attaching.changed()

    @on(AttachmentChips.Done)
    def _attachments_done(self) -> None:
        self.query_one(PromptInput).focus()

    def action_attach(self) -> None:
        self.attaching.open_picker()

    def action_open_editor(self) -> None:
        from foundry_tui.ui.screens.editor import edit_prompt  # when first asked for

        edit_prompt(self)

    @on(PromptInput.RecallWanted)
    def _recall_wanted(self, event: PromptInput.RecallWanted) -> None:
        self.recalling.wanted(event)

    @work(exclusive=True, group="recall", exit_on_error=False)
    async def read_older_prompts(self, recall: PromptRecall) -> None:
        await self.recalling.read_older(recall)

    @work(exclusive=True, group="turn", exit_on_error=False)
    async def send_prompt(
        self, text: str, settings: GenerationSettings, files: tuple[FileToAttach, ...] = ()
    ) -> None:
        turns = self.turns or await self.conversations.start(settings, text)
        if turns is not None:
            self.attaching.in_flight = files
            events = send_with_files(turns, text, settings, files)
            await post_turn(self, turns, events, prompt=text)

    @work(exclusive=True, group="turn", exit_on_error=False)
    async def retry_reply(self, turns: Turns, settings: GenerationSettings) -> None:
        await post_turn(self, turns, turns.retry(settings))

    @work(exclusive=True, group="turn", exit_on_error=False)
    async def resend_with_budget(self, turns: Turns, settings: GenerationSettings) -> None:
        await post_turn(self, turns, turns.retry_with_budget(settings))

    @on(TurnMessage)
    async def _turn_message(self, message: TurnMessage) -> None:
        await self.attaching.turn_message(message)
        await self.turn_view.apply(message)
        self.branching.turn_message(message)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_reply":
            # Shown only while there is a reply to cancel (the key bar follows the turn
            # worker's state: see on_worker_state_changed).
            return self.streaming
        if action == "retry":
            return self.turns is not None and self.turns.can_retry
        if action == "regenerate_last":
            return (
                self.turns is not None
                and not self.turns.can_retry
                and self.branching.can_regenerate_last()
            )
        if action == "cancel_edit":
            return self.branching.editing is not None and not self.streaming
        if action == "select_messages":
            transcripts = self.query(Transcript)
            return bool(transcripts) and bool(transcripts.first().blocks)
        if action == "continue_reply":
            return self.turns is not None and self.turns.can_continue
        if action == "larger_budget":
            return self.turns is not None and self.turns.remedy == Remedy.LARGER_BUDGET
        if action == "toggle_thinking":
            transcripts = self.query(Transcript)  # none yet while the screen composes
            return bool(transcripts) and transcripts.first().thinking_target() is not None
        return True

    def action_toggle_thinking(self) -> None:
        """Unfolds or folds the thinking of the selected reply, else of the latest."""
        transcript = self.query_one(Transcript)
        block = transcript.thinking_target()
        if block is not None:
            transcript.toggle_thinking(block)

    def action_retry(self) -> None:
        """Resends the prompt of the last failed, cancelled or cut-off reply."""
        turns = self.turns
        if turns is None or not turns.can_retry or self.streaming:
            return
        if (settings := settings_for_send(self)) is not None:
            self.retry_reply(turns, settings)

    def action_regenerate_last(self) -> None:
        """Another reply to the last prompt, beside the completed one."""
        turns = self.turns
        if turns is not None and turns.last_reply is not None:
            self.branching.regenerate(turns.last_reply)

    def action_cancel_edit(self) -> None:
        self.branching.cancel_edit()

    def action_select_messages(self) -> None:
        transcript = self.query_one(Transcript)
        transcript.focus()
        transcript.select_newest()

    @on(Transcript.SwitchBranch)
    def _switch_branch(self, event: Transcript.SwitchBranch) -> None:
        self.branching.switch(event.message, event.step)

    @on(Transcript.BranchesInView)
    def _branches_in_view(self, event: Transcript.BranchesInView) -> None:
        self.branching.render_ahead(event.message)

    @on(Transcript.EditPrompt)
    def _edit_prompt(self, event: Transcript.EditPrompt) -> None:
        self.branching.start_edit(event.message)

    @on(Transcript.Regenerate)
    def _regenerate(self, event: Transcript.Regenerate) -> None:
        self.branching.regenerate(event.message)

    @on(Transcript.Leave)
    def _leave_transcript(self) -> None:
        self.query_one(PromptInput).focus()

    def action_continue_reply(self) -> None:
        """Asks the model to go on after a reply was cut off at the token limit."""
        if self.turns is None or not self.turns.can_continue or self.streaming:
            return
        if (settings := settings_for_send(self)) is not None:
            self.send_prompt(CONTINUE_PROMPT, settings)

    def action_larger_budget(self) -> None:
        """Resends the last prompt with a larger output budget (it went on reasoning)."""
        turns = self.turns
        if turns is None or turns.remedy != Remedy.LARGER_BUDGET or self.streaming:
            return
        if (settings := settings_for_send(self)) is not None:
            self.resend_with_budget(turns, settings)

    def action_compare(self) -> None:
        if self.streaming:
            self.notify(STILL_STREAMING)
            return
        from foundry_tui.ui.screens.comparing import Comparing  # when asked: not at start-up

        self.run_worker(
            Comparing(self).open(), group="compare", exclusive=True, exit_on_error=False
        )

    def action_cancel_reply(self) -> None:
        for worker in self.workers:
            if worker.group == "turn" and worker.state == WorkerState.RUNNING:
                worker.cancel()
                self.notify("Reply cancelled; the text so far is saved.")

    # -- settings and models ---------------------------------------------------------

    def show_settings(self, settings: GenerationSettings) -> None:
        self.pending_settings = settings
        self.query_one(SettingsSidebar).show_settings(settings)

    @on(SettingsSidebar.SettingsEdited)
    def _settings_edited(self, event: SettingsSidebar.SettingsEdited) -> None:
        self.pending_settings = event.settings
        if self.session is not None:
            self.save_settings(self.session, event.settings)

    @work(group="settings", exit_on_error=False)
    async def save_settings(self, session: ChatSession, settings: GenerationSettings) -> None:
        await session.update_settings(settings)

    @on(ModelsListed)
    def _models_listed(self, message: ModelsListed) -> None:
        show_models(self, message.deployments, message.endpoint_models)

    # -- conversations (the work is in conversations.py) -----------------------------

    @work(exclusive=True, group="history", exit_on_error=False)
    async def refresh_history(self) -> None:
        await self.conversations.refresh_list()

    @on(HistoryPanel.FilterChanged)
    def _filter_changed(self, event: HistoryPanel.FilterChanged) -> None:
        self.conversations.search = event.text
        self.refresh_history()

    @on(HistoryPanel.MoreWanted)
    def _more_history_wanted(self, event: HistoryPanel.MoreWanted) -> None:
        self.refresh_history()

    @on(HistoryPanel.Opened)
    def _opened(self, event: HistoryPanel.Opened) -> None:
        if self.streaming:
            self.notify(STILL_STREAMING)
            return
        self.open_conversation(event.conversation_id)

    @work(exclusive=True, group="open", exit_on_error=False)
    async def open_conversation(self, conversation_id: str) -> None:
        await self.conversations.open(conversation_id)

    @work(exclusive=True, group="open", exit_on_error=False)
    async def resume_conversation(self, target: str) -> None:
        await self.conversations.resume(target)

    @work(exclusive=True, group="server-check", exit_on_error=False)
    async def check_server(self, turns: Turns) -> None:
        await self.conversations.check_server(turns)

    def action_new_conversation(self) -> None:
        if self.streaming:
            self.notify(STILL_STREAMING)
            return
        self.start_new_conversation()

    @work(exclusive=True, group="open", exit_on_error=False)
    async def start_new_conversation(self) -> None:
        await self.conversations.start_afresh(focus=True)

    @on(ConversationList.DeleteRequested)
    def _delete_requested(self, event: ConversationList.DeleteRequested) -> None:
        self.conversations.ask_delete(event.conversation_id, event.title)

    @work(group="history-edit", exit_on_error=False)
    async def delete_conversation(
        self, conversation_id: str, on_server: tuple[str, ...] = ()
    ) -> None:
        await self.conversations.delete(conversation_id, on_server)

    @on(ConversationList.ArchiveRequested)
    def _archive_requested(self, event: ConversationList.ArchiveRequested) -> None:
        self.set_archived(event.conversation_id, event.archive)

    @work(group="history-edit", exit_on_error=False)
    async def set_archived(self, conversation_id: str, archive: bool) -> None:
        await self.conversations.set_archived(conversation_id, archive)

    @on(HistoryPanel.ViewChanged)
    def _history_view_changed(self, event: HistoryPanel.ViewChanged) -> None:
        self.refresh_history()

    @on(ConversationList.RenameRequested)
    def _rename_requested(self, event: ConversationList.RenameRequested) -> None:
        self.conversations.ask_rename(event.conversation_id, event.title)

    def action_rename(self) -> None:
        if self.session is None:
            self.notify("Send a first message to start a conversation you can rename.")
            return
        self.conversations.ask_rename(self.session.conversation.id, self.session.conversation.title)

    @work(group="history-edit", exit_on_error=False)
    async def rename_conversation(self, conversation_id: str, title: str) -> None:
        await self.conversations.rename(conversation_id, title)

    # -- panels ----------------------------------------------------------------------

    def action_toggle_sidebar(self) -> None:
        toggle_sidebar(self)

    def action_toggle_history(self) -> None:
        toggle_history(self)

    def action_focus_prompt(self) -> None:
        self.query_one(PromptInput).focus()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR and worker.error is not None:
            message = failure_text(worker.error, f"the {worker.group} worker")
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
        from foundry_tui.ui.screens.view_code import view_code_command

        yield view_code_command(self)
        from foundry_tui.ui.screens.usage import usage_commands

        yield from usage_commands(self)
        yield from self.branching.commands()
        from foundry_tui.ui.screens.archive import archive_commands

        yield from archive_commands(self)

    def action_show_status(self) -> None:
        self.notify(self.query_one(StatusLine).full_text, title="Status", timeout=15)

    def current_messages(self) -> list[Message]:
        """What the transcript shows, for tests and exports."""
        return [block.message for block in self.query_one(Transcript).blocks]
