"""The compare screen: one column per contender, each streaming its reply to one prompt.

It draws and routes: `core.compare.Comparison` saves the prompt once and each reply as a
sibling under it. The comparison runs in an async worker (group "turn", so quitting on a
signal saves it as any turn) that posts its events here as messages; a column's text is
gathered, at most one message in flight per column (as turn_flow does for one reply).

Each column: a header (the model's name, inert; its status, time to first token, tokens
per second and usage, live while it streams), the reply in a `Transcript`, and a button
to continue with it. Escape cancels every stream (each reply so far is saved as
cancelled); pressed again, it closes. 1, 2, 3 (or the button, or a click) continue with
that column: its reply becomes the conversation's next turn, the others stay as its
sibling branches. Closed without a choice, the first column's answer is shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import aclosing, suppress
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message as TextualMessage
from textual.message_pump import MessagePump
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Input, Static
from textual.worker import WorkerCancelled, WorkerFailed, WorkerState

from foundry_tui.core.compare import (
    Chosen,
    ColumnClosed,
    ColumnEvent,
    CompareEvent,
    Comparison,
    Preparing,
)
from foundry_tui.core.models import (
    Answered,
    ContextTrimmed,
    Message,
    MessageStatus,
    Retrying,
    StorageError,
    Waiting,
)
from foundry_tui.core.session import (
    ModeChanged,
    ParameterDropped,
    ReplyDelta,
    SettingsChanged,
    ThinkingDelta,
    ThinkingStarted,
    TurnEnded,
    TurnStarted,
)
from foundry_tui.core.text import one_line, sanitize
from foundry_tui.ui.screens.turn_flow import TextPoster
from foundry_tui.ui.widgets.footer import KeyFooter
from foundry_tui.ui.widgets.message_block import MessageBlock
from foundry_tui.ui.widgets.plain import plain_line
from foundry_tui.ui.widgets.transcript import Transcript

# The longest the worker hands deltas on without a pause (a column's text messages are
# TextPoster's: at most one in flight, 60 a second).
DELTA_RUN_SECONDS = 0.005
# How often the headers' live figures are redrawn while a column streams.
FIGURES_SECONDS = 0.25
LABEL_LIMIT = 80


class ColumnTranscript(Transcript):
    """A column's reply. Three columns at the chat's 8 repaints a second each would draw
    three times as much as one reply does (a fast stream scrolls the whole column at every
    repaint): each repaints 3 times a second, and the end of a reply shows at once.

    The columns' streams start together, so their repaints would come together too, one
    heavy frame that a key typed meanwhile waits for: column N's first text is held for
    ``phase`` seconds, so that the columns take turns."""

    frames_per_second = 3

    def __init__(self, *, id: str | None = None, phase: float = 0.0) -> None:
        super().__init__(id=id)
        self._phase = phase
        self._held: list[str] | None = None

    def write(self, block: MessageBlock, fragment: str) -> None:
        if self._phase <= 0:
            super().write(block, fragment)
            return
        if self._held is None:
            self._held = []
            self.set_timer(self._phase, lambda: self._release(block))
        self._held.append(fragment)

    def _release(self, block: MessageBlock) -> None:
        held, self._held, self._phase = self._held, None, 0.0
        if held:
            super().write(block, "".join(held))

    async def finish(self, block: MessageBlock) -> None:
        self._release(block)  # the end of a reply shows at once, held text and all
        await super().finish(block)

    # A column's reply can be read and copied like a chat's (↑↓, c); editing, regenerating
    # and switching branches are the chat's, and Escape is the compare screen's.
    NOT_HERE = frozenset({"edit_prompt", "regenerate", "branch", "leave"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.NOT_HERE:
            return False
        return super().check_action(action, parameters)


@dataclass(frozen=True)
class CompareOutcome:
    """How the compare screen closed: the reply continued with (``chosen``), else the
    reply shown in its place (``head``); ``next_prompt``: what was typed meanwhile;
    ``unsaved_prompt``: the compared prompt when it could not be saved (it goes back to
    the prompt box, not lost)."""

    chosen: Chosen | None
    head: Message | None
    next_prompt: str
    unsaved_prompt: str = ""


class CompareMessage(TextualMessage, bubble=False):
    """The comparison's messages, posted to the compare screen."""


class ColumnText(CompareMessage, bubble=False):
    """Text of a column's reply (or its thinking) that arrived since the last was taken."""

    def __init__(self, index: int, pending: list[str], thinking: bool) -> None:
        super().__init__()
        self.index = index
        self.thinking = thinking
        self._pending = pending

    def take(self) -> str:
        text = "".join(self._pending)
        self._pending.clear()
        return text


