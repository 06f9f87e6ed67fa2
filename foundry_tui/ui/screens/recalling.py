"""Up and Down on an empty prompt, for the chat screen: the open conversation's prompts
first, then those of the others, read from the history in a worker (recall.PromptRecall
keeps the place)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from foundry_tui.core.models import MessageRole, StorageError
from foundry_tui.core.turns import CONTINUE_PROMPT
from foundry_tui.ui.screens.recall import PromptRecall
from foundry_tui.ui.widgets.prompt import PromptInput

if TYPE_CHECKING:
    from foundry_tui.ui.screens.chat import ChatScreen

# How many prompts of other conversations Up on an empty prompt can go back through.
RECALL_ROWS = 200


class Recalling:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self.recall: PromptRecall | None = None

    def wanted(self, event: PromptInput.RecallWanted) -> None:
        recall = self.recall
        if recall is None or not event.stepping:
            recall = self.recall = PromptRecall(
                (
                    message.text
                    for message in reversed(self.screen.current_messages())
                    if message.role == MessageRole.USER
                ),
                skip=frozenset({CONTINUE_PROMPT}),
            )
            self.screen.read_older_prompts(recall)
        if not event.older:
            event.prompt.show_recalled(recall.newer())
        elif (text := recall.older()) is not None:
            event.prompt.show_recalled(text)

    async def read_older(self, recall: PromptRecall) -> None:
        session = self.screen.session
        current = session.conversation.id if session else None
        try:
            older = await self.screen.workspace.recent_prompts(current, RECALL_ROWS)
        except StorageError:
            older = []  # recalling is a convenience; the problem shows where it matters
        if recall is not self.recall:
            return
        prompt = self.screen.query_one(PromptInput)
        text = recall.add_older(older)
        if text is not None and (prompt.recalling or not prompt.text):
            prompt.show_recalled(text)
