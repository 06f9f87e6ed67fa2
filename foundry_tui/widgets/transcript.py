"""The scrolling list of messages, which follows a streaming reply unless scrolled up."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static

from foundry_tui.models import Message
from foundry_tui.widgets.message import MessageView


class Transcript(VerticalScroll, can_focus=True):
    """Holds MessageViews; `anchor()` keeps the newest text in view while it streams."""

    async def show(self, messages: list[Message]) -> None:
        """Replaces what is shown with ``messages`` and scrolls to the newest."""
        await self.remove_children()
        if messages:
            await self.mount_all([MessageView(message) for message in messages])
        else:
            await self.mount(
                Static(
                    "New conversation. Type below and press Enter to send.",
                    classes="transcript-empty",
                )
            )
        self.anchor()

    async def add(self, message: Message) -> MessageView:
        for placeholder in self.query(".transcript-empty"):
            await placeholder.remove()
        view = MessageView(message)
        await self.mount(view)
        return view

    def view_for(self, message_id: str) -> MessageView | None:
        for view in self.query(MessageView):
            if view.message.id == message_id:
                return view
        return None

    def follow(self) -> None:
        """Sticks to the bottom as text arrives, until the user scrolls up."""
        self.anchor()