class ColumnUpdate(CompareMessage, bubble=False):
    """Any other event of the comparison."""

    def __init__(self, event: CompareEvent) -> None:
        super().__init__()
        self.event = event


class CompareOver(CompareMessage, bubble=False):
    """Every stream is over; ``problem``: the prompt could not be saved."""

    def __init__(self, problem: str | None = None) -> None:
        super().__init__()
        self.problem = problem


def _column_text(index: int, *, thinking: bool) -> Callable[[list[str]], ColumnText]:
    return lambda pending: ColumnText(index, pending, thinking)


async def post_comparison(screen: MessagePump, comparison: Comparison, prompt: str) -> None:
    """Runs ``comparison`` and posts what happens to ``screen``; ends with `CompareOver`."""
    count = len(comparison.contenders)
    texts = [TextPoster(screen, _column_text(index, thinking=False)) for index in range(count)]
    thoughts = [TextPoster(screen, _column_text(index, thinking=True)) for index in range(count)]
    loop = asyncio.get_running_loop()
    yielded_at = loop.time()
    problem: str | None = None
    try:
        async with aclosing(comparison.run(prompt)) as events:
            async for event in events:
                if isinstance(event, ColumnEvent) and isinstance(
                    event.event, ReplyDelta | ThinkingDelta
                ):
                    if isinstance(event.event, ReplyDelta):
                        thoughts[event.index].flush()
                        texts[event.index].add(event.event.text)
                    else:
                        thoughts[event.index].add(event.event.text)
                    # Three fast streams read in large chunks: keys go between the runs.
                    if loop.time() - yielded_at > DELTA_RUN_SECONDS:
                        await asyncio.sleep(0)
                        yielded_at = loop.time()
                    continue
                if isinstance(event, ColumnEvent | ColumnClosed):
                    thoughts[event.index].flush()
                    texts[event.index].flush()
                screen.post_message(ColumnUpdate(event))
    except StorageError as error:
        problem = str(error)
    finally:
        for poster in (*thoughts, *texts):
            poster.flush()
        screen.post_message(CompareOver(problem))


def _seconds(ms: int) -> str:
    return f"{ms} ms" if ms < 100 else f"{ms / 1000:.1f} s"


def _rate(tokens_per_second: float, estimated: bool) -> str:
    figure = f"{tokens_per_second:.0f}" if tokens_per_second >= 10 else f"{tokens_per_second:.1f}"
    return f"{'~' if estimated else ''}{figure} tok/s"


class _Column:
    """One contender's widgets and what its header says."""

    def __init__(self, screen: CompareScreen, index: int) -> None:
        self.index = index
        self.header = screen.query_one(f"#compare-header-{index}", Static)
        self.waiting = screen.query_one(f"#compare-waiting-{index}", Static)
        self.transcript = screen.query_one(f"#compare-reply-{index}", Transcript)
        self.block: MessageBlock | None = None
        self.thinking = False
        self.notice = ""
        self.shown = ""

    def header_text(self, comparison: Comparison) -> str:
        """Under the name: the status, time to first token and speed; then the usage, an
        error's title or what is going on (live while it streams)."""
        from foundry_tui.core.usage import compact_count, speed_of

        reply = comparison.reply(self.index)
        figures: list[str] = []
        more: list[str] = []
        if comparison.streaming(self.index) or reply is None:
            figures.append(f"● {'streaming' if reply is not None else 'waiting'}")
            first_ms, rate = comparison.live_figures(self.index)
            if first_ms is not None:
                figures.append(f"TTFT {_seconds(first_ms)}")
            if rate is not None:
                figures.append(_rate(rate, estimated=True))
        else:
            figures.append(f"● {reply.status.value}")
            if reply.first_token_ms is not None:
                figures.append(f"TTFT {_seconds(reply.first_token_ms)}")
            speed = speed_of(reply)
            if speed is not None:
                figures.append(_rate(speed.tokens_per_second, speed.estimated))
            usage = reply.usage
            if usage.input_tokens is not None:
                more.append(f"{compact_count(usage.input_tokens)} in")
            if usage.output_tokens is not None:
                more.append(f"{compact_count(usage.output_tokens)} out")
            error = comparison.error(self.index)
            if error is not None:
                more.append(error.title)
        if self.notice:
            more.append(self.notice)
        return f"{' · '.join(figures)}\n{' · '.join(more)}"

    def redraw(self, comparison: Comparison) -> None:
        text = self.header_text(comparison)
        if text != self.shown:
            self.shown = text
            label = comparison.contenders[self.index].label
            figures, more = text.split("\n", 1)
            lines = (
                f"{self.index + 1} · {one_line(label, LABEL_LIMIT)}",
                one_line(figures, 200),
                one_line(more, 400),
            )
            self.header.update(Content("\n".join(lines)), layout=False)


