"""One message of the transcript: a header (who, which model, status) and its text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from foundry_tui.models import Message, MessageRole, MessageStatus
from foundry_tui.text import sanitize

if TYPE_CHECKING:
    from foundry_tui.widgets.reply import ReplyBody

_STATUS_NOTES = {
    MessageStatus.CANCELLED: "cancelled",
    MessageStatus.FAILED: "failed",
    MessageStatus.INCOMPLETE: "incomplete",
    MessageStatus.INTERRUPTED: "interrupted (the app closed mid-reply)",
}


class MessageView(Vertical):
    """Shows one saved or streaming message. User text is plain; replies are Markdown."""

    def __init__(self, message: Message) -> None:
        super().__init__(classes=f"message {message.role.value}")
        self.message = message
        self._body: ReplyBody | Static | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._header_content(), classes="message-header")
        if self.message.role == MessageRole.USER:
            self._body = Static(Content(sanitize(self.message.text)), classes="message-body")
        else:
            # Imported on first use (and warmed up after the first frame): Markdown
            # rendering pulls in markdown-it and Pygments, which start-up does not need.
            from foundry_tui.widgets.reply import ReplyBody

            self._body = ReplyBody(
                self.message.text, streaming=self.message.status == MessageStatus.PENDING
            )
        yield self._body
        yield Static(self._footer_content(), classes="message-footer")

    @property
    def body(self) -> ReplyBody:
        from foundry_tui.widgets.reply import ReplyBody

        assert isinstance(self._body, ReplyBody), "only replies have a Markdown body"
        return self._body

    def update_message(self, message: Message) -> None:
        """Refreshes header and footer after the reply's status changed."""
        self.message = message
        self.query_one(".message-header", Static).update(self._header_content())
        footer = self.query_one(".message-footer", Static)
        footer.update(self._footer_content())
        self.set_class(message.status != MessageStatus.COMPLETED, "-flagged")
        self.set_class(message.status == MessageStatus.FAILED, "-failed")

    def on_mount(self) -> None:
        self.update_message(self.message)

    def _header_content(self) -> Content:
        message = self.message
        if message.role == MessageRole.USER:
            return Content.styled("You", "bold")
        name = message.model or "assistant"
        if message.response_model and message.response_model != message.model:
            name = f"{name} ({message.response_model})"
        parts = [Content.styled(sanitize(name), "bold")]
        if message.status == MessageStatus.PENDING:
            parts.append(Content.styled("  streaming…", "italic"))
        return Content("").join(parts)

    def _footer_content(self) -> Content:
        message = self.message
        note = _STATUS_NOTES.get(message.status)
        if note is None:
            return Content("")
        detail = f": {sanitize(message.error)}" if message.error else ""
        return Content(f"⚠ {note}{detail}")
