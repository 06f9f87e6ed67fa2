"""How `ask` runs one turn of a `ChatSession` and shows it: the reply on stdout as inert
text or JSON Lines, status on stderr, the exit status from how the turn ended.

The one place the subcommand drives the session: `ReplyPrinter.turn`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from typing import TYPE_CHECKING, Any, TextIO

from foundry_tui.commands import EXIT_FAILED, EXIT_OK, EXIT_USAGE, say_problem
from foundry_tui.core.models import (
    Answered,
    ContextTrimmed,
    ErrorKind,
    Message,
    MessageStatus,
    Retrying,
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
from foundry_tui.core.text import InertStream, sanitize

if TYPE_CHECKING:
    from collections.abc import Sequence

    from foundry_tui.core.attachments import FileToAttach
    from foundry_tui.core.session import SendMode
    from foundry_tui.core.turns import Turns
    from foundry_tui.store import Store

__all__ = ["ReplyPrinter", "result_of"]

_SECONDS = re.compile(r" \(\d+ s\)$")
# The flag that sets each parameter a deployment may refuse.
_FLAGS = {
    "temperature": "--temperature",
    "top_p": "--top-p",
    "reasoning": "--reasoning-effort and --reasoning-summary",
    "reasoning.effort": "--reasoning-effort",
    "reasoning.summary": "--reasoning-summary",
    "text.verbosity": "--verbosity",
}
# The thinking on a terminal's stderr: dim, so the answer on stdout stands out.
_DIM, _UNDIM = "\x1b[2m", "\x1b[22m"


def result_of(reply: Message, mode: SendMode | None) -> dict[str, Any]:
    """What a script learns of a finished (or cancelled) turn."""
    from foundry_tui.core.usage import speed_of  # at the end: not before the first token

    usage = reply.usage
    speed = speed_of(reply)
    return {
        "conversation_id": reply.conversation_id,
        "message_id": reply.id,
        "status": reply.status.value,
        "model": reply.response_model or reply.model,
        "response_id": reply.response_id,
        "previous_response_id": reply.previous_response_id,
        "mode": mode.value if mode is not None else None,
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "cached_input_tokens": usage.cached_input_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
        },
        "first_token_ms": reply.first_token_ms,
        "duration_ms": reply.duration_ms,
        # Output tokens over the time the output took (see core/usage.py); estimated
        # from the text when the server gave no count.
        "tokens_per_second": round(speed.tokens_per_second, 1) if speed else None,
        "tokens_per_second_estimated": speed.estimated if speed else None,
        "error": reply.error,
        "reasoning": reply.reasoning or None,
    }


class ReplyPrinter:
    def __init__(
        self,
        *,
        json_lines: bool,
        stream: bool,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.json_lines = json_lines
        self.stream = stream
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._inert = InertStream()
        self._thinking: InertStream | None = None  # the reasoning streaming to stderr
        self._started: TurnStarted | None = None
        self._turns: Turns | None = None
        self._last = "\n"  # the last character written to stdout
        self._broken = False
        self._said = ""

    # -- writing ---------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if self._broken or not text:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): the reply is still read and saved in full.
            self._broken = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.out.fileno())
            os.close(devnull)
            return
        self._last = text[-1]

    def _emit(self, kind: str, **fields: Any) -> None:
        self._write(json.dumps({"type": kind, **fields}) + "\n")

    def status(self, text: str) -> None:
        """A line for the user, not for the script: on stderr; a progress line that only
        counts the seconds up again ("Loading… (3 s)") is not repeated."""
        gist = _SECONDS.sub("", text)
        if gist == self._said:
            return
        self._said = gist
        say_problem(text)

    def _think(self, text: str) -> None:
        """The model's reasoning, on stderr (stdout stays the answer alone): made inert,
        and dim when stderr is a terminal (a redirected one keeps plain text)."""
        if self._thinking is None:
            self._thinking = InertStream()
            self._write_err(_DIM if self._err_is_terminal() else "")
        self._write_err(self._thinking.feed(text))

    def _end_thinking(self) -> None:
        """The answer begins: the thinking ends with a blank line between them."""
        thinking, self._thinking = self._thinking, None
        if thinking is not None:
            self._write_err(thinking.end() + (_UNDIM if self._err_is_terminal() else "") + "\n\n")

    def _err_is_terminal(self) -> bool:
        try:
            return self.err.isatty()
        except ValueError:
            return False

    def _write_err(self, text: str) -> None:
        if not text:
            return
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.err.write(text)
            self.err.flush()

    def close(self) -> None:
        if not self._broken:
            with contextlib.suppress(BrokenPipeError, ValueError):
                self.out.flush()

    # -- the turn --------------------------------------------------------------------

    async def turn(
        self, turns: Turns, prompt: str, attachments: Sequence[FileToAttach] = ()
    ) -> int:
        """Sends ``prompt`` (and its files) through the same turn policy as the chat screen."""
        self._turns = turns
        async for event in turns.send(prompt, attachments=attachments):
            if isinstance(event, ReplyDelta):
                if not self.stream:
                    continue
                if self.json_lines:
                    self._emit("delta", text=event.text)
                else:
                    self._end_thinking()
                    self._write(self._inert.feed(event.text))
            elif isinstance(event, ThinkingDelta):
                if not self.stream:
                    continue
                if self.json_lines:
                    self._emit("reasoning", text=event.text)
                else:
                    self._think(event.text)
            elif isinstance(event, ThinkingStarted):
                if self.stream and self.json_lines:
                    self._emit("reasoning_started")
            elif isinstance(event, TurnStarted):
                self._started = event
                if self.stream and self.json_lines:
                    self._emit(
                        "started",
                        conversation_id=event.reply.conversation_id,
                        message_id=event.reply.id,
                        prompt_id=event.user.id,
                        model=event.reply.model,
                        mode=event.mode.value,
                    )
            elif isinstance(event, TurnEnded):
                return self._ended(event)
            else:
                self._note(event)
        return EXIT_FAILED  # the session always ends a turn with TurnEnded

    def _note(self, event: object) -> None:
        if isinstance(event, Retrying):
            self.status(
                f"{event.reason}; trying again in {event.wait_seconds:.0f} s "
                f"(attempt {event.attempt} of {event.attempts})"
            )
            fields: dict[str, Any] = {
                "reason": event.reason,
                "wait_seconds": event.wait_seconds,
                "attempt": event.attempt,
                "attempts": event.attempts,
            }
            kind = "retrying"
        elif isinstance(event, Waiting):
            self.status(f"the server has not answered for {event.seconds:.0f} s; still waiting")
            kind, fields = "waiting", {"seconds": event.seconds}
        elif isinstance(event, ModeChanged):
            self.status(event.reason)
            kind, fields = "mode_changed", {"mode": event.mode.value, "reason": event.reason}
        elif isinstance(event, ContextTrimmed):
            self.status(event.reason)
            kind = "context_trimmed"
            fields = {"dropped_messages": event.dropped_messages, "reason": event.reason}
        elif isinstance(event, Answered):
            kind, fields = "answered", {}
        elif isinstance(event, SettingsChanged):
            self.status(event.reason)
            kind, fields = "settings_changed", {"reason": event.reason}
        elif isinstance(event, ParameterDropped):
            self.status(event.reason)
            kind = "parameter_dropped"
            fields = {"parameter": event.parameter, "reason": event.reason}
        else:
            return
        if self.stream and self.json_lines:
            self._emit(kind, **fields)

    def _finish_text(self, reply: Message) -> None:
        """The end of the reply on stdout, ending with a newline."""
        if not self.json_lines:
            if self.stream:
                self._end_thinking()
            elif reply.reasoning:
                self._think(reply.reasoning)
                self._end_thinking()
        if self.json_lines:
            result = result_of(reply, self._started.mode if self._started else None)
            if self.stream:
                self._emit("finished", **result)
            else:
                self._write(json.dumps({**result, "text": reply.text}) + "\n")
            return
        if self.stream:
            self._write(self._inert.end())
        else:
            self._write(sanitize(reply.text))
        if self._last != "\n":
            self._write("\n")

    def _ended(self, event: TurnEnded) -> int:
        reply = event.reply
        self._finish_text(reply)
        if event.error is not None:
            say_problem(event.error.user_message)
            if (hint := self._remedy_hint(reply)) is not None:
                self.status(hint)
            return EXIT_USAGE if event.error.kind is ErrorKind.CONFIG else EXIT_FAILED
        if reply.status is MessageStatus.FAILED:
            say_problem(reply.error or "The reply failed.")
            return EXIT_FAILED
        if reply.status is MessageStatus.INCOMPLETE and reply.error:
            self.status(reply.error)
            if (hint := self._remedy_hint(reply)) is not None:
                self.status(hint)
        return EXIT_OK

    def _remedy_hint(self, reply: Message) -> str | None:
        """What the turn policy offers next (the TUI's Ctrl+R and Ctrl+G), as a command."""
        from foundry_tui.core.parameters import named
        from foundry_tui.core.turns import CONTINUE_PROMPT, Remedy, budget_note

        turns = self._turns
        remedy = turns.remedy if turns is not None else None
        again = f"foundry-tui ask --continue {reply.conversation_id}"
        if turns is None or remedy is None:
            return None
        if remedy is Remedy.RESEND_WITHOUT:
            refused = turns.refused
            if set(refused) == {"temperature", "top_p"}:
                return (
                    "this model takes no temperature or top_p: leave out --temperature and "
                    "--top-p, and clear them from the profile's defaults"
                )
            flags = " and ".join(_FLAGS.get(name, name) for name in refused)
            return (
                f"this model takes no {named(refused)}: leave out {flags} (the next ask to "
                "it leaves it out by itself)"
            )
        if remedy is Remedy.CONTINUE:
            return f'to have it go on: {again} "{CONTINUE_PROMPT}"'
        if remedy is Remedy.LARGER_BUDGET:
            settings = turns.session.conversation.settings
            budget = turns.larger_budget(settings)
            return (
                f"{budget_note(reply, settings)} Ask again with a larger budget: "
                f"--max-output-tokens {budget}, or to have it go on: "
                f'{again} --max-output-tokens {budget} "{CONTINUE_PROMPT}"'
            )
        return None

    def interrupted(self, store: Store | None, why: str = "interrupted") -> None:
        """After Ctrl+C or a signal (``why`` says which): the session has saved the
        partial reply as cancelled."""
        started = self._started
        saved = store.get_message(started.reply.id) if store and started else None
        if saved is not None:
            self._finish_text(saved)
            say_problem(
                f"{why}: the partial reply is saved as {saved.status.value} in "
                f"conversation {saved.conversation_id}"
            )
        else:
            say_problem(why)
