"""The chat screen's conversations: the history list (or its archived view), opening one
(from the list or ``--resume``), starting afresh, deleting (with its stored responses on
the server, when asked), archiving, restoring and renaming.

The screen runs each of these in a worker of its own; they draw through the screen."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from foundry_tui.core.models import (
    BackendError,
    GenerationSettings,
    MessageRole,
    StorageError,
)
from foundry_tui.core.session import ChatSession, SendMode
from foundry_tui.core.text import one_line, sanitize
from foundry_tui.core.turns import Turns
from foundry_tui.ui.screens.dialogs import DeleteScreen, FailuresScreen, RenameScreen
from foundry_tui.ui.screens.turn_view import show_mode
from foundry_tui.ui.widgets.history import HistoryPanel
from foundry_tui.ui.widgets.plain import plain_line
from foundry_tui.ui.widgets.prompt import PromptInput
from foundry_tui.ui.widgets.status import StatusLine
from foundry_tui.ui.widgets.transcript import Transcript

if TYPE_CHECKING:
    from textual.widget import Widget

    from foundry_tui.ui.screens.chat import ChatScreen

# How many of its newest messages a conversation opens with; the rest follow at once.
OPENING_MESSAGES = 40


class Conversations:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self.search = ""
        # Whether the open conversation is archived (the palette offers Restore then).
        self.archived = False

    async def refresh_list(self) -> None:
        screen = self.screen
        panel = screen.query_one(HistoryPanel)
        if not panel.display:
            # A hidden list is filled once the history is open; it does not open it.
            await screen.workspace.history_opened()
        archived = panel.showing_archived
        conversations = await screen.workspace.conversations(
            self.search or None, limit=panel.rows_wanted, archived=archived
        )
        if archived != panel.showing_archived:
            return  # switched meanwhile: the other list is on its way
        current = screen.session.conversation.id if screen.session else None
        panel.show(conversations, current)

    async def start(self, settings: GenerationSettings, prompt: str) -> Turns | None:
        """The conversation, saved as its first ``prompt`` is sent; None if it cannot be
        saved (said, and the prompt put back)."""
        try:
            turns = Turns(await self.screen.workspace.new_session(settings))
        except StorageError as error:
            self.screen.notify(str(error), title="Could not save", severity="error", timeout=15)
            self.screen.turn_view.restore_prompt(prompt)
            return None
        self.screen.use_turns(turns)
        return turns

    async def open(self, conversation_id: str) -> None:
        try:
            session = await self.screen.workspace.open_session(conversation_id)
            if self.search.strip():
                # Found by a search: the branch holding the newest match is the one shown.
                await session.switch_to_match(self.search)
        except (LookupError, StorageError) as error:
            self.screen.notify(str(error), severity="error")
            return
        await self.show(session)

    async def resume(self, target: str) -> None:
        """`--resume`: a conversation id, or a response id (rebuilt from the server)."""
        screen = self.screen
        status = screen.query_one(StatusLine)
        status.notice = f"Opening {target}…"
        try:
            session = await screen.workspace.resume(target)
        except (LookupError, BackendError) as error:
            status.notice = ""
            await screen.query_one(Transcript).show([])
            message = error.user_message if isinstance(error, BackendError) else str(error)
            screen.notify(sanitize(message), title="Could not resume", severity="error", timeout=12)
            return
        status.notice = ""
        await self.show(session)
        if session.notes:
            screen.notify(
                sanitize(" ".join(session.notes)),
                title="Rebuilt in part",
                severity="warning",
                timeout=20,
            )
        screen.refresh_history()

    async def show(self, session: ChatSession) -> None:
        screen = self.screen
        transcript = screen.query_one(Transcript)
        # The newest messages first, on screen at once; the rest of a long conversation
        # is read after them and put above.
        turns = Turns(session)
        screen.use_turns(turns)
        messages = await session.transcript(newest=OPENING_MESSAGES)
        turns.add_older(messages)
        await transcript.show(messages)
        # The conversation's settings before the prompt takes keys: a prompt sent at once
        # goes with them, not with whatever the sidebar held.
        screen.show_settings(session.conversation.settings)
        # Focused once the conversation is on screen (not before its frame: the focus
        # change would delay it), not after the rest is read: keys typed from then on
        # are the prompt's, not the history list's.
        screen.call_after_refresh(self._focus_prompt, turns, screen.focused)
        if len(messages) == OPENING_MESSAGES:
            everything = await session.transcript()
            if turns is not screen.turns:
                return
            # What comes before the first message shown (a turn sent meanwhile is after).
            first = next(
                (i for i, message in enumerate(everything) if message.id == messages[0].id), 0
            )
            transcript.prepend(everything[:first])
            turns.add_older(everything[:first])
            messages = everything
        screen.branching.refresh()
        self.archived = await screen.workspace.is_archived(session.conversation.id)
        if not self._still_showing(turns):
            return
        screen.refresh_bindings()
        status = screen.query_one(StatusLine)
        last_reply = next((m for m in reversed(messages) if m.role == MessageRole.ASSISTANT), None)
        status.last_status = last_reply.status if last_reply else None
        status.last_usage = last_reply.usage if last_reply else None
        status.show_timing(last_reply)
        usage = await session.usage()
        if not self._still_showing(turns):
            return
        status.conversation_usage = usage
        show_mode(status, turns.next_mode)
        self.show_title()
        if messages:
            screen.check_server(turns)

    def _focus_prompt(self, turns: Turns, focused_when_shown: Widget | None) -> None:
        """The prompt takes the focus, unless the user has moved it since the conversation
        was shown: to the messages (Ctrl+Up), a setting, a click there is theirs to keep.
        Focus that merely came back to the history list (a dialog closing) or went nowhere
        is not a move: the prompt takes it."""
        if not self._still_showing(turns):
            return
        focused = self.screen.focused
        if (
            focused is None
            or focused is focused_when_shown
            or self.screen.query_one(HistoryPanel) in focused.ancestors_with_self
        ):
            self.screen.query_one(PromptInput).focus()

    def _still_showing(self, turns: Turns) -> bool:
        """After a wait: whether this conversation is still the one the screen shows, on a
        screen still in the app (another was opened meanwhile, or the app is quitting)."""
        # The app stops running before it takes its screens apart (a worker resuming
        # then would find their widgets gone).
        return turns is self.screen.turns and self.screen.is_attached and self.screen.app.is_running

    async def check_server(self, turns: Turns) -> None:
        screen = self.screen
        status = screen.query_one(StatusLine)
        status.notice = "checking the server…"
        try:
            mode = await turns.check_server()
        except BackendError as error:
            status.notice = f"could not check the server: {sanitize(error.title)}"
            return
        if turns is not screen.turns:
            return
        status.notice = ""
        show_mode(status, mode)

    async def start_afresh(self, *, focus: bool = False) -> None:
        """An empty conversation in place of the open one (new, or the open one deleted):
        nothing of the last turn stays on the status line."""
        screen = self.screen
        screen.use_turns(None)
        self.archived = False
        defaults = screen.workspace.default_settings()
        screen.show_settings(replace(defaults, model=screen.pending_settings.model))
        status = screen.query_one(StatusLine)
        status.last_status = None
        status.last_usage = None
        status.show_timing(None)
        status.conversation_usage = None
        status.notice = ""
        show_mode(status, SendMode.NEW)
        await screen.query_one(Transcript).show([])
        self.show_title()
        if focus:
            screen.query_one(PromptInput).focus()
            screen.refresh_history()

    def show_title(self) -> None:
        session = self.screen.session
        title = session.conversation.title if session else ""
        # One line high and as wide as the pane (chat.tcss): a new title needs a repaint,
        # not a layout of the whole screen.
        self.screen.query_one("#conversation-title", Static).update(
            plain_line(title) if title else Content("New conversation"), layout=False
        )

    def ask_delete(self, conversation_id: str, title: str) -> None:
        """Asks first; the question waits for the count of the conversation's responses
        stored on the server (a read of the history, off the UI loop)."""
        self.screen.run_worker(
            self._ask_delete(conversation_id, title), group="history-edit", exit_on_error=False
        )

    async def _ask_delete(self, conversation_id: str, title: str) -> None:
        workspace = self.screen.workspace
        stored = await workspace.stored_responses(conversation_id)
        shown = one_line(title, 80) or "this conversation"
        note = ""
        if stored:
            conversation = await workspace.saved_conversation(conversation_id)
            if conversation is not None and conversation.profile != workspace.profile.name:
                note = (
                    f"It was started with the profile “{one_line(conversation.profile, 40)}”: "
                    f"responses stored on another server are not reached from here, and "
                    "count as gone."
                )
        confirm = DeleteScreen(
            f"Delete “{shown}” and all its messages?",
            stored=len(stored),
            host=workspace.server_host,
            note=note,
        )

        def deleted(confirmed: bool | None) -> None:
            if confirmed:
                on_server = tuple(stored) if confirm.on_server else ()
                self.screen.delete_conversation(conversation_id, on_server)

        self.screen.app.push_screen(confirm, deleted)

    async def set_archived(self, conversation_id: str, archive: bool) -> None:
        screen = self.screen
        await screen.workspace.set_archived(conversation_id, archive)
        if screen.session is not None and screen.session.conversation.id == conversation_id:
            self.archived = archive
        if archive:
            screen.notify("Conversation archived: v in the history list shows the archived ones.")
        else:
            screen.notify("Conversation restored to the list.")
        screen.refresh_history()

    def ask_rename(self, conversation_id: str, title: str) -> None:
        def renamed(new_title: str | None) -> None:
            if new_title:
                self.screen.rename_conversation(conversation_id, new_title)

        self.screen.app.push_screen(RenameScreen(title), renamed)

    async def delete(self, conversation_id: str, on_server: tuple[str, ...] = ()) -> None:
        """Deletes the conversation; first, with ``on_server``, those stored responses on
        the server. The local delete happens whatever the server answered; what it
        refused is listed afterwards."""
        screen = self.screen
        failures: list[tuple[str, BackendError]] = []
        if on_server:
            status = screen.query_one(StatusLine)
            status.notice = f"deleting {len(on_server):,} stored responses on the server…"
            try:
                failures = await screen.workspace.delete_on_server(on_server)
            finally:
                status.notice = ""
        await screen.workspace.delete(conversation_id)
        if screen.session is not None and screen.session.conversation.id == conversation_id:
            await self.start_afresh()
        screen.refresh_history()
        if not failures:
            done = (
                f" and its {len(on_server):,} stored responses on the server" if on_server else ""
            )
            screen.notify(f"Conversation deleted{done}.")
            return
        host = screen.workspace.server_host
        screen.app.push_screen(
            FailuresScreen(
                f"Deleted here; {len(failures):,} of {len(on_server):,} stored responses "
                f"are still on {host}",
                [f"{rid}: {error.title}. {error.detail}" for rid, error in failures],
            )
        )

    async def rename(self, conversation_id: str, title: str) -> None:
        screen = self.screen
        if screen.session is not None and screen.session.conversation.id == conversation_id:
            await screen.session.rename(title)
        else:
            await screen.workspace.rename(conversation_id, title)
        self.show_title()
        screen.refresh_history()
