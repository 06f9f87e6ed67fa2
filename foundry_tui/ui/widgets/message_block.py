"""One message of the transcript as lines of text: rendered once per width, then reused.

The transcript draws messages itself (see transcript.py) instead of mounting a tree of
widgets per message: a screen update then costs the lines that changed, not a layout of
every widget on the screen. A reply's Markdown is kept as segments cut at safe block
boundaries (markdown_split), so a streaming reply re-renders only its last segment.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from typing import Any, cast

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.styled import Styled
from rich.text import Text
from textual.strip import Strip

from foundry_tui.core.models import Message, MessageRole, MessageStatus
from foundry_tui.core.text import sanitize
from foundry_tui.ui.markdown_split import last_cut, split_segments, with_plain_open_fence
from foundry_tui.ui.widgets.attachment_chips import chip_text
from foundry_tui.ui.widgets.thinking import ThinkingPart
from foundry_tui.ui.widgets.unwrap import Copied, Place, block_indents, locate

# While a reply streams, its last segment is closed sooner than a saved reply's: each
# frame re-renders the open segment, so its size bounds the cost of a frame.
STREAMING_SEGMENT_CHARS = 300

_STATUS_NOTES = {
    MessageStatus.CANCELLED: "cancelled",
    MessageStatus.FAILED: "failed",
    MessageStatus.INCOMPLETE: "incomplete",
    MessageStatus.INTERRUPTED: "interrupted (the app closed mid-reply)",
}

# Columns a message's frame takes: the left bar and one space each side of the text.
FRAME_COLUMNS = 3
# The widest a message is rendered to copy a selection of it unwrapped (a longer written
# line keeps a break every this many columns).
COPY_WIDTH_LIMIT = 4000


# The mark drawn at the right of a code block's first line; a click on it copies the code.
COPY_MARK = "⧉ copy"
# What a header line shows for a message with siblings: "‹ 2/3 ›".
BRANCH_PREVIOUS = "‹"
BRANCH_NEXT = "›"
# The style meta key that marks the lines of a rendered code block (see _MarkedCode).
_CODE_META = "foundry.code"


@dataclass(frozen=True)
class CodeSpan:
    """A code block of a reply: where it is drawn and what it holds."""

    first: int  # the block line it starts at (the blank line above the code)
    end: int  # the block line after its last
    language: str  # the fence's first word, untrusted ("" when it names none)
    code: str  # the text between the fences, as written (no last line break)


@dataclass(frozen=True)
class _LocalCode:
    """A code block of one rendered segment, in that segment's lines."""

    first: int
    end: int
    language: str
    code: str


@dataclass(frozen=True)
class _Unwrapped:
    """A block's body (or status note) as wrapped on screen and as written."""

    first: int  # the block line the part starts at
    wrapped: list[str]
    wide: list[str]
    indents: list[int]
    places: list[Place | None]


# A message longer than this is shown cut: its first HEAD_CHARS (as Markdown, for a reply)
# and its last TAIL_CHARS (as plain text, which a cut cannot misread), with a note between.
# Rendering runs at about 1 MB a second: the whole of a 50 MB reply would hold the screen
# for most of a minute, on every reopen; its first 64 KB take about 0.07 s. The whole text is
# always saved.
CUT_ABOVE_CHARS = 512 * 1024
HEAD_CHARS = 64 * 1024
TAIL_CHARS = 16 * 1024


@dataclass(frozen=True)
class Palette:
    """The styles a message is drawn with, read from the transcript's component classes."""

    base: Style
    header: Style
    footer: Style
    hint: Style
    user_bar: Style
    assistant_bar: Style
    flagged_bar: Style
    failed_bar: Style
    code_theme: str
    thinking: Style = field(default_factory=Style)
    thinking_title: Style = field(default_factory=Style)
    copy_mark: Style = field(default_factory=Style)


