"""Up and Down on an empty prompt: stepping through the prompts sent before.

The chat screen makes one `PromptRecall` when Up is pressed on an empty prompt, with the
open conversation's prompts (newest first); the other conversations' prompts, read from
the history in a worker, are added behind them when they come.
"""

from __future__ import annotations

from collections.abc import Iterable


class PromptRecall:
    """Where the prompt box is in the earlier prompts; each text is there once."""

    def __init__(self, prompts: Iterable[str], *, skip: frozenset[str] = frozenset()) -> None:
        self._skip = skip  # sent by the app, not typed (Ctrl+G's "Continue…")
        self._entries: list[str] = []
        self._seen: set[str] = set()
        self._index = -1  # -1: the empty box
        self._waiting = False  # Up went past the end before the older ones were read
        self.older_read = False
        self._add(prompts)

    def _add(self, prompts: Iterable[str]) -> None:
        for text in prompts:
            if text.strip() and text not in self._skip and text not in self._seen:
                self._seen.add(text)
                self._entries.append(text)

    def older(self) -> str | None:
        """The prompt before the one shown; None when there is none (yet)."""
        if self._index + 1 < len(self._entries):
            self._index += 1
            return self._entries[self._index]
        self._waiting = not self.older_read
        return None

    def newer(self) -> str:
        """The prompt after the one shown; "" (the empty box) past the newest."""
        self._waiting = False
        self._index = max(-1, self._index - 1)
        return self._entries[self._index] if self._index >= 0 else ""

    def add_older(self, prompts: Iterable[str]) -> str | None:
        """Adds the other conversations' prompts; returns the one to show if Up was pressed
        past the end while they were being read."""
        self._add(prompts)
        self.older_read = True
        if not self._waiting:
            return None
        self._waiting = False
        return self.older()
