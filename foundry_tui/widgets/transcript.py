"""The scrolling list of messages, which follows a streaming reply unless scrolled up."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static

from foundry_tui.models import Message
from foundry_tui.widgets.message import MessageView

# A long conversation opens with its newest messages; older ones are mounted a chunk at a
# time as the user scrolls up, so opening costs the same at 10 turns or 10,000.
SHOWN_AT_OPEN = 30
EARLIER_CHUNK = 6


class Transcript(VerticalScroll, can_focus=True):
    """Holds MessageViews; `anchor()` keeps the newest text in view while it streams.

    Textual bottom-aligns an anchored container, so a short transcript is anchored only
    once it overflows: it then reads from the top like a document.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._earlier: list[Message] = []
        self._loading_earlier = False

    def on_mount(self) -> None:
        self.watch(self, "scroll_y", self._scrolled, init=False)

    async def show(self, messages: list[Message]) -> None:
        """Replaces what is shown with ``messages`` and scrolls to the newest."""
        await self.remove_children()
        self._earlier = messages[:-SHOWN_AT_OPEN] if len(messages) > SHOWN_AT_OPEN else []
        recent = messages[len(self._earlier) :]
        if recent:
            if self._earlier:
                await self.mount(Static(self._earlier_text(), classes="transcript-earlier"))
            await self.mount_all([MessageView(message) for message in recent])
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

    @property
    def unloaded(self) -> int:
        """How many older messages are not mounted yet."""
        return len(self._earlier)

    def _earlier_text(self) -> str:
        count = len(self._earlier)
        return f"↑ {count} earlier message{'s' if count != 1 else ''}: scroll up to see them"

    def _scrolled(self, scroll_y: float) -> None:
        if scroll_y < 3 and self._earlier and not self._loading_earlier:
            self._loading_earlier = True
            self.call_later(self.load_earlier)

    async def load_earlier(self) -> None:
        """Mounts the previous chunk above what is shown, keeping the view where it was."""
        try:
            chunk = self._earlier[-EARLIER_CHUNK:]
            if not chunk:
                return
            marker = self.query_one(".transcript-earlier", Static)
            height_before = self.virtual_size.height
            await self.mount_all([MessageView(m) for m in chunk], after=marker)
            self._earlier = self._earlier[: -len(chunk)]
            if self._earlier:
                marker.update(self._earlier_text())
            else:
                await marker.remove()
            self.call_after_refresh(self._keep_position, height_before, self.scroll_y)
        finally:
            self._loading_earlier = False

    def _keep_position(self, height_before: int, scroll_y: float) -> None:
        grown = self.virtual_size.height - height_before
        self.scroll_to(y=scroll_y + grown, animate=False, immediate=True)

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