class LineRenderer:
    """Renders Rich renderables to lines of a given width with one console."""

    def __init__(self, console: Console, palette: Palette) -> None:
        self.console = console
        self.palette = palette
        self._options: dict[int, ConsoleOptions] = {}

    def lines(
        self, renderable: RenderableType, width: int, style: Style | None = None
    ) -> list[Strip]:
        options = self._options.get(width)
        if options is None:
            options = self.console.options.update_width(width).reset_height()
            options.max_height = 10_000_000
            self._options[width] = options
        rendered = self.console.render_lines(
            renderable, options, style=style or self.palette.base, pad=True
        )
        return [Strip(line, width) for line in rendered]

    def markdown(self, text: str, width: int, style: Style | None = None) -> list[Strip]:
        return self.lines(_markdown(text, self.palette.code_theme), width, style)

    def markdown_with_code(self, text: str, width: int) -> tuple[list[Strip], list[_LocalCode]]:
        """``text`` rendered, and where each of its code blocks was drawn."""
        markdown = _markdown(text, self.palette.code_theme)
        lines = self.lines(markdown, width)
        tokens = [
            token for token in cast("Any", markdown).parsed if token.type in ("fence", "code_block")
        ]
        if not tokens:
            return lines, []
        return lines, _code_spans(lines, {id(token): token for token in tokens})


def _code_spans(lines: list[Strip], tokens: dict[int, Any]) -> list[_LocalCode]:
    """The code blocks in ``lines``: each runs over the lines its mark is on."""
    spans: list[_LocalCode] = []
    current: int | None = None
    first = 0
    for y, line in enumerate([*lines, None]):
        mark = _code_mark(line) if line is not None else None
        if mark == current:
            continue
        if current is not None and (token := tokens.get(current)) is not None:
            code = token.content[:-1] if token.content.endswith("\n") else token.content
            language = (token.info or "").split(" ", 1)[0].strip()
            spans.append(_LocalCode(first, y, language, code))
        current, first = mark, y
    return spans


def _code_mark(line: Strip) -> int | None:
    for segment in line:
        style = segment.style
        if style is not None and (mark := _mark_of(style)) is not None:
            return mark
    return None


@functools.lru_cache(maxsize=4096)
def _mark_of(style: Style) -> int | None:
    # A line has a handful of styles, repeated over thousands of lines: each one's meta
    # is decoded once.
    return cast("int | None", style.meta.get(_CODE_META))


def _markdown(text: str, code_theme: str) -> RenderableType:
    """Rich's Markdown for ``text``, parsed with one shared parser.

    Rich builds a new markdown-it parser for every Markdown object, which costs more than
    parsing a streaming reply's open segment, re-rendered on every frame. So each one is
    a copy of a prototype with the text parsed by the prototype's kind of parser.
    """
    prototype, parser = _markdown_prototype(code_theme)
    markdown = copy.copy(prototype)
    markdown.markup = text
    markdown.parsed = parser.parse(text)
    return cast("RenderableType", markdown)


@functools.cache
def _markdown_prototype(code_theme: str) -> tuple[Any, Any]:
    # Imported on first use: markdown-it and Pygments are not needed to start.
    from markdown_it import MarkdownIt
    from rich.markdown import CodeBlock, Markdown

    class MarkedCode(CodeBlock):
        """A code block whose lines carry its token's id in their style's meta, so the
        lines a rendered code block took can be found (to select and copy it)."""

        @classmethod
        def create(cls, markdown: Markdown, token: Any) -> CodeBlock:
            block = super().create(markdown, token)
            block.token_id = id(token)  # type: ignore[attr-defined]
            return block

        def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
            mark = Style.from_meta({_CODE_META: getattr(self, "token_id", 0)})
            for renderable in super().__rich_console__(console, options):
                yield Styled(cast("RenderableType", renderable), mark)

    class MarkedMarkdown(Markdown):
        elements = {**Markdown.elements, "fence": MarkedCode, "code_block": MarkedCode}

    # Links are shown, never made clickable or opened: model output must not act.
    prototype = MarkedMarkdown("", code_theme=code_theme, hyperlinks=False)
    return prototype, MarkdownIt().enable("strikethrough").enable("table")


# Languages models use most in fenced code: their Pygments lexers are imported ahead of
# the first reply that needs them (each import costs tens of milliseconds).
_WARM_UP_LANGUAGES = (
    "python",
    "bash",
    "sh",
    "json",
    "javascript",
    "typescript",
    "yaml",
    "sql",
    "go",
    "rust",
    "java",
    "c",
    "cpp",
    "csharp",
    "html",
    "css",
    "toml",
    "diff",
    "text",
)


