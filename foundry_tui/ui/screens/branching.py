"""The chat screen's branches: switching between a message's siblings, editing a prompt
into a new branch, regenerating a reply, and the palette's commands for these and for
copying.

The transcript posts what the user asked for (`Transcript.SwitchBranch`, `EditPrompt`,
`Regenerate`); this module asks the core (`Turns.switch_to`, `siblings`, `edit` and
`regenerate`) and shows the result. A new branch's turn runs in the
screen's "turn" worker, as any send does; a switch redraws only what follows the point
where the two branches part.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.widgets import Static

from foundry_tui.core.branches import shared_prefix
from foundry_tui.core.models import Message, MessageRole, MessageStatus, StorageError
from foundry_tui.ui.screens.model_choice import settings_for_send
from foundry_tui.ui.screens.turn_flow import TurnMessage, TurnUpdate, post_turn
from foundry_tui.ui.screens.turn_view import show_mode
from foundry_tui.ui.widgets.prompt import PromptInput
from foundry_tui.ui.widgets.status import StatusLine
from foundry_tui.ui.widgets.transcript import Item, Transcript

if TYPE_CHECKING:
    from foundry_tui.core.session import ChatSession, TurnEvent
    from foundry_tui.core.turns import Turns
    from foundry_tui.ui.screens.chat import ChatScreen

STILL_STREAMING = "A reply is still streaming: press Escape to stop it first."
EDITING_NOTE = (
    "Editing prompt {number}: Enter sends it as a new branch (the original stays) · Escape cancels"
)


class Branching:
    """What the chat screen does with branches; ``editing`` is the prompt being edited."""

    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self.editing: Message | None = None
        # The conversation the prompt being edited is in.
        self.session: ChatSession | None = None
        self._held = ""  # what the prompt box held before the edit began

    @property
    def transcript(self) -> Transcript:
        return self.screen.query_one(Transcript)

    # -- siblings ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reads which messages shown have siblings, off the UI loop, and shows them."""
        turns = self.screen.turns
        if turns is None:
            self.transcript.set_branches({})
            return

        async def read() -> None:
            branches = await turns.siblings()
            if self.screen.turns is turns:
                self.transcript.set_branches(branches)

        self.screen.run_worker(read(), group="branches", exclusive=True, exit_on_error=False)

    def turn_message(self, message: TurnMessage) -> None:
        """A turn that starts a new branch (a regenerated reply, an edited prompt): its
        first message is selected, and the siblings read again. A plain send adds the only
        child of the head: nothing to read."""
        from foundry_tui.core.session import TurnStarted  # the turn already imported it

        if not isinstance(message, TurnUpdate) or not isinstance(message.event, TurnStarted):
            return
        event = message.event
        if event.replaces is not None:
            new = event.user if event.replaces.role == MessageRole.USER else event.reply
            self.transcript.select_message(new.id)
            self.refresh()

    def render_ahead(self, message: Message) -> None:
        """``message``'s other branches are read and rendered while the user looks at it,
        so a switch to one of them only has to draw it (its Markdown rendered already)."""
        turns = self.screen.turns
        siblings = self.transcript.branches_of(message)
        if turns is None or siblings is None:
            return

        async def read() -> None:
            for sibling in siblings.ids:
                if sibling == message.id:
                    continue
                preview = await turns.session.branch_preview(sibling, turns.path)
                if self.screen.turns is not turns:
                    return
                self.transcript.render_ahead(preview)

        self.screen.run_worker(read(), group="branch-ahead", exclusive=True, exit_on_error=False)

    def switch(self, message: Message, step: int) -> None:
        """Shows the sibling ``step`` places from ``message`` and the branch under it."""
        siblings = self.transcript.branches_of(message)
        if siblings is None:
            return
        if self.screen.streaming:
            self.screen.notify(STILL_STREAMING)
            return
        position = siblings.index + step
        if not 0 <= position < len(siblings.ids):
            self.screen.app.bell()  # the first or the last already
            return
        self.screen.run_worker(
            self._switch_to(siblings.ids[position]),
            group="branch-switch",
            exclusive=True,
            exit_on_error=False,
        )

    async def _switch_to(self, message_id: str) -> None:
        screen = self.screen
        turns = screen.turns
        if turns is None:
            return
        try:
            path = await turns.switch_to(message_id)
            branches = await turns.siblings()
        except (LookupError, StorageError) as error:
            screen.notify(str(error), title="Could not switch", severity="error", timeout=12)
            return
        if screen.turns is not turns:
            return
        transcript = self.transcript
        shown = transcript.blocks
        common = shared_prefix([block.message.id for block in shown], [m.id for m in path])
        # What comes before the point the branches part stays on screen as it is.
        transcript.replace_from(common, path[common:])
        transcript.set_branches(branches)
        transcript.select_message(message_id)
        screen.refresh_bindings()
        self._show_last_reply(path)

    def _show_last_reply(self, path: list[Message]) -> None:
        """The status line speaks of the branch shown."""
        screen = self.screen
        status = screen.query_one(StatusLine)
        reply = next((m for m in reversed(path) if m.role == MessageRole.ASSISTANT), None)
        status.last_status = reply.status if reply else None
        status.last_usage = reply.usage if reply else None
        status.show_timing(reply)
        if screen.turns is not None:
            show_mode(status, screen.turns.next_mode)

    # -- editing a prompt ------------------------------------------------------------------

    def start_edit(self, message: Message) -> None:
        """Puts ``message``'s text in the prompt box, to send as a new branch."""
        if message.role != MessageRole.USER:
            return
        screen = self.screen
        if screen.streaming:
            screen.notify(STILL_STREAMING)
            return
        prompt = screen.query_one(PromptInput)
        if self.editing is None:
            self._held = prompt.full_text
        self.editing = message
        self.session = screen.session
        prompt.load_text(message.text)
        prompt.move_cursor(prompt.document.end)
        prompt.focus()
        prompts = [
            block.message.id
            for block in self.transcript.blocks
            if block.message.role == MessageRole.USER
        ]
        number = prompts.index(message.id) + 1 if message.id in prompts else len(prompts)
        note = EDITING_NOTE.format(number=number)
        notes = screen.query("#editing-note")
        if notes:
            notes.first(Static).update(note)
        else:
            screen.query_one("#chat-main").mount(
                Static(note, id="editing-note", markup=False), before=prompt
            )
        screen.refresh_bindings()

    def cancel_edit(self) -> None:
        """Back to what the prompt box held before the edit."""
        if self.editing is None:
            return
        prompt = self.screen.query_one(PromptInput)
        prompt.load_text(self._held)
        prompt.move_cursor(prompt.document.end)
        self._end_edit()

    def _end_edit(self) -> None:
        self.editing = None
        self.session = None
        self._held = ""
        self.screen.query("#editing-note").remove()
        self.screen.refresh_bindings()

    def send_edit(self, text: str) -> bool:
        """Sends ``text`` as the edited prompt (a new branch); False when no edit is on."""
        message = self.editing
        turns = self.screen.turns
        if message is None:
            return False
        if turns is None:
            self._end_edit()
            return False
        settings = settings_for_send(self.screen)
        if settings is None:
            self.screen.query_one(PromptInput).put_back(text)
            return True
        files = self.screen.attaching.files
        self.screen.attaching.in_flight = files
        self._end_edit()
        self._run(turns, turns.edit(message, text, settings, files), prompt=text)
        return True

    # -- regenerating a reply --------------------------------------------------------------

    def regenerate(self, reply: Message) -> None:
        """Asks for another reply to ``reply``'s prompt; the old one stays a sibling."""
        screen = self.screen
        turns = screen.turns
        if reply.role != MessageRole.ASSISTANT or turns is None:
            return
        if screen.streaming:
            screen.notify(STILL_STREAMING)
            return
        if (settings := settings_for_send(screen)) is not None:
            self._run(turns, turns.regenerate(reply, settings))

    def can_regenerate_last(self) -> bool:
        """The newest reply is complete (a failed one is Ctrl+R's retry)."""
        turns = self.screen.turns
        reply = turns.last_reply if turns is not None else None
        return reply is not None and reply.status == MessageStatus.COMPLETED

    def _run(
        self, turns: Turns, events: AsyncGenerator[TurnEvent, None], *, prompt: str | None = None
    ) -> None:
        self.screen.run_worker(
            post_turn(self.screen, turns, events, prompt=prompt),
            group="turn",
            exclusive=True,
            exit_on_error=False,
        )

    # -- the palette -----------------------------------------------------------------------

    def commands(self) -> Iterator[SystemCommand]:
        """Copy, edit, regenerate and switch: for the selected message, else the newest."""
        transcript = self.transcript
        blocks = transcript.blocks
        if not blocks:
            return
        cursor = transcript.cursor
        chosen = cursor.block if cursor is not None else None
        replies = [block for block in blocks if block.message.role == MessageRole.ASSISTANT]
        prompts = [block for block in blocks if block.message.role == MessageRole.USER]
        target = chosen or (replies[-1] if replies else None)
        if target is not None:
            copied = Item(target)
            is_reply = target.message.role == MessageRole.ASSISTANT
            yield SystemCommand(
                "Copy reply" if is_reply else "Copy prompt",
                "Copy the selected message (else the newest reply) as its Markdown",
                lambda: transcript.copy_item(copied),
            )
        code = cursor if cursor is not None and cursor.span is not None else None
        if code is None and target is not None:
            code = next((item for item in reversed(transcript.items_of(target)) if item.span), None)
        if code is not None:
            code_item = code
            yield SystemCommand(
                "Copy code block",
                "Copy the selected code block (else the reply's last one): its code only",
                lambda: transcript.copy_item(code_item),
            )
        if self.screen.streaming or self.screen.turns is None:
            return
        prompt = chosen if chosen is not None else (prompts[-1] if prompts else None)
        if prompt is not None and prompt.message.role == MessageRole.USER:
            edited = prompt.message
            yield SystemCommand(
                "Edit prompt",
                "Edit the selected prompt (else the newest) and send it as a new branch",
                lambda: self.start_edit(edited),
            )
        if target is not None and target.message.role == MessageRole.ASSISTANT:
            again = target.message
            yield SystemCommand(
                "Regenerate reply",
                "Another reply to the same prompt as a new branch (this one stays)",
                lambda: self.regenerate(again),
            )
        if chosen is not None and chosen.branch is not None:
            which = chosen.message
            yield SystemCommand(
                "Previous branch",
                "Show the selected message's previous sibling and what followed it",
                lambda: self.switch(which, -1),
            )
            yield SystemCommand(
                "Next branch",
                "Show the selected message's next sibling and what followed it",
                lambda: self.switch(which, 1),
            )
