"""The scrolling transcript: every message of a conversation, drawn line by line.

One widget draws all messages (Textual's line API) instead of mounting widgets per
message or per Markdown block. A streamed delta re-renders only the reply's open segment
and repaints the visible lines, with no layout of the screen; a conversation of any
length opens at once, because a message is rendered only when it comes into view (until
then its height is estimated from its text).

With the focus here, a cursor moves over the items: each message, and each code block of
a reply. ``c`` copies the item (a message as its Markdown, a code block as its code), a
click on a code block's copy mark copies it too; the branch keys and a click on ‹ or ›
switch between a message's siblings, ``e`` edits a prompt and ``r`` regenerates a reply.
The widget never talks to the conversation: it posts what the user asked for
(`SwitchBranch`, `EditPrompt`, `Regenerate`) and the chat screen does it.
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message as TextualMessage
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.timer import Timer

from foundry_tui.core.models import Message, MessageRole, MessageStatus, Siblings
from foundry_tui.core.text import one_line
from foundry_tui.ui.widgets.message_block import (
    FRAME_COLUMNS,
    CodeSpan,
    LineRenderer,
    MessageBlock,
    Palette,
)
from foundry_tui.ui.widgets.unwrap import Copied

# How often a streaming reply is repainted; deltas in between are shown together.
FRAMES_PER_SECOND = 8
# At most this many empty lines are kept below a streaming reply (see _follow_target).
FOLLOW_STEP = 8
# How many blocks taken off by branch switches are kept rendered, to switch back to.
PUT_ASIDE_BLOCKS = 200
# While nothing streams, the blocks within this many view heights above and below the
# view are rendered ahead, one at a time with a pause between: a scroll or a branch
# switch that brings them into view then only draws them (a long reply's Markdown takes
# 10-20 ms to render).
NEARBY_SCREENS = 1
NEARBY_PAUSE = 0.05
EMPTY_HINT = "New conversation. Type below and press Enter to send."
# Columns before a line's text (the bar and a space): selections are counted from there.
_TEXT_INDENT = FRAME_COLUMNS - 1
# The bar drawn beside the item the cursor is on.
CURSOR_BAR = "┃"


@dataclass(frozen=True)
class Item:
    """What the cursor is on: a message, or one of its code blocks (``code``)."""

    block: MessageBlock
    code: int | None = None

    @property
    def span(self) -> CodeSpan | None:
        spans = self.block.code_spans
        return spans[self.code] if self.code is not None and self.code < len(spans) else None


class _Stream:
    """Text written into one streaming reply and not yet on screen."""

    def __init__(self) -> None:
        self.queued: list[str] = []
        self.thinking: list[str] = []  # reasoning text, shown before the answer's
        self.wake = asyncio.Event()
        self.finishing = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class Transcript(ScrollView, can_focus=True):
    """All messages of the conversation shown; follows a streaming reply to the end
    until the user scrolls up, and again once they scroll back to the bottom."""

    BINDINGS = [
        Binding(
            "up,k",
            "cursor_up",
            "Up",
            id="transcript.up",
            key_display="↑",
            tooltip="Select the message or code block above",
        ),
        Binding(
            "down,j",
            "cursor_down",
            "Down",
            id="transcript.down",
            key_display="↓",
            tooltip="Select the message or code block below",
        ),
        Binding(
            "c",
            "copy_item",
            "Copy",
            id="transcript.copy",
            tooltip="Copy the selected message as its Markdown, or the selected code block's "
            "code, to the clipboard",
        ),
        Binding(
            "e",
            "edit_prompt",
            "Edit",
            id="transcript.edit",
            tooltip="Edit the selected prompt and send it as a new branch (the original stays)",
        ),
        Binding(
            "r",
            "regenerate",
            "Regenerate",
            id="transcript.regenerate",
            tooltip="Ask for another reply to the same prompt, as a new branch (this one stays)",
        ),
        Binding(
            "left,[",
            "branch(-1)",
            "Prev branch",
            id="transcript.previous_branch",
            key_display="←",
            tooltip="Show the previous sibling of the selected message and what followed it",
        ),
        Binding(
            "right,]",
            "branch(1)",
            "Next branch",
            id="transcript.next_branch",
            key_display="→",
            tooltip="Show the next sibling of the selected message and what followed it",
        ),
        Binding(
            "escape",
            "leave",
            "Prompt",
            id="transcript.leave",
            tooltip="Back to the prompt",
        ),
    ]

    class SwitchBranch(TextualMessage):
        """Show ``message``'s sibling ``step`` places away (-1 the previous, 1 the next)."""

        def __init__(self, message: Message, step: int) -> None:
            super().__init__()
            self.message = message
            self.step = step

    class EditPrompt(TextualMessage):
        """The user wants to edit ``message`` (a prompt) into a new branch."""

        def __init__(self, message: Message) -> None:
            super().__init__()
            self.message = message

    class Regenerate(TextualMessage):
        """The user wants another reply in place of ``message`` (a reply)."""

        def __init__(self, message: Message) -> None:
            super().__init__()
            self.message = message

    class BranchesInView(TextualMessage):
        """``message``, which has siblings, was selected: a switch may follow."""

        def __init__(self, message: Message) -> None:
            super().__init__()
            self.message = message

    class Leave(TextualMessage):
        """The user is done in the transcript (Escape): back to the prompt."""

    COMPONENT_CLASSES = {
        "transcript--header",
        "transcript--footer",
        "transcript--hint",
        "transcript--user",
        "transcript--assistant",
        "transcript--flagged",
        "transcript--failed",
        "transcript--thinking",
        "transcript--thinking-title",
        "transcript--cursor",
        "transcript--cursor-line",
        "transcript--copy-mark",
    }

    # Repaints a second of a streaming reply (a Compare column repaints less: three stream).
    frames_per_second: float = FRAMES_PER_SECOND

    def __init__(self, *, id: str | None = None) -> None:
        # Empty, it fits: the first frame already draws the scrollbar as background.
        super().__init__(id=id, classes="-fits")
        self._blocks: list[MessageBlock] = []
        self._tops: list[int] = [0]  # _tops[i]: first line of block i; last: total lines
        self._empty = True
        self._renderer: LineRenderer | None = None
        self._following = True
        self._adjusting = False
        self._streams: dict[int, _Stream] = {}
        self._reserve = 0  # empty lines kept below a streaming reply (see _follow_target)
        self._cursor: Item | None = None
        self._branches: Mapping[str, Siblings] = {}
        # Blocks a branch switch took off the screen, rendered, by message id: switching
        # back shows them without rendering their Markdown again (the most recent kept).
        self._put_aside: dict[str, MessageBlock] = {}
        self._nearby_timer: Timer | None = None

    # -- what is shown -------------------------------------------------------------

    @property
    def blocks(self) -> list[MessageBlock]:
        """The messages shown, oldest first."""
        return list(self._blocks)

    async def show(self, messages: list[Message]) -> None:
        """Replaces what is shown with ``messages`` and scrolls to the newest."""
        for block in list(self._streams):
            self._stop(block)
        self._blocks = [self._block_for(message) for message in messages]
        self._put_aside.clear()
        self._empty = not messages
        self._following = True
        self._cursor = None
        self._relayout()

    def replace_from(self, index: int, messages: Sequence[Message]) -> None:
        """Shows ``messages`` in place of every message from ``index`` on (another branch):
        the blocks before it stay as they are, rendered; the view stays where it is."""
        for block in self._blocks[index:]:
            self._stop(id(block))
            if block.message.status is not MessageStatus.PENDING:
                self._put_aside.pop(block.message.id, None)
                self._put_aside[block.message.id] = block
        while len(self._put_aside) > PUT_ASIDE_BLOCKS:
            del self._put_aside[next(iter(self._put_aside))]
        self._blocks[index:] = [self._block_again(message) for message in messages]
        self._empty = not self._blocks
        if self._cursor is not None and self._cursor.block not in self._blocks[:index]:
            self._cursor = Item(self._blocks[index]) if index < len(self._blocks) else None
        self._relayout(self._tops[min(index, len(self._tops) - 1)])

    def set_branches(self, branches: Mapping[str, Siblings]) -> None:
        """Which messages shown have siblings (keyed by message id): they show
        "‹ 2/3 ›" in their header."""
        self._branches = branches
        width = self._text_width()
        for block in self._blocks:
            if block.set_branch(self._branch_of(block.message)) and block.rendered_at(width):
                self._block_changed(block)

    def branches_of(self, message: Message) -> Siblings | None:
        """``message``'s siblings, when it has any."""
        return self._branches.get(message.id)

    def _branch_of(self, message: Message) -> tuple[int, int] | None:
        siblings = self._branches.get(message.id)
        if siblings is None or len(siblings.ids) < 2:
            return None
        return siblings.index + 1, len(siblings.ids)

    def render_ahead(self, messages: Sequence[Message]) -> None:
        """Renders blocks for ``messages`` (of a branch not shown) and puts them aside, so
        a switch to that branch shows them without rendering their Markdown then."""
        width = self._text_width()
        if width <= 0:
            return
        renderer = self._line_renderer()
        for message in messages:
            if message.id in self._put_aside or self.view_for(message.id) is not None:
                continue
            block = self._block_for(message)
            block.render(width, renderer)
            self._put_aside[message.id] = block
        while len(self._put_aside) > PUT_ASIDE_BLOCKS:
            del self._put_aside[next(iter(self._put_aside))]

    def put_aside(self) -> list[MessageBlock]:
        """The blocks kept rendered for messages not shown (rendered ahead, or taken off
        by a switch), oldest first."""
        return list(self._put_aside.values())

    def _block_again(self, message: Message) -> MessageBlock:
        """The block put aside for ``message`` if it still shows it as it is, else a new one."""
        block = self._put_aside.pop(message.id, None)
        if block is None or block.message != message:
            return self._block_for(message)
        block.set_branch(self._branch_of(message))
        return block

    def _block_for(self, message: Message) -> MessageBlock:
        block = MessageBlock(message)
        block.branch = self._branch_of(message)
        return block

    def prepend(self, messages: list[Message]) -> None:
        """Shows ``messages`` before the others (the older part of a conversation that
        opened with its newest messages); what is on screen stays where it is."""
        if not messages:
            return
        width = self._text_width()
        blocks = [self._block_for(message) for message in messages]
        added = sum(block.height(width) for block in blocks)
        top = round(self.scroll_y)
        self._blocks[:0] = blocks
        self._empty = False
        following = self._following
        self._relayout()
        if not following and self.is_mounted:
            self._scroll_quietly(top + added)
            self._render_visible()
            self.refresh()

    async def add(self, message: Message) -> MessageBlock:
        """Shows ``message`` after the others; returns its block, to stream into."""
        block = self._block_for(message)
        self._blocks.append(block)
        self._empty = False
        self._relayout()
        return block

    async def remove_from(self, block: MessageBlock) -> None:
        """Removes ``block`` and every block after it (a new branch takes their place)."""
        if block in self._blocks:
            self.replace_from(self._blocks.index(block), [])

    def update(self, block: MessageBlock, message: Message) -> None:
        """Shows a block's new status, model or error."""
        block.set_message(message)
        self._block_changed(block)

    @property
    def following(self) -> bool:
        """Whether the view moves with new text (until the user scrolls up)."""
        return self._following

    @property
    def newest_line_in_view(self) -> bool:
        top = round(self.scroll_y)
        return top < self._content_end() <= top + self.scrollable_content_region.height

    def view_for(self, message_id: str) -> MessageBlock | None:
        for block in self._blocks:
            if block.message.id == message_id:
                return block
        return None

    def jump_to_end(self) -> None:
        """Shows the newest message and follows from there."""
        self._following = True
        self._scroll_to_end()

    # -- streaming -----------------------------------------------------------------

    def write(self, block: MessageBlock, fragment: str) -> None:
        """Queues ``fragment`` for ``block``; never blocks the caller.

        One task per streaming block shows everything queued so far, at most
        FRAMES_PER_SECOND times a second, however fast deltas arrive.
        """
        if not fragment:
            return
        stream = self._stream_for(block)
        stream.queued.append(fragment)
        stream.wake.set()
        if stream.task is None:
            stream.task = asyncio.create_task(self._pump(block, stream))

    def write_thinking(self, block: MessageBlock, fragment: str) -> None:
        """Queues reasoning text for ``block``, shown as the answer's text is."""
        if not fragment:
            return
        stream = self._stream_for(block)
        stream.thinking.append(fragment)
        stream.wake.set()
        if stream.task is None:
            stream.task = asyncio.create_task(self._pump(block, stream))

    def start_thinking(self, block: MessageBlock) -> None:
        block.start_thinking()

    def end_thinking(self, block: MessageBlock, *, fold: bool) -> None:
        """The reasoning is over; ``fold``: the answer's first text came."""
        stream = self._streams.get(id(block))
        if stream is not None and stream.thinking:  # what is queued shows first
            block.append_thinking("".join(stream.thinking))
            stream.thinking.clear()
        if block.end_thinking(fold=fold) and block in self._blocks:
            self._block_changed(block)

    def toggle_thinking(self, block: MessageBlock) -> bool:
        """Unfolds or folds ``block``'s thinking; False if it has none."""
        if not block.toggle_thinking():
            return False
        if block in self._blocks:
            self._block_changed(block)
        return True

    def thinking_target(self) -> MessageBlock | None:
        """The message the thinking key acts on: the one a selection starts in, else the
        newest that has thinking."""
        selection = self.text_selection
        if selection is not None and selection.start is not None:
            index = bisect_right(self._tops, selection.start.y) - 1
            if 0 <= index < len(self._blocks) and self._blocks[index].has_thinking:
                return self._blocks[index]
        for block in reversed(self._blocks):
            if block.has_thinking:
                return block
        return None

    def on_click(self, event: events.Click) -> None:
        """A click on a thinking's title line folds or unfolds it; one on a copy mark
        copies its code block, one on ‹ or › switches branches; any other selects the
        message (or the code block) clicked."""
        offset = event.get_content_offset(self)
        if offset is None or self._empty:
            return
        line = round(self.scroll_y) + offset.y
        index = bisect_right(self._tops, line) - 1
        if not 0 <= index < len(self._blocks):
            return
        block = self._blocks[index]
        y = line - self._tops[index]
        if not block.rendered_at(self._text_width()) or y >= block.height(self._text_width()):
            return
        event.stop()
        column = offset.x - _TEXT_INDENT  # in the line's text
        if block.thinking_title_at(y) and self.toggle_thinking(block):
            return
        if (code := block.copy_mark_at(y, column)) is not None:
            self.select(Item(block, code))
            self.copy_item(Item(block, code))
            return
        self.select(Item(block, block.code_at(y)), scroll=False)
        if step := block.branch_step_at(y, column):
            self.post_message(self.SwitchBranch(block.message, step))

    # -- the cursor ------------------------------------------------------------------

    @property
    def cursor(self) -> Item | None:
        """The message or code block selected, if any."""
        return self._cursor

    def select(self, item: Item | None, *, scroll: bool = True) -> None:
        """Puts the cursor on ``item`` (None: nowhere) and scrolls it into view."""
        if item is not None and item.block not in self._blocks:
            item = None
        self._cursor = item
        if item is not None and scroll:
            self._scroll_into_view(item)
        if item is not None and item.block.message.id in self._branches:
            self.post_message(self.BranchesInView(item.block.message))
        self.refresh()
        self.refresh_bindings()

    def select_newest(self) -> None:
        """The cursor on the newest message."""
        self.select(Item(self._blocks[-1]) if self._blocks else None)

    def select_message(self, message_id: str) -> None:
        """The cursor on the message with ``message_id``, if it is shown."""
        block = self.view_for(message_id)
        if block is not None:
            self.select(Item(block))

    def items_of(self, block: MessageBlock) -> list[Item]:
        """The message and its code blocks (rendered to find them, if not yet)."""
        self._ensure_rendered(block)
        return [Item(block), *(Item(block, code) for code in range(len(block.code_spans)))]

    def _ensure_rendered(self, block: MessageBlock) -> None:
        width = self._text_width()
        if width > 0 and not block.rendered_at(width):
            before = block.height(width)
            if block.render(width, self._line_renderer()) != before:
                self._relayout()

    def _item_lines(self, item: Item) -> tuple[int, int]:
        """The first line of ``item`` and the line after it, in the whole transcript."""
        index = self._blocks.index(item.block)
        top = self._tops[index]
        span = item.span
        if span is None:
            return top + 1, self._tops[index + 1]  # the margin line above is not its own
        return top + span.first, top + span.end

    def _in_view(self, item: Item) -> bool:
        first, end = self._item_lines(item)
        top = round(self.scroll_y)
        return first < top + self.scrollable_content_region.height and end > top

    def _scroll_into_view(self, item: Item) -> None:
        self._ensure_rendered(item.block)
        first, end = self._item_lines(item)
        top, height = round(self.scroll_y), self.scrollable_content_region.height
        if first < top:
            target = first - 1
        elif end > top + height:
            target = min(first - 1, end - height)
        else:
            return
        self.scroll_to(y=max(0, target), animate=False, immediate=True)

    def _first_in_view(self, *, last: bool) -> Item | None:
        """The first (or last) message starting in view, else the one around the view."""
        top, height = round(self.scroll_y), self.scrollable_content_region.height
        start = max(0, bisect_right(self._tops, top) - 1)
        shown = []
        index = start
        while index < len(self._blocks) and self._tops[index] < top + height:
            shown.append(index)
            index += 1
        starting = [i for i in shown if self._tops[i] + 1 >= top] or shown
        if not starting:
            return None
        return Item(self._blocks[starting[-1] if last else starting[0]])

    def _step(self, direction: int) -> None:
        """Moves the cursor to the next item (``direction`` 1) or the previous (-1).

        An item taller than the view is read first: while the rest of it is out of view
        and the next item is too, the view moves a page and the cursor stays.
        """
        cursor = self._cursor
        if cursor is None or cursor.block not in self._blocks or not self._in_view(cursor):
            self.select(self._first_in_view(last=direction < 0))
            return
        target = self._next_item(cursor, direction)
        top, height = round(self.scroll_y), self.scrollable_content_region.height
        first, end = self._item_lines(cursor)
        if direction > 0:
            unseen = end > top + height
            reachable = target is not None and self._item_lines(target)[0] < top + height
        else:
            unseen = first < top
            reachable = target is not None and self._item_lines(target)[0] >= top
        if unseen and not reachable:
            page = max(1, height - 2)
            self.scroll_to(y=top + direction * page, animate=False, immediate=True)
        elif target is not None:
            self.select(target)

    def _next_item(self, cursor: Item, direction: int) -> Item | None:
        items = self.items_of(cursor.block)
        # A streaming reply's code blocks can change under the cursor.
        position = items.index(cursor) + direction if cursor in items else 0
        index = self._blocks.index(cursor.block)
        while not 0 <= position < len(items):
            index += direction
            if not 0 <= index < len(self._blocks):
                return None
            items = self.items_of(self._blocks[index])
            position = 0 if direction > 0 else len(items) - 1
        return items[position]

    def action_cursor_up(self) -> None:
        self._step(-1)

    def action_cursor_down(self) -> None:
        self._step(1)

    def action_copy_item(self) -> None:
        if self._cursor is not None:
            self.copy_item(self._cursor)

    def action_edit_prompt(self) -> None:
        if self._cursor is not None:
            self.post_message(self.EditPrompt(self._cursor.block.message))

    def action_regenerate(self) -> None:
        if self._cursor is not None:
            self.post_message(self.Regenerate(self._cursor.block.message))

    def action_branch(self, step: int) -> None:
        if self._cursor is not None:
            self.post_message(self.SwitchBranch(self._cursor.block.message, step))

    def action_leave(self) -> None:
        self.post_message(self.Leave())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        cursor = self._cursor
        message = cursor.block.message if cursor is not None else None
        if action == "copy_item":
            return cursor is not None
        if action == "edit_prompt":
            return message is not None and message.role == MessageRole.USER
        if action == "regenerate":
            return (
                message is not None
                and message.role == MessageRole.ASSISTANT
                and id(cursor.block if cursor else None) not in self._streams
            )
        if action == "branch":
            return message is not None and cursor is not None and cursor.block.branch is not None
        if action == "leave":
            # While a reply streams, Escape is the screen's: it cancels the reply.
            return not self._streams
        return True

    # -- copying ---------------------------------------------------------------------

    def copy_item(self, item: Item) -> None:
        """Copies a message as its Markdown, or a code block's code, to the clipboard
        (OSC 52), and says what was copied."""
        span = item.span
        if span is not None:
            text = span.code
            lines = text.count("\n") + 1
            language = one_line(span.language, 40)
            what = f"the {language} code block" if language else "the code block"
            size = f"{lines:,} line{'s' if lines != 1 else ''}"
        else:
            block = item.block
            text = block.source if not block.cut else block.message.text
            what = "the prompt" if block.message.role == MessageRole.USER else "the reply"
            size = f"{len(text):,} character{'s' if len(text) != 1 else ''}"
        from foundry_tui.ui.screens.export import COPY_LIMIT  # once something is copied

        if len(text) > COPY_LIMIT:
            self.notify(
                f"It is {len(text):,} characters, more than a terminal passes to the clipboard.",
                title="Too long to copy",
                severity="warning",
                timeout=15,
                markup=False,
            )
            return
        self.app.copy_to_clipboard(text)
        # The language came with the reply: plain text here, never markup.
        self.notify(f"Copied {what} ({size}).", markup=False)

    def _stream_for(self, block: MessageBlock) -> _Stream:
        stream = self._streams.get(id(block))
        if stream is None:
            stream = self._streams[id(block)] = _Stream()
            self._reserve = max(1, min(FOLLOW_STEP, self.scrollable_content_region.height // 4))
        return stream

    async def finish(self, block: MessageBlock) -> None:
        """Waits until everything written to ``block`` is on screen."""
        stream = self._streams.pop(id(block), None)
        if stream is None or stream.task is None:
            return
        stream.queued.append("")  # the pump stops once it has shown this
        stream.wake.set()
        stream.finishing.set()  # the end of a reply is shown at once, not at the next frame
        try:
            await stream.task
        finally:
            self._stream_ended()

    def _stream_ended(self) -> None:
        if not self._streams and self._reserve:
            self._reserve = 0
            if self.is_mounted:
                self._relayout()

    def stop(self, block: MessageBlock) -> None:
        """Stops streaming into ``block`` at once (cancel): text still queued is dropped
        from the screen only; the session has saved all of it."""
        self._stop(id(block))

    def _stop(self, key: int) -> None:
        stream = self._streams.pop(key, None)
        if stream is not None and stream.task is not None:
            stream.task.cancel()
        self._stream_ended()

    async def _pump(self, block: MessageBlock, stream: _Stream) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await stream.wake.wait()
            stream.wake.clear()
            pending, stream.queued = stream.queued, []
            started = loop.time()
            text = "".join(pending)
            if stream.thinking:
                thought, stream.thinking = stream.thinking, []
                if block in self._blocks:
                    block.append_thinking("".join(thought))
                    if not text:
                        self._block_changed(block)
            if text and block in self._blocks:
                block.append(text)
                self._block_changed(block)
            if pending and pending[-1] == "" and not stream.queued:
                return
            # The first text shows at once; after that at most FRAMES_PER_SECOND repaints.
            pause = 1 / self.frames_per_second - (loop.time() - started)
            if pause > 0 and not stream.finishing.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stream.finishing.wait(), pause)

    # -- layout --------------------------------------------------------------------

    def _text_width(self) -> int:
        return self.scrollable_content_region.width

    def _block_changed(self, block: MessageBlock) -> None:
        width = self._text_width()
        if width <= 0 or not self.is_mounted:
            self._relayout()
            return
        index = self._blocks.index(block) if block in self._blocks else -1
        if index < 0:
            return
        before = self._tops[index + 1] - self._tops[index]
        after = block.render(width, self._line_renderer())
        changed_from = self._tops[index] + block.changed_from
        if after != before:
            self._relayout(changed_from)
        else:
            # Same height: repaint only the lines that changed (usually the last one).
            self._repaint_from(changed_from, self._tops[index] + after)

    def _repaint_from(self, line: int, end: int | None = None) -> None:
        top = round(self.scroll_y)
        height = self.scrollable_content_region.height
        first, last = max(line, top), min(top + height, end if end is not None else top + height)
        if last > first:
            self.refresh(Region(0, first - top, self.size.width, last - first))

    def _relayout(self, changed_from: int | None = None) -> None:
        """Recomputes where each block starts and the scrollable height, then repaints:
        from ``changed_from`` on when the view did not move, else everything in view."""
        self._measure(self._text_width())
        scrolled = False
        if self._following and self.is_mounted:
            scrolled = self._scroll_quietly(self._follow_target())
        scrolled = self._render_visible() or scrolled
        if changed_from is None or scrolled:
            self.refresh()
        else:
            self._repaint_from(changed_from)
        self._render_nearby_soon()

    def _measure(self, width: int) -> None:
        """Where each block starts at ``width`` (exact or estimated), and the scrollable
        height with the empty lines kept below a streaming reply."""
        heights = () if self._empty else (block.height(width) for block in self._blocks)
        self._tops = [0, *accumulate(heights)]
        end = self._content_end()
        if self._reserve:
            # While a reply streams, the scrollable height grows ``_reserve`` lines at a
            # time rather than line by line: each change redraws the scrollbar, the whole
            # height of the view, which cost a low-rate stream as much as its new text.
            end = -(-end // self._reserve) * self._reserve
        self._set_virtual_size(Size(width, end + self._reserve))

    def _content_end(self) -> int:
        return 2 if self._empty else self._tops[-1]

    def _follow_target(self) -> int:
        """Where the view goes to follow the newest text.

        While a reply streams, the view keeps ``_reserve`` empty lines below the text and
        moves only when the text reaches the bottom: every move repaints the whole view,
        and moving a few lines at a time instead of one costs a fraction of the CPU.
        """
        height = self.scrollable_content_region.height
        end = self._content_end()
        current = round(self.scroll_y)
        if self._reserve and current <= end - height + self._reserve and end <= current + height:
            return current
        return max(0, end - height + self._reserve)

    def _set_virtual_size(self, size: Size) -> None:
        if self.virtual_size == size:
            return
        # Assigning virtual_size asks for a layout of the whole screen (tens of ms with the
        # sidebar open), on every delta that adds a line. Only this widget's scrollable
        # height changed, so set it quietly and update the scrollbars, as Textual itself
        # does when a layout hands a ScrollView its size.
        self.set_reactive(Transcript.virtual_size, size)
        self._scroll_update(size)
        self.set_class(size.height <= self.scrollable_content_region.height, "-fits")

    def _scroll_to_end(self) -> None:
        if self.is_mounted:
            self._scroll_quietly(self._follow_target())
            self._render_visible()
            self.refresh()
            self._render_nearby_soon()

    def _scroll_quietly(self, y: int) -> bool:
        """Moves the view without counting it as the user's scroll; True if it moved."""
        before = round(self.scroll_y)
        self._adjusting = True
        try:
            self.scroll_to(y=y, animate=False, immediate=True, force=True)
        finally:
            self._adjusting = False
        return round(self.scroll_y) != before

    def _render_visible(self) -> bool:
        """Renders every block in view, keeping the first line in view where it is;
        True if the view moved.

        A block enters the view with an estimated height; once rendered, the blocks after
        it move. When the first block in view starts above the view, the view moves with
        it, so what the user reads does not jump.
        """
        width, height = self._text_width(), self.scrollable_content_region.height
        if width <= 0 or height <= 0 or not self._blocks:
            return False
        renderer = self._line_renderer()
        moved = False
        for _attempt in range(100):
            top = round(self.scroll_y)
            first = max(0, bisect_right(self._tops, top) - 1)
            shift = 0
            changed = False
            index = first
            while index < len(self._blocks) and self._tops[index] < top + height:
                block = self._blocks[index]
                if not block.rendered_at(width):
                    estimate = block.height(width)
                    exact = block.render(width, renderer)
                    if exact != estimate:
                        changed = True
                        if index == first and self._tops[index] < top:
                            shift += exact - estimate
                index += 1
            if not changed:
                return moved
            self._measure(width)
            self.refresh()
            if self._following:
                moved = self._scroll_quietly(self._follow_target()) or moved
            elif shift:
                moved = self._scroll_quietly(top + shift) or moved
        return moved

    def _render_nearby_soon(self) -> None:
        if self._nearby_timer is None and not self._streams and self.is_mounted:
            self._nearby_timer = self.set_timer(NEARBY_PAUSE, self._render_nearby)

    def _render_nearby(self) -> None:
        """Renders the block nearest the view that is not rendered yet (see
        NEARBY_SCREENS), keeping what is in view where it is, then waits for the next."""
        self._nearby_timer = None
        width, height = self._text_width(), self.scrollable_content_region.height
        if self._streams or width <= 0 or height <= 0 or self._empty:
            return
        top = round(self.scroll_y)
        index = self._nearest_unrendered(width, top, height)
        if index is None:
            return
        block = self._blocks[index]
        estimate = block.height(width)
        exact = block.render(width, self._line_renderer())
        if exact != estimate:
            above, following = self._tops[index] < top, self._following
            # A shorter block can pull the end above the view: the scroll Textual then
            # clamps is not the user's, and must not decide whether the view follows.
            self._adjusting = True
            try:
                self._measure(width)
            finally:
                self._adjusting = False
            if following:
                self._scroll_quietly(self._follow_target())
            elif above:
                self._scroll_quietly(top + exact - estimate)
        self._render_nearby_soon()

    def _nearest_unrendered(self, width: int, top: int, height: int) -> int | None:
        """The index of the block nearest the view, within NEARBY_SCREENS view heights
        of it, not rendered at ``width``; None when all of them are."""
        reach = NEARBY_SCREENS * height
        above = bisect_right(self._tops, top) - 2  # the block before the first in view
        below = bisect_right(self._tops, top + height - 1)  # the block after the last
        count = len(self._blocks)
        while True:
            below_near = below < count and self._tops[below] < top + height + reach
            above_near = above >= 0 and self._tops[above + 1] > top - reach
            if not (below_near or above_near):
                return None
            if below_near:
                if not self._blocks[below].rendered_at(width):
                    return below
                below += 1
            if above_near:
                if not self._blocks[above].rendered_at(width):
                    return above
                above -= 1

    def _line_renderer(self) -> LineRenderer:
        if self._renderer is None:
            self._renderer = LineRenderer(self.app.console, self._palette())
        return self._renderer

    def _palette(self) -> Palette:
        def style(name: str) -> Style:
            return self.get_component_rich_style(name)

        return Palette(
            base=self.rich_style,
            header=style("transcript--header"),
            footer=style("transcript--footer"),
            hint=style("transcript--hint"),
            user_bar=style("transcript--user"),
            assistant_bar=style("transcript--assistant"),
            flagged_bar=style("transcript--flagged"),
            failed_bar=style("transcript--failed"),
            code_theme="monokai" if self.app.current_theme.dark else "default",
            thinking=style("transcript--thinking"),
            thinking_title=style("transcript--thinking-title"),
            # Drawn over the code's own background: only what the class sets.
            copy_mark=self.get_component_rich_style("transcript--copy-mark", partial=True),
        )

    def notify_style_update(self) -> None:
        # Colours are baked into rendered lines: a theme change renders them again (a
        # change that leaves the text's colours alone, such as the scrollbar's, does not).
        super().notify_style_update()
        if self._renderer is None or self._palette() == self._renderer.palette:
            return
        self._renderer = None
        for block in self._blocks:
            block.forget_rendering()
        if self.is_mounted:
            self._relayout()

    # Keys move the view at once: an animated scroll through a long conversation would
    # render every message it passes on the way.
    def action_scroll_home(self) -> None:
        self.scroll_to(y=0, animate=False)

    def action_scroll_end(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False)

    def action_page_up(self) -> None:
        self.scroll_to(y=self.scroll_y - self.scrollable_content_region.height, animate=False)

    def action_page_down(self) -> None:
        self.scroll_to(y=self.scroll_y + self.scrollable_content_region.height, animate=False)

    def action_scroll_up(self) -> None:
        self.scroll_to(y=self.scroll_y - 1, animate=False)

    def action_scroll_down(self) -> None:
        self.scroll_to(y=self.scroll_y + 1, animate=False)

    def on_resize(self) -> None:
        self._relayout()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._adjusting:
            return
        # The user moved the view: follow the stream again only from the bottom.
        self._following = round(new_value) >= self.max_scroll_y
        self._render_visible()
        self._render_nearby_soon()

    # -- drawing -------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self._text_width()
        renderer = self._line_renderer()
        palette = renderer.palette
        line = round(self.scroll_y) + y
        if self._empty:
            if line != 1:
                return Strip.blank(width, palette.base)
            hint = Text(EMPTY_HINT, no_wrap=True, overflow="ellipsis")
            return renderer.lines(hint, width, palette.hint)[0]
        index = bisect_right(self._tops, line) - 1
        if not 0 <= index < len(self._blocks):
            return Strip.blank(width, palette.base)
        block = self._blocks[index]
        if not block.rendered_at(width):
            block.render(width, renderer)
            self.call_later(self._relayout)
        y_in_block = line - self._tops[index]
        if y_in_block >= block.height(width):
            return Strip.blank(width, palette.base)
        strip = block.framed_line(y_in_block, palette)
        cursor = self._cursor
        if cursor is not None and cursor.block is block and y_in_block > 0:
            strip = self._cursor_line(strip, cursor, y_in_block, width)
        strip = strip.apply_offsets(0, line)
        selection = self.text_selection
        if selection is not None and (span := selection.get_span(line)) is not None:
            start, end = span
            end = width if end == -1 else end
            if start < end:
                highlight = self.screen.get_component_rich_style("screen--selection")
                chosen = strip.crop(start, end)
                # On top of the text's own colours (apply_style would go under them).
                marked = Strip(
                    [Segment(text, (style or Style()) + highlight) for text, style, _ in chosen],
                    chosen.cell_length,
                )
                strip = Strip.join([strip.crop(0, start), marked, strip.crop(end, width)])
        return strip

    def _cursor_line(self, strip: Strip, cursor: Item, y: int, width: int) -> Strip:
        """A line of the item under the cursor: a bold bar; a message's header line and a
        code block's first line marked across."""
        span = cursor.span
        if cursor.code is not None and (span is None or not span.first <= y < span.end):
            return strip
        bar = self.get_component_rich_style("transcript--cursor")
        strip = Strip.join([Strip([Segment(CURSOR_BAR, bar)], 1), strip.crop(1, width)])
        if y == (1 if span is None else span.first):
            highlight = self.get_component_rich_style("transcript--cursor-line", partial=True)
            strip = Strip(
                [Segment(text, (style or Style()) + highlight) for text, style, _ in strip],
                strip.cell_length,
            )
        return strip

    # -- selection -----------------------------------------------------------------

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        if selection.start is None and selection.end is None:
            return "\n\n".join(block.source for block in self._blocks), "\n"
        first = selection.start.y if selection.start is not None else 0
        last = selection.end.y if selection.end is not None else self._tops[-1] - 1
        width = self._text_width()
        renderer = self._line_renderer()
        copied = Copied()
        # Each block's selected lines, in columns of its text (the frame left out).
        spans: list[tuple[int, int, int | None]] = []
        block: MessageBlock | None = None
        for y in range(first, last + 1):
            index = bisect_right(self._tops, y) - 1
            if not 0 <= index < len(self._blocks) or (span := selection.get_span(y)) is None:
                continue
            if self._blocks[index] is not block:
                if block is not None:
                    block.copy_into(copied, spans, renderer)
                block, spans = self._blocks[index], []
                if not block.rendered_at(width):
                    block.render(width, renderer)
            start, end = span
            spans.append(
                (
                    y - self._tops[index],
                    max(0, start - _TEXT_INDENT),
                    None if end == -1 else max(0, end - _TEXT_INDENT),
                )
            )
        if block is not None:
            block.copy_into(copied, spans, renderer)
        return copied.text(), "\n"
