"""The multi-line prompt: Enter sends, Shift+Enter or Ctrl+J inserts a newline, and Up on
an empty prompt recalls earlier prompts (Down goes forward again)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea


class PromptInput(TextArea):
    """A TextArea whose Enter submits instead of breaking the line."""

    @dataclass
    class Submitted(Message):
        prompt: PromptInput
        text: str

        @property
        def control(self) -> PromptInput:
            return self.prompt

    @dataclass
    class RecallWanted(Message):
        """Up (``older``) or Down on an empty or recalled prompt: the screen, which knows
        the earlier prompts, answers with ``show_recalled``."""

        prompt: PromptInput
        older: bool
        # False when the box was empty (a fresh start), True when it shows a recalled
        # prompt, unchanged, to step from.
        stepping: bool

        @property
        def control(self) -> PromptInput:
            return self.prompt

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            compact=True,
            placeholder="Message (Enter to send, Shift+Enter or Ctrl+J for a new line)",
        )
        self._recalled: str | None = None

    @property
    def recalling(self) -> bool:
        """Whether the box shows a recalled prompt, as it was recalled."""
        return self._recalled is not None and self.text == self._recalled

    def show_recalled(self, text: str) -> None:
        """Shows a recalled prompt (or "" for an empty box), the cursor at its end."""
        self._recalled = text or None
        self.text = text
        self.move_cursor(self.document.end)

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            text = self.text
            if text.strip():
                self.post_message(self.Submitted(self, text))
            return
        if event.key in ("shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            start, end = self.selection
            self._replace_via_keyboard("\n", start, end)
            return
        if event.key in ("up", "down"):
            recalling = self.recalling
            if recalling or (not self.text and event.key == "up"):
                event.stop()
                event.prevent_default()
                self.post_message(self.RecallWanted(self, event.key == "up", recalling))
                return
        await super()._on_key(event)
