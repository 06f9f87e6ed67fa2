"""The multi-line prompt: Enter sends, Shift+Enter or Ctrl+J inserts a newline, and Up on
an empty prompt recalls earlier prompts (Down goes forward again).

Whatever enters it (keys, a paste, a prompt put back after a failed send) is sanitized
(foundry_tui.core.text): the prompt draws its text as it is, so an escape sequence in it would
reach the terminal. A text longer than FOLD_CHARS entering in one piece (a big paste) is
held aside and shown as one marker line, ``[pasted 67,568 lines, 4,999,987 characters #1]``,
and sent whole: Textual's TextArea wraps and measures every line of its document, which for
megabytes takes seconds on the paste and on every later key.

A short paste made only of paths (a file dropped on the terminal: core.dropped_paths) goes
in as text and is announced with `PathsPasted`; the screen checks the files off the loop
and may then take the paths out again (`take_pasted_paths`) as chips. A long paste is
never read as paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual import events
from textual.geometry import Offset
from textual.message import Message
from textual.widgets import TextArea
from textual.widgets.text_area import Edit, EditResult

from foundry_tui.core.dropped_paths import PATHS_MAX_CHARS, PathWords, path_words
from foundry_tui.core.text import sanitize

# Above this many characters, text entering the prompt in one piece is folded (see above).
# A 100,000-character paste still inserts and types without a noticeable delay.
FOLD_CHARS = 100_000
_MARKER = re.compile(r"\[pasted [\d,]+ lines?, [\d,]+ characters #\d+\]")


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

    @dataclass
    class PathsPasted(Message):
        """A paste of nothing but paths went in between ``start`` and ``end`` as ``text``."""

        prompt: PromptInput
        words: PathWords
        start: tuple[int, int]
        end: tuple[int, int]
        text: str

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
        self._folded: dict[str, str] = {}  # marker -> the text it stands for
        self._folds = 0
        self._recalled: str | None = None
        # Files go with the next prompt (chips): Enter sends even without text.
        self.has_attachments = False

    @property
    def full_text(self) -> str:
        """The prompt as it will be sent: every fold marker replaced by its text."""
        text = self.text
        if not self._folded:
            return text
        return _MARKER.sub(lambda match: self._folded.get(match[0], match[0]), text)

    def edit(self, edit: Edit) -> EditResult:
        text = self._fold(sanitize(edit.text))
        if text != edit.text:
            edit = Edit(text, edit.from_location, edit.to_location, edit.maintain_selection_offset)
        return super().edit(edit)

    def load_text(self, text: str) -> None:
        self._folded.clear()
        super().load_text(self._fold(sanitize(text)))

    def _fold(self, text: str) -> str:
        if len(text) <= FOLD_CHARS:
            return text
        current = self.text
        # Texts whose marker has left the prompt are dropped (an undo could bring a marker
        # back without its text: it is then sent as the marker's own words).
        self._folded = {m: t for m, t in self._folded.items() if m in current}
        self._folds += 1
        lines = text.count("\n") + 1
        marker = (
            f"[pasted {lines:,} line{'s' if lines != 1 else ''}, "
            f"{len(text):,} characters #{self._folds}]"
        )
        self._folded[marker] = text
        return marker

    def scroll_cursor_visible(self, center: bool = False, animate: bool = False) -> Offset:
        # Textual 8.2.8 undoes an edit, then lays the area out (the scrollbar may go), and
        # only then moves the cursor back into the shorter text: undoing a paste of many
        # lines asked for a line that no longer exists and ended the app. The cursor is
        # scrolled into view once it is moved.
        if self.cursor_location[0] >= self.document.line_count:
            return Offset(0, 0)
        return super().scroll_cursor_visible(center, animate)

    @property
    def recalling(self) -> bool:
        """Whether the box shows a recalled prompt, as it was recalled."""
        return self._recalled is not None and self.text == self._recalled

    def show_recalled(self, text: str) -> None:
        """Shows a recalled prompt (or "" for an empty box), the cursor at its end."""
        self._recalled = text or None
        self.text = text
        self.move_cursor(self.document.end)

    def put_back(self, text: str) -> None:
        """Puts a prompt that was not sent back in front of whatever was typed since."""
        self.insert(text, (0, 0))
        self.move_cursor(self.document.end)

    async def _on_paste(self, event: events.Paste) -> None:
        # Only a short paste can be paths: a big one is not even split.
        words = path_words(sanitize(event.text)) if len(event.text) <= PATHS_MAX_CHARS else None
        if words is None or self.read_only:
            return  # TextArea's own handler, next in the MRO, inserts it
        event.prevent_default()
        start = min(self.selection)
        if result := self._replace_via_keyboard(event.text, *self.selection):
            self.move_cursor(result.end_location)
            self.focus()
            end = result.end_location
            self.post_message(
                self.PathsPasted(self, words, start, end, self.get_text_range(start, end))
            )

    def take_pasted_paths(self, pasted: PathsPasted, kept: str) -> bool:
        """Replaces the pasted paths with ``kept`` (the refused ones), if the paste is
        still there as it went in; False if it was edited meanwhile (it then stays)."""
        if (
            pasted.end[0] >= self.document.line_count
            or self.get_text_range(pasted.start, pasted.end) != pasted.text
        ):
            return False
        self.replace(kept, pasted.start, pasted.end)
        return True

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            text = self.full_text
            if text.strip() or self.has_attachments:
                # Emptied now, not when the screen takes the message: a key typed right
                # after Enter reaches this box first and would be wiped with the old text.
                self.clear()
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