def warm_up_rendering() -> None:
    """Renders a little Markdown with code in common languages, off the UI loop, so the
    first reply does not pay for importing markdown-it, Pygments and its lexers."""
    from io import StringIO

    console = Console(file=StringIO(), width=60, color_system="truecolor")
    fences = "".join(f"```{language}\nx = 1\n```\n\n" for language in _WARM_UP_LANGUAGES)
    console.print(_markdown(f"# Title\n\n*a* **b** `c`\n\n- item\n\n{fences}", "monokai"))


def _size(chars: int) -> str:
    return f"{chars / 1e6:.1f} million characters" if chars >= 1e6 else f"{chars:,} characters"


def _head_of(text: str) -> str:
    """The first HEAD_CHARS of ``text``, ended at a line break when one is near."""
    head = text[:HEAD_CHARS]
    end = head.rfind("\n", HEAD_CHARS // 2)
    return head[: end + 1] if end >= 0 else head


def _estimate_lines(text: str, width: int) -> int:
    # Rough on purpose: it only places messages not yet scrolled to, and must cost
    # next to nothing for a conversation of thousands of messages.
    return len(text) // max(1, width) + text.count("\n") + 1


class MessageBlock:
    """A message and its rendered lines (margin, header, body, footer) at one width.

    Lines are content only; the transcript adds the coloured bar on the left when it
    draws them, so a status change does not re-render the body.
    """

    def __init__(self, message: Message) -> None:
        self.message = message
        self._markdown = message.role == MessageRole.ASSISTANT
        # Split on first use: most messages of a long conversation are never scrolled to.
        self._split: list[str] | None = None
        # The segment drawn with its open code block in plain text (see render).
        self._plain_segment: int | None = None
        self._segment_lines: list[list[Strip] | None] = []
        self._segment_codes: list[list[_LocalCode]] = []
        # The reply's code blocks as last rendered, in block lines.
        self.code_spans: list[CodeSpan] = []
        # (which, of how many) when the message has siblings: shown as "‹ 2/3 ›".
        self.branch: tuple[int, int] | None = None
        self._branch_columns: tuple[int, int] | None = None  # where ‹ and › are drawn
        self._width = 0
        self._chrome_width = -1
        self._header: list[Strip] = []
        self._files: list[Strip] = []  # the prompt's attachments, a line each
        self._footer: list[Strip] = []
        self._height: int | None = None
        self._estimate: tuple[int, int] | None = None
        self._lines: list[Strip | None] = []  # None: the blank margin line above
        self._framed: list[Strip | None] = []
        self.changed_from = 0
        # Characters of text so far (shown or not); the tail once the message is cut.
        self._length = 0
        self._tail: str | None = None
        self._cut_lines: list[Strip] | None = None  # the note and the tail, rendered
        # The model's reasoning above the answer; a saved one is shown folded.
        self.thinking = ThinkingPart(message.reasoning, folded=True) if message.reasoning else None
        self._thinking_lines: list[Strip] = []

    # -- content -------------------------------------------------------------------

    @property
    def _segments(self) -> list[str]:
        if self._split is None:
            text = self.message.text
            self._length = len(text)
            if len(text) > CUT_ABOVE_CHARS:  # only the ends are read: never the whole
                self._tail = sanitize(text[-TAIL_CHARS:])
                text = _head_of(text)
            clean = sanitize(text)
            self._split = split_segments(clean) if self._markdown and clean else [clean]
            self._segment_lines = [None] * len(self._split)
            self._segment_codes = [[] for _ in self._split]
        return self._split

    @property
    def cut(self) -> bool:
        """Whether only the ends of the text are shown."""
        _ = self._segments
        return self._tail is not None

    @property
    def source(self) -> str:
        """The text shown: the message's text, or what has streamed in so far."""
        head = "".join(self._segments)
        if self._tail is None:
            return head
        return f"{head}\n{self.cut_note}\n{self._tail}"

    @property
    def cut_note(self) -> str:
        """What a cut message says where it is cut."""
        what = "reply" if self._markdown else "message"
        return (
            f"⋯ {what} of {_size(self._length)}: shown cut to its first "
            f"{_size(HEAD_CHARS)} and last {_size(TAIL_CHARS)}; "
            "the whole text is saved in the history ⋯"
        )

    def append(self, text: str) -> None:
        """Adds streamed text; only the open (last) segment is rendered again (once the
        message is cut, only its tail)."""
        segments = self._segments
        if self._tail is not None:
            self._length += len(text)
            end = sanitize(text[-TAIL_CHARS:])
            self._tail = end if len(end) >= TAIL_CHARS else (self._tail + end)[-TAIL_CHARS:]
            self._cut_lines = None
            self._height = None
            return
        if self._length + len(text) <= CUT_ABOVE_CHARS:
            self._append_shown(text)
            return
        before = "".join(segments)[-TAIL_CHARS:]
        room = HEAD_CHARS - self._length
        if room > 0:
            self._append_shown(text[:room])
        self._length += len(text) - max(0, room)
        self._keep_head()
        end = sanitize(text[-TAIL_CHARS:])
        self._tail = end if len(end) >= TAIL_CHARS else (before + end)[-TAIL_CHARS:]
        self._cut_lines = None

    def _append_shown(self, text: str) -> None:
        self._length += len(text)
        written = len(self._segments[-1])
        open_segment = self._segments[-1] + sanitize(text)
        cut = last_cut(open_segment, not_before=written, min_length=STREAMING_SEGMENT_CHARS)
        if cut is None:
            self._segments[-1] = open_segment
            self._segment_lines[-1] = None
        else:
            self._segments[-1:] = [open_segment[:cut], open_segment[cut:]]
            self._segment_lines[-1:] = [None, None]
            self._segment_codes[-1:] = [[], []]
        self._height = None

    def _keep_head(self) -> None:
        """Drops the segments past HEAD_CHARS; the ones kept keep their rendered lines."""
        segments = self._segments
        kept = 0
        for index, segment in enumerate(segments):
            if kept + len(segment) > HEAD_CHARS:
                if index == 0:  # one segment longer than the head: cut inside it
                    segments[:] = [_head_of(segment)]
                    self._segment_lines = [None]
                    self._segment_codes = [[]]
                else:
                    del segments[index:]
                    del self._segment_lines[index:]
                    del self._segment_codes[index:]
                break
            kept += len(segment)
        self._height = None

    # -- thinking --------------------------------------------------------------------

    def start_thinking(self) -> None:
        """The model began to reason; the part shows once its text comes."""
        if self.thinking is None:
            self.thinking = ThinkingPart()
        self.thinking.start()

    def append_thinking(self, text: str) -> None:
        if self.thinking is None:
            self.thinking = ThinkingPart()
        self.thinking.append(text)
        self._height = None

    def end_thinking(self, *, fold: bool) -> bool:
        """The reasoning is over (``fold``: the answer began); True if that shows."""
        thinking = self.thinking
        if thinking is None or not thinking.streaming:
            return False
        thinking.finish(fold=fold)
        self._height = None
        return not thinking.empty

    def toggle_thinking(self) -> bool:
        """Unfolds or folds the thinking; False when there is none to show."""
        if self.thinking is None or self.thinking.empty:
            return False
        self.thinking.toggle()
        self._height = None
        self._estimate = None
        return True

    @property
    def has_thinking(self) -> bool:
        return self.thinking is not None and not self.thinking.empty

    def thinking_title_at(self, y: int) -> bool:
        """Whether line ``y`` of the rendered block is the thinking's title line."""
        return bool(self._thinking_lines) and y == 1 + len(self._header)

    def set_branch(self, branch: tuple[int, int] | None) -> bool:
        """Shows "‹ which/count ›" in the header (None: no siblings); True if it changed."""
        if branch == self.branch:
            return False
        self.branch = branch
        self._chrome_width = -1
        self._height = None
        self._framed = []
        return True

    def branch_step_at(self, y: int, x: int) -> int:
        """-1 or 1 when column ``x`` of block line ``y`` (in the text, after the bar) is
        on the header's ‹ or ›; 0 elsewhere."""
        columns = self._branch_columns
        if columns is None or y != 1:
            return 0
        previous, after = columns
        if previous - 1 <= x <= previous + 1:
            return -1
        if after - 1 <= x <= after + 1:
            return 1
        return 0

    def code_at(self, y: int) -> int | None:
        """The index of the code block drawn on block line ``y``, if any."""
        for index, span in enumerate(self.code_spans):
            if span.first <= y < span.end:
                return index
        return None

    def copy_mark_at(self, y: int, x: int) -> int | None:
        """The code block whose copy mark is at column ``x`` of block line ``y``."""
        start = self._copy_mark_column()
        if start is None or not start <= x < start + len(COPY_MARK):
            return None
        return next((i for i, span in enumerate(self.code_spans) if span.first == y), None)

    def _copy_mark_column(self) -> int | None:
        """Where the copy mark starts in a line's text; None when too narrow for it."""
        text_width = self._width - FRAME_COLUMNS
        start = text_width - len(COPY_MARK) - 1
        return start if start >= 8 else None

    def set_message(self, message: Message) -> None:
        """Takes a new status, model or error; the body is kept as it is."""
        if self.thinking is None and message.reasoning:
            self.thinking = ThinkingPart(message.reasoning, folded=True)
        self.message = message
        self._chrome_width = -1
        self._height = None
        self._framed = []  # the bar's colour follows the status
        plain = self._plain_segment
        if plain is not None and message.status is not MessageStatus.PENDING:
            if plain < len(self._segment_lines):
                self._segment_lines[plain] = None  # drawn again, in colour
            self._plain_segment = None

    def forget_rendering(self) -> None:
        """Drops rendered lines (their colours changed); they are rendered again on use."""
        self._width = 0
        self._height = None
        self._segment_lines = [None] * len(self._segments)
        self._segment_codes = [[] for _ in self._segments]
        self._cut_lines = None
        self._framed = []

    # -- geometry ------------------------------------------------------------------

    def rendered_at(self, width: int) -> bool:
        return self._height is not None and self._width == width

    def height(self, width: int) -> int:
        """Exact when rendered at ``width``; otherwise an estimate from the text."""
        if self._height is not None and self._width == width:
            return self._height
        if self._estimate is None or self._estimate[0] != width:
            text = self.message.text if self._split is None else self.source
            if len(text) > CUT_ABOVE_CHARS:
                text = text[:HEAD_CHARS] + text[-TAIL_CHARS:]
            body = _estimate_lines(text, width - FRAME_COLUMNS)
            footer = 1 if _STATUS_NOTES.get(self.message.status) or self.message.error else 0
            thinking = self.thinking
            shown = (
                thinking.estimate(width - FRAME_COLUMNS) if thinking and not thinking.empty else 0
            )
            files = len(self.message.attachments)
            self._estimate = (width, 2 + files + body + footer + shown)
        return self._estimate[1]

    def render(self, width: int, renderer: LineRenderer) -> int:
        """Renders whatever is missing at ``width``; returns the exact height.

        Afterwards ``changed_from`` is the first line that differs from the last render
        (the height when nothing changed), so only lines from there on need repainting.
        """
        if width != self._width:
            self._segment_lines = [None] * len(self._segments)
            self._segment_codes = [[] for _ in self._segments]
            self._cut_lines = None
            self._width = width
            self._chrome_width = -1
        text_width = max(1, width - FRAME_COLUMNS)
        if self._chrome_width != width:
            palette = renderer.palette
            self._header = renderer.lines(self._header_text(), text_width, palette.header)
            files = self._files_text()
            self._files = renderer.lines(files, text_width, palette.hint) if files else []
            footer = self._footer_text()
            self._footer = renderer.lines(footer, text_width, palette.footer) if footer else []
            self._chrome_width = width
        streaming = self.message.status is MessageStatus.PENDING
        last = len(self._segment_lines) - 1
        for index, lines in enumerate(self._segment_lines):
            if lines is None:
                text = self._segments[index]
                if streaming and index == last and self._markdown:
                    shown = with_plain_open_fence(text)
                    self._plain_segment = index if shown is not text else None
                    text = shown
                elif index == self._plain_segment:
                    self._plain_segment = None
                self._segment_lines[index], self._segment_codes[index] = self._render_shown(
                    text, text_width, renderer
                )
        if self._tail is not None and self._cut_lines is None:
            self._cut_lines = self._render_cut(self._tail, text_width, renderer)
        thinking = self.thinking
        self._thinking_lines = (
            thinking.lines(text_width, renderer) if thinking and not thinking.empty else []
        )
        self._assemble(Strip.blank(text_width, renderer.palette.base))
        self._height = len(self._lines)
        return self._height

    def _assemble(self, blank: Strip) -> None:
        # None: the margin above.
        lines: list[Strip | None] = [None, *self._header, *self._files, *self._thinking_lines]
        first = True
        spans: list[CodeSpan] = []
        for segment_lines, codes in zip(self._segment_lines, self._segment_codes, strict=True):
            if not segment_lines:
                continue
            if not first:
                # Segments were cut after a blank line: one blank line separates them.
                lines.append(blank)
            first = False
            top = len(lines)
            spans += [
                CodeSpan(top + code.first, top + code.end, code.language, code.code)
                for code in codes
            ]
            lines.extend(segment_lines)
        self.code_spans = spans
        if self._cut_lines is not None:
            lines.extend(self._cut_lines)
        lines.extend(self._footer)
        old = self._lines
        same = 0
        limit = min(len(old), len(lines))
        while same < limit and (old[same] is lines[same] or old[same] == lines[same]):
            same += 1
        self.changed_from = same
        self._lines = lines
        del self._framed[same:]

    def _render_cut(self, tail: str, width: int, renderer: LineRenderer) -> list[Strip]:
        """The note where the text is cut, then the tail as plain text (from a line start
        when one is near: a cut inside a line or a code block reads oddly as Markdown)."""
        start = tail.find("\n", 0, 1024)
        blank = Strip.blank(width, renderer.palette.base)
        note = Text(self.cut_note, overflow="fold")
        return [
            blank,
            *renderer.lines(note, width, renderer.palette.hint),
            blank,
            *renderer.lines(Text(tail[start + 1 :], overflow="fold"), width),
        ]

    def _render_shown(
        self, text: str, width: int, renderer: LineRenderer
    ) -> tuple[list[Strip], list[_LocalCode]]:
        """A segment as shown, with its code blocks."""
        if not self._markdown or not text.strip():
            return self._render_segment(text, width, renderer), []
        return renderer.markdown_with_code(text, width)

    def _render_segment(self, text: str, width: int, renderer: LineRenderer) -> list[Strip]:
        if not self._markdown:
            return renderer.lines(Text(text, overflow="fold"), width)
        if not text.strip():
            return []
        return renderer.markdown(text, width)

    # -- drawing -------------------------------------------------------------------

    def framed_line(self, y: int, palette: Palette) -> Strip:
        """Line ``y`` of the rendered block, with the message's bar on the left."""
        framed = self._framed
        if y < len(framed) and (line := framed[y]) is not None:
            return line
        content = self._lines[y]
        width = self._width
        if content is None:
            line = Strip.blank(width, palette.base)
        else:
            mark = self._copy_mark_column() if self.code_spans else None
            if mark is not None and any(span.first == y for span in self.code_spans):
                content = _with_mark(content, mark, palette.copy_mark)
            line = Strip(
                [
                    Segment("▌", self.bar_style(palette)),
                    Segment(" ", palette.base),
                    *content,
                    Segment(" ", palette.base),
                ],
                width,
            )
        if y >= len(framed):
            framed.extend([None] * (y + 1 - len(framed)))
        framed[y] = line
        return line

    def plain_line(self, y: int) -> str:
        """Line ``y``'s text without the frame, for copying a selection."""
        content = self._lines[y] if 0 <= y < len(self._lines) else None
        return "" if content is None else content.text.rstrip()

    def copy_into(
        self,
        copied: Copied,
        spans: list[tuple[int, int, int | None]],
        renderer: LineRenderer,
    ) -> None:
        """Adds lines of this block to ``copied``: each span is a line, the column the
        selection starts at in its text and the one it ends at (None: the line's end).
        The body and the status note are copied as written, not as wrapped here."""
        body_start = 1 + len(self._header) + len(self._files) + len(self._thinking_lines)
        footer_start = len(self._lines) - len(self._footer)
        longest = max(map(len, self.source.split("\n")), default=0)
        wide_width = min(COPY_WIDTH_LIMIT, max(self._width, longest + 16))
        parts: dict[bool, _Unwrapped] = {}
        for y, start, end in spans:
            if y < body_start:  # the margin, the header and the files: as shown
                copied.add_shown(self.plain_line(y)[start:end])
                continue
            body = y < footer_start
            if body not in parts:
                first, last = (
                    (body_start, footer_start) if body else (footer_start, len(self._lines))
                )
                wrapped = [self.plain_line(line) for line in range(first, last)]
                wide = self._wide_lines(body, wide_width, renderer)
                # A reply's Markdown is indented by its rendering (code, lists); a prompt
                # and the status note are plain text, indented as written.
                indents = block_indents(wide) if body and self._markdown else [0] * len(wide)
                parts[body] = _Unwrapped(first, wrapped, wide, indents, locate(wrapped, wide))
            unwrapped = parts[body]
            index = y - unwrapped.first
            place = unwrapped.places[index]
            if place is None:
                copied.add_shown(unwrapped.wrapped[index][start:end])
            else:
                key = id(self) * 2 + body
                indent = unwrapped.indents[place.line]
                copied.add_placed(key, unwrapped.wide, place, start, end, indent)

    def _wide_lines(self, body: bool, width: int, renderer: LineRenderer) -> list[str]:
        """The body (or the status note) rendered ``width`` wide, as plain lines."""
        if not body:
            footer = self._footer_text()
            strips = renderer.lines(footer, width, renderer.palette.footer) if footer else []
            return [strip.text.rstrip() for strip in strips]
        lines: list[str] = []
        for segment in self._segments:
            rendered = self._render_segment(segment, width, renderer)
            if not rendered:
                continue
            if lines:
                lines.append("")
            lines.extend(strip.text.rstrip() for strip in rendered)
        return lines

    def bar_style(self, palette: Palette) -> Style:
        status = self.message.status
        if status == MessageStatus.FAILED:
            return palette.failed_bar
        if status not in (MessageStatus.COMPLETED, MessageStatus.PENDING):
            return palette.flagged_bar
        if self.message.role == MessageRole.USER:
            return palette.user_bar
        return palette.assistant_bar

    @property
    def header(self) -> str:
        """The header line as shown: who wrote it, with which model."""
        return self._header_text().plain

    @property
    def footer(self) -> str:
        """The status note shown under the message, if any."""
        return self._footer_text().plain

    def _header_text(self) -> Text:
        message = self.message
        if message.role == MessageRole.USER:
            name = "You"
        else:
            name = message.model or "assistant"
            if message.response_model and message.response_model != message.model:
                name = f"{name} ({message.response_model})"
        header = Text(sanitize(name), style="bold", overflow="ellipsis", no_wrap=True)
        self._branch_columns = None
        if self.branch is not None:
            which, count = self.branch
            marker = f"{BRANCH_PREVIOUS} {which}/{count} {BRANCH_NEXT}"
            # The name gives way to the marker: it is what a click or a key acts on.
            room = self._width - FRAME_COLUMNS - len(marker) - 2
            if room > 0 and header.cell_len > room:
                header.truncate(room, overflow="ellipsis")
            header.append("  ")
            start = header.cell_len
            header.append(marker, style=_BRANCH_STYLE)
            self._branch_columns = (start, start + len(marker) - 1)
        if message.status == MessageStatus.PENDING:
            header.append("  streaming…", style="italic")
        return header

    @property
    def files(self) -> str:
        """The lines naming the message's attachments, as shown."""
        return self._files_text().plain

    def _files_text(self) -> Text:
        """One line per file sent with the prompt: "▪ report.pdf · PDF document, 1.2 MB"
        (the name, untrusted, as one inert line, cut)."""
        lines = [
            f"▪ {chip_text(file.name, file.media_type, file.size)}"
            for file in self.message.attachments
        ]
        return Text("\n".join(lines), no_wrap=True, overflow="ellipsis")

    def _footer_text(self) -> Text:
        message = self.message
        note = _STATUS_NOTES.get(message.status)
        if note is None:
            # A completed reply's note: what the server sent that was not kept.
            if message.error and message.status == MessageStatus.COMPLETED:
                return Text(f"ⓘ {sanitize(message.error)}", overflow="fold")
            return Text("")
        detail = f": {sanitize(message.error)}" if message.error else ""
        return Text(f"⚠ {note}{detail}", overflow="fold")


_BRANCH_STYLE = Style(bold=True)


def _with_mark(content: Strip, column: int, style: Style) -> Strip:
    """``content`` with the copy mark drawn from ``column``, on the code's background."""
    under = content.crop(column, column + len(COPY_MARK))
    base = next((segment.style for segment in under if segment.style), None) or Style()
    mark = Strip([Segment(COPY_MARK, base + style)], len(COPY_MARK))
    return Strip.join(
        [content.crop(0, column), mark, content.crop(column + len(COPY_MARK), content.cell_length)]
    )
