"""The scrolling list of messages, which follows a streaming reply unless scrolled up."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static

from foundry_tui.models import Message
from foundry_tui.widgets.message import MessageView


class Transcript(VerticalScroll, can_focus=True):
    """Holds MessageViews; `anchor()` keeps the newest text in view while it streams.

    Textual bottom-aligns an anchored container, so a short transcript is anchored only
    once it overflows: it then reads from the top like a document.
    """

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
        self.jump_to_end()

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

    def jump_to_end(self) -> None:
        """Shows the newest message (after the next layout) and follows from there."""
        self.call_after_refresh(self._jump_to_end)

    def _jump_to_end(self) -> None:
        if self.max_scroll_y > 0:
            self.anchor()  # also takes back an anchor the user released by scrolling up

    def follow(self) -> None:
        """Called as text arrives: starts following once the transcript overflows.

        Once anchored, Textual itself keeps the view at the bottom until the user scrolls
        up, and picks it up again when they scroll back down.
        """
        if not self.is_anchored and self.max_scroll_y > 0:
            self.anchor()
