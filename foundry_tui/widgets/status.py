"""The status line under the transcript: last reply's status, usage, and send mode."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from foundry_tui.models import MessageStatus, Usage
from foundry_tui.text import one_line


def _tokens(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


class StatusLine(Static):
    """Attributes down: the screen sets these reactives, the line redraws itself."""

    last_status: reactive[MessageStatus | None] = reactive(None)
    last_usage: reactive[Usage | None] = reactive(None)
    conversation_usage: reactive[Usage | None] = reactive(None)
    mode: reactive[str] = reactive("")
    notice: reactive[str] = reactive("")

    def validate_notice(self, notice: str) -> str:
        """A notice may quote a server (an error's title): one inert line."""
        return one_line(notice, 300)

    def render(self) -> Content:
        parts: list[str] = []
        if self.last_status is not None:
            parts.append(f"● {self.last_status.value}")
        if self.mode:
            parts.append(self.mode)
        if self.last_usage is not None:
            usage = self.last_usage
            parts.append(
                f"in {_tokens(usage.input_tokens)} / out {_tokens(usage.output_tokens)}"
                f" / total {_tokens(usage.total_tokens)}"
            )
        if self.conversation_usage is not None and self.conversation_usage.total_tokens:
            parts.append(f"conversation {_tokens(self.conversation_usage.total_tokens)} tokens")
        if self.notice:
            parts.append(self.notice)
        return Content(" · ".join(parts) if parts else "Ready")
