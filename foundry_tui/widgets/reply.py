"""A reply's rendered Markdown, kept as segments so streaming stays cheap at any length."""

from __future__ import annotations

import asyncio

from rich.markdown import Markdown as RichMarkdown
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Markdown, Static

from foundry_tui.markdown_split import last_cut, split_segments
from foundry_tui.text import sanitize

# How often a streaming reply is re-laid out; deltas in between are shown together.
FRAMES_PER_SECOND = 12


def _segment(text: str) -> Markdown:
    # Links are shown, never opened: model output must not act on the system.
    return Markdown(text, open_links=False, classes="reply-segment")


def _saved_segment(text: str) -> Static:
    # A finished reply is one widget per segment, not a tree of block widgets: a long
    # conversation mounts in milliseconds. Rich's Markdown takes the text literally (no
    # markup) and, with hyperlinks off, shows links without making them clickable.
    return Static(
        RichMarkdown(text, code_theme="monokai", hyperlinks=False),
        classes="reply-segment reply-saved",
    )


class ReplyBody(Vertical):
    """Markdown split at safe block boundaries (see markdown_split).

    Streaming: `write()` queues text without waiting; one task appends everything queued
    so far in a single Markdown append, so however fast deltas arrive, each frame parses
    only what is new, and only the last segment is ever re-parsed or re-laid out.
    """

    def __init__(self, text: str = "", *, streaming: bool = False) -> None:
        super().__init__(classes="message-body")
        clean = sanitize(text)
        self._streaming = streaming
        self._saved_text = clean
        self._initial_segments = split_segments(clean)
        self._segment_text = self._initial_segments[-1]
        self._queued: list[str] = []
        self._stream_wake = asyncio.Event()
        self._stream_task: asyncio.Task[None] | None = None
        self._tail_view: Markdown | None = None

    def compose(self) -> ComposeResult:
        if not self._streaming:
            yield from (_saved_segment(text) for text in self._initial_segments)
            return
        views = [_segment(text) for text in self._initial_segments]
        self._tail_view = views[-1]
        yield from views

    @property
    def source(self) -> str:
        """The Markdown shown so far (all segments)."""
        if not self._streaming:
            return self._saved_text
        return "".join(view.source for view in self.query(Markdown))

    # -- streaming -----------------------------------------------------------------

    def write(self, fragment: str) -> None:
        """Queues ``fragment`` for display; never blocks the caller."""
        if not fragment:
            return
        assert self._streaming, "only a streaming reply takes writes"
        self._queued.append(sanitize(fragment))
        self._stream_wake.set()
        if self._stream_task is None:
            self._stream_task = asyncio.create_task(self._pump())

    async def finish(self) -> None:
        """Waits until everything written is on screen, then stops the pump."""
        if self._stream_task is None:
            return
        task, self._stream_task = self._stream_task, None
        self._queued.append("")  # the pump stops once it has shown this
        self._stream_wake.set()
        await task

    def stop_now(self) -> None:
        """Stops streaming at once (cancel): what was queued is dropped from the screen
        only; the session has saved the whole text."""
        if self._stream_task is not None:
            self._stream_task.cancel()
            self._stream_task = None

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._stream_wake.wait()
            self._stream_wake.clear()
            pending, self._queued = self._queued, []
            text = "".join(pending)
            started = loop.time()
            if text:
                await self._append(text)
            if pending and pending[-1] == "" and not self._queued:
                return
            # The first text shows at once; after that, at most FRAMES_PER_SECOND appends:
            # each costs a layout of the screen, however little text it carries.
            await asyncio.sleep(max(0.0, 1 / FRAMES_PER_SECOND - (loop.time() - started)))

    async def _append(self, text: str) -> None:
        assert self._tail_view is not None
        written = len(self._segment_text)
        self._segment_text += text
        cut = last_cut(self._segment_text, not_before=written)
        if cut is None:
            await self._tail_view.append(text)
            return
        head, tail = self._segment_text[written:cut], self._segment_text[cut:]
        if head:
            await self._tail_view.append(head)
        self._tail_view = _segment(tail)
        self._segment_text = tail
        await self.mount(self._tail_view)