class CompareScreen(Screen[CompareOutcome]):
    CSS_PATH = "compare.tcss"
    BINDINGS = [
        Binding(
            "escape",
            "cancel_all",
            "Cancel all",
            id="compare.cancel",
            tooltip="Stop every reply; the text so far of each is kept",
        ),
        Binding(
            "escape",
            "close",
            "Close",
            id="compare.close",
            tooltip="Back to the chat, showing the first answer; every reply stays as a branch",
        ),
        Binding(
            "ctrl+l",
            "focus_next_prompt",
            "Next prompt",
            id="compare.focus_prompt",
            tooltip="Type the next prompt while the replies come; it waits in the chat's box",
        ),
        Binding(
            "1",
            "choose(0)",
            "Continue with 1",
            id="compare.choose_1",
            tooltip="Continue the conversation with the first column's reply",
        ),
        Binding(
            "2",
            "choose(1)",
            "Continue with 2",
            id="compare.choose_2",
            tooltip="Continue the conversation with the second column's reply",
        ),
        Binding(
            "3",
            "choose(2)",
            "Continue with 3",
            id="compare.choose_3",
            tooltip="Continue the conversation with the third column's reply",
        ),
    ]

    def __init__(self, comparison: Comparison, prompt: str) -> None:
        super().__init__()
        self.comparison = comparison
        self.prompt = prompt
        self.columns: list[_Column] = []
        self._figures: Timer | None = None
        self._over = False

    def compose(self) -> ComposeResult:
        yield Static(plain_line(f"Compare: {self.prompt}", 300), id="compare-prompt-line")
        count = len(self.comparison.contenders)
        with Horizontal(id="compare-columns"):
            for index, _contender in enumerate(self.comparison.contenders):
                with Vertical(classes="compare-column"):
                    yield Static("", id=f"compare-header-{index}", classes="compare-header")
                    yield Static("waiting…", id=f"compare-waiting-{index}", classes="hint")
                    yield ColumnTranscript(
                        id=f"compare-reply-{index}",
                        phase=index / (ColumnTranscript.frames_per_second * count),
                    )
                    yield Button(
                        f"Continue with this one ({index + 1})",
                        id=f"compare-choose-{index}",
                        classes="compare-choose",
                    )
        yield Input(
            placeholder="Type your next prompt meanwhile: it waits in the chat's prompt box",
            id="compare-next",
        )
        yield KeyFooter()

    def on_mount(self) -> None:
        self.columns = [_Column(self, index) for index in range(len(self.comparison.contenders))]
        for column in self.columns:
            column.transcript.display = False
            column.redraw(self.comparison)
        self.columns[0].transcript.focus()
        self._figures = self.set_interval(FIGURES_SECONDS, self._redraw_figures)
        self.run_comparison()

    @work(exclusive=True, group="turn", exit_on_error=False)
    async def run_comparison(self) -> None:
        await post_comparison(self, self.comparison, self.prompt)

    @property
    def streaming(self) -> bool:
        return not self._over

    def _redraw_figures(self) -> None:
        for column in self.columns:
            column.redraw(self.comparison)

    # -- the comparison's messages ---------------------------------------------------

    @on(ColumnText)
    def _column_text(self, message: ColumnText) -> None:
        column = self.columns[message.index]
        text = message.take()
        if column.block is None or not text:
            return
        transcript = column.transcript
        if message.thinking:
            if not column.thinking:
                column.thinking = True
                transcript.start_thinking(column.block)
            transcript.write_thinking(column.block, text)
        else:
            if column.thinking:
                column.thinking = False
                transcript.end_thinking(column.block, fold=True)
            transcript.write(column.block, text)

    @on(ColumnUpdate)
    async def _column_update(self, message: ColumnUpdate) -> None:
        event = message.event
        if isinstance(event, ColumnClosed):
            self._column_closed(event)
            return
        if not isinstance(event, ColumnEvent):
            return  # PromptSaved: the columns show their replies only
        column = self.columns[event.index]
        inner = event.event
        if isinstance(inner, TurnStarted):
            column.notice = ""
            column.waiting.display = False
            column.transcript.display = True
            column.block = await column.transcript.add(inner.reply)
        elif isinstance(inner, TurnEnded):
            await self._ended(column, inner)
        elif isinstance(inner, Preparing):
            column.notice = one_line(inner.text, 120)
            column.waiting.update(plain_line(inner.text), layout=False)
        elif isinstance(inner, ThinkingStarted):
            if column.block is not None and not column.thinking:
                column.thinking = True
                column.transcript.start_thinking(column.block)
        elif isinstance(
            inner, Retrying | ModeChanged | ParameterDropped | ContextTrimmed | SettingsChanged
        ):
            column.notice = one_line(inner.reason, 120)
        elif isinstance(inner, Waiting):
            column.notice = "waiting for the server"
        elif isinstance(inner, Answered):
            column.notice = ""
        column.redraw(self.comparison)

    async def _ended(self, column: _Column, end: TurnEnded) -> None:
        column.notice = ""
        if column.block is not None:
            if column.thinking:
                column.thinking = False
                column.transcript.end_thinking(column.block, fold=bool(end.reply.text.strip()))
            await column.transcript.finish(column.block)
            column.transcript.update(column.block, end.reply)

    def _column_closed(self, event: ColumnClosed) -> None:
        column = self.columns[event.index]
        column.notice = ""
        if event.stopped is not None and column.block is not None:
            column.transcript.stop(column.block)
            column.transcript.update(column.block, event.stopped)
        elif column.block is None:
            column.waiting.update("Cancelled before it started.", layout=False)
        if event.problem is not None:
            self.notify(
                f"{event.problem}",
                title=f"Column {event.index + 1} stopped",
                severity="error",
                timeout=15,
            )
        column.redraw(self.comparison)

    @on(CompareOver)
    def _over_now(self, message: CompareOver) -> None:
        self._over = True
        if self._figures is not None:
            self._figures.stop()
            self._figures = None
        self._redraw_figures()
        if message.problem is not None:
            self.notify(sanitize(message.problem), title="Could not save", severity="error")
        self.refresh_bindings()

    # -- keys and buttons ------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_all":
            return self.streaming
        if action == "close":
            return not self.streaming
        if action == "choose":
            index = parameters[0] if parameters else 0
            return isinstance(index, int) and index < len(self.comparison.contenders)
        return True

    def action_cancel_all(self) -> None:
        for worker in self.workers:
            if worker.group == "turn" and worker.state == WorkerState.RUNNING:
                worker.cancel()
                self.notify("Compare cancelled: every reply so far is saved.")

    def action_focus_next_prompt(self) -> None:
        self.query_one("#compare-next", Input).focus()

    def action_close(self) -> None:
        self.close_unchosen()

    def action_choose(self, index: int) -> None:
        reply = self.comparison.reply(index)
        label = one_line(self.comparison.contenders[index].label, LABEL_LIMIT)
        if reply is None or reply.status == MessageStatus.PENDING:
            self.notify(f"{label} has not finished yet: wait for it, or press Escape first.")
            return
        self.continue_with(index)

    @on(Button.Pressed, ".compare-choose")
    def _choose_pressed(self, event: Button.Pressed) -> None:
        index = int((event.button.id or "-0").rsplit("-", 1)[1])
        self.action_choose(index)

    async def _stop_streams(self) -> None:
        for worker in list(self.workers):
            if worker.group == "turn" and not worker.is_finished:
                worker.cancel()
                with suppress(WorkerCancelled, WorkerFailed):
                    await worker.wait()

    @work(exclusive=True, group="compare-close", exit_on_error=False)
    async def continue_with(self, index: int) -> None:
        await self._stop_streams()
        try:
            chosen = await self.comparison.choose(index)
        except LookupError as error:
            self.notify(sanitize(str(error)), severity="warning")
            return
        self.dismiss(CompareOutcome(chosen, None, self._next_prompt(), self._unsaved_prompt()))

    @work(exclusive=True, group="compare-close", exit_on_error=False)
    async def close_unchosen(self) -> None:
        await self._stop_streams()
        head = await self.comparison.settle_unchosen()
        self.dismiss(CompareOutcome(None, head, self._next_prompt(), self._unsaved_prompt()))

    def _next_prompt(self) -> str:
        return self.query_one("#compare-next", Input).value

    def _unsaved_prompt(self) -> str:
        return self.prompt if self.comparison.user is None else ""
