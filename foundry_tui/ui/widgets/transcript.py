"""The scrolling transcript: every message of a conversation, drawn line by line.

One widget draws all messages (Textual's line API) instead of mounting widgets per
message or per Markdown block. A streamed delta re-renders only the reply's open segment
and repaints the visible lines, with no layout of the screen; a conversation of any
length opens at once, because a message is rendered only when it comes into view (until
then its height is estimated from its text).
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_right
from itertools import accumulate

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip

from foundry_tui.core.models import Message
from foundry_tui.ui.widgets.message_block import (
    FRAME_COLUMNS,
    LineRenderer,
    MessageBlock,
    Palette,
)
from foundry_tui.ui.widgets.unwrap import Copied

# How often a streaming reply is repainted; deltas in between are shown together.
FRAMES_PER_SECOND = 8
# At most this many empty lines are kept below a streaming reply (see _follow_target).
FOLLOW_STEP = 8
EMPTY_HINT = "New conversation. Type below and press Enter to send."
# Columns before a line's text (the bar and a space): selections are counted from there.
_TEXT_INDENT = FRAME_COLUMNS - 1


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

    # -- what is shown -------------------------------------------------------------

    @property
    def blocks(self) -> list[MessageBlock]:
        """The messages shown, oldest first."""
        return list(self._blocks)

    async def show(self, messages: list[Message]) -> None:
        """Replaces what is shown with ``messages`` and scrolls to the newest."""
        for block in list(self._streams):
            self._stop(block)
        self._blocks = [MessageBlock(message) for message in messages]
        self._empty = not messages
        self._following = True
        self._relayout()

    def prepend(self, messages: list[Message]) -> None:
        """Shows ``messages`` before the others (the older part of a conversation that
        opened with its newest messages); what is on screen stays where it is."""
        if not messages:
            return
        width = self._text_width()
        blocks = [MessageBlock(message) for message in messages]
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
        block = MessageBlock(message)
        self._blocks.append(block)
        self._empty = False
        self._relayout()
        return block

    async def remove_from(self, block: MessageBlock) -> None:
        """Removes ``block`` and every block after it (a new branch takes their place)."""
        if block not in self._blocks:
            return
        index = self._blocks.index(block)
        for gone in self._blocks[index:]:
            self._stop(id(gone))
        del self._blocks[index:]
        self._empty = not self._blocks
        self._relayout()

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
        """A click on a thinking's title line folds or unfolds it."""
        offset = event.get_content_offset(self)
        if offset is None or self._empty:
            return
        line = round(self.scroll_y) + offset.y
        index = bisect_right(self._tops, line) - 1
        if not 0 <= index < len(self._blocks):
            return
        block = self._blocks[index]
        if block.thinking_title_at(line - self._tops[index]) and self.toggle_thinking(block):
            event.stop()

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
