"""A turn, from the worker that runs it up to the chat screen, as Textual messages.

The turn worker only iterates `core.turns.Turns` and posts what happened to the screen,
whose `TurnView` draws it; a Pilot test sees the whole flow with ``message_hook``. Every
turn ends with one `TurnClosed`, however it ends.

A reply's text is not a message per delta (a 2,000 tokens/s stream would be 2,000
messages a second): the deltas gather in a list that the one `ReplyText` in flight
carries; the next is posted once that one has taken the text, and no sooner than
TEXT_MESSAGE_SECONDS after it (the first text of a reply goes at once). Any other message
first sends the text gathered so far, so the screen gets everything in order.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from textual.message import Message as TextualMessage
from textual.message_pump import MessagePump

from foundry_tui.core.models import Message, StorageError
from foundry_tui.core.session import (
    ReplyDelta,
    SendMode,
    ThinkingDelta,
    TurnEnded,
    TurnEvent,
    TurnStarted,
)
from foundry_tui.core.turns import Remedy, Turns

# The longest the UI loop handles deltas without letting other work (keys) run.
DELTA_RUN_SECONDS = 0.005
# The shortest time between two ReplyText messages. The transcript repaints a streaming
# reply 8 times a second, so text handed over more often would only cost the UI loop.
TEXT_MESSAGE_SECONDS = 1 / 60


class TurnMessage(TextualMessage, bubble=False):
    """A turn's messages, posted to the chat screen (they go no further)."""


class TurnUpdate(TurnMessage, bubble=False):
    """An event of the turn other than its text and its end."""

    def __init__(self, event: TurnEvent) -> None:
        super().__init__()
        self.event = event


class GatheredText(TurnMessage, bubble=False):
    """Text gathered while the last message of its kind waited to be handled."""

    def __init__(self, pending: list[str]) -> None:
        super().__init__()
        self._pending = pending

    def take(self) -> str:
        text = "".join(self._pending)
        self._pending.clear()
        return text


class ReplyText(GatheredText, bubble=False):
    """Text of the reply: all that arrived since the last ReplyText was handled."""


class ThinkingText(GatheredText, bubble=False):
    """The model's reasoning text: all that arrived since the last ThinkingText was
    handled (gathered as the reply's text is)."""


class TurnSettled(TurnMessage, bubble=False):
    """The turn ended with a saved reply, and what the policy says of the next one."""

    def __init__(self, end: TurnEnded, next_mode: SendMode, remedy: Remedy | None) -> None:
        super().__init__()
        self.end = end
        self.next_mode = next_mode
        self.remedy = remedy


class TurnClosed(TurnMessage, bubble=False):
    """The turn is over. ``stopped``: the reply as the turn left it when it stopped before
    its end (cancelled, or failed to save); ``problem``: what could not be saved;
    ``unsent``: the prompt, when it never got into the conversation."""

    def __init__(
        self, stopped: Message | None = None, problem: str | None = None, unsent: str | None = None
    ) -> None:
        super().__init__()
        self.stopped = stopped
        self.problem = problem
        self.unsent = unsent


class TextPoster:
    """Posts a reply's deltas as messages ``make(pending)`` makes, at most one in flight
    and TEXT_MESSAGE_SECONDS apart (the chat's reply, and each column of a comparison)."""

    def __init__(
        self, screen: MessagePump, make: Callable[[list[str]], TextualMessage] = ReplyText
    ) -> None:
        self._screen = screen
        self._make = make
        self._loop = asyncio.get_running_loop()
        self._pending: list[str] = []
        self._posted_at = -math.inf
        self._timer: asyncio.TimerHandle | None = None

    def add(self, text: str) -> None:
        taken = not self._pending  # nothing posted waits to be handled
        self._pending.append(text)
        if taken and self._timer is None:
            wait = self._posted_at + TEXT_MESSAGE_SECONDS - self._loop.time()
            if wait > 0:
                self._timer = self._loop.call_later(wait, self._post)
            else:
                self._post()

    def flush(self) -> None:
        """Sends what waits for its time now (another message follows)."""
        if self._timer is not None:
            self._timer.cancel()
            self._post()

    def _post(self) -> None:
        self._timer = None
        self._posted_at = self._loop.time()
        self._screen.post_message(self._make(self._pending))


async def post_turn(
    screen: MessagePump,
    turns: Turns,
    events: AsyncGenerator[TurnEvent, None],
    *,
    prompt: str | None = None,
) -> None:
    """Runs one turn of ``turns`` and posts it to ``screen``; ``prompt`` is the text the
    user typed, put back in the box if the turn could not even start."""
    text = TextPoster(screen)
    thinking = TextPoster(screen, ThinkingText)
    loop = asyncio.get_running_loop()
    yielded_at = loop.time()

    def post(message: TurnMessage) -> None:
        thinking.flush()
        text.flush()
        screen.post_message(message)

    started = settled = False
    closed = TurnClosed()
    try:
        async with aclosing(events):
            async for event in events:
                if isinstance(event, ReplyDelta | ThinkingDelta):
                    if isinstance(event, ReplyDelta):
                        thinking.flush()  # the reasoning shows before the answer
                        text.add(event.text)
                    else:
                        thinking.add(event.text)
                    # A fast stream read in one large chunk is a long run of deltas with
                    # no wait between them: keys would wait for the whole run.
                    if loop.time() - yielded_at > DELTA_RUN_SECONDS:
                        await asyncio.sleep(0)
                        yielded_at = loop.time()
                elif isinstance(event, TurnEnded):
                    settled = True
                    post(TurnSettled(event, turns.next_mode, turns.remedy))
                else:
                    started = started or isinstance(event, TurnStarted)
                    post(TurnUpdate(event))
    except StorageError as error:
        closed.problem = str(error)
        if not started:
            closed.unsent = prompt
    finally:
        if started and not settled:
            closed.stopped = turns.last_reply
        post(closed)
